"""The optimisation report: what changed since a date, in charts and plain language."""
