"""Service conversations: what customers write, understood (intents)."""
