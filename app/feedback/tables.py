"""Labelled feedback: rejections by reps and compliance, outcomes (owned by `app.feedback`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.store.base import Base


class Feedback(Base):
    """A label people gave the system: a rep's rejection, a compliance rejection, or the outcome of a contact
    (with the A/B arm and model version that recommended it), for ranking, evaluation, the live split and
    the next training run."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # FeedbackKind
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    decision_id: Mapped[int | None] = mapped_column(Integer)
    draft_id: Mapped[str | None] = mapped_column(String(32))
    template_id: Mapped[str | None] = mapped_column(String(96), index=True)
    segment: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(16))
    reason_code: Mapped[str | None] = mapped_column(String(32))
    comment: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    card_id: Mapped[str | None] = mapped_column(String(16), index=True)
    outcome: Mapped[str | None] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float)
    arm: Mapped[str | None] = mapped_column(String(16))
    model_version: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
