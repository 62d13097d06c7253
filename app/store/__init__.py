"""Persistence: typed SQLAlchemy tables, sessions and Alembic migrations."""
