"""What the classifier made of a posted event's text (owned by app/intents)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from app.store.base import Base


class EventIntent(Base):
    """One classification per event: the intent (or `other`), its confidence, and the versions behind it."""

    __tablename__ = "event_intents"

    event_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    intent: Mapped[str] = mapped_column(String(64), index=True)
    confidence: Mapped[float] = mapped_column(Float)
    runner_up: Mapped[str | None] = mapped_column(String(64))
    taxonomy_version: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    classified_at: Mapped[datetime]
