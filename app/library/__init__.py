"""The template library: approved scripts, their versions, the vector index and retrieval."""
