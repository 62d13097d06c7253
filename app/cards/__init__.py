"""Recommendation cards: the rep's day, actions on cards, triggers, SLA, and the feedback they produce."""
