"""Drafting: the chosen approved template and the customer's facts, turned into a script by an LLM."""
