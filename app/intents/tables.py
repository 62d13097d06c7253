"""Service events as they arrived, who they were matched to, and what the classifier read (owned by app/intents)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.store.base import Base, JSONType


class EventIntent(Base):
    """One classification per event: the intent (or `other`), its confidence, and the versions behind it."""

    __tablename__ = "event_intents"

    event_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    intent: Mapped[str] = mapped_column(String(64), index=True)
    confidence: Mapped[float] = mapped_column(Float)
    runner_up: Mapped[str | None] = mapped_column(String(64))
    # A second intent the message also carries (its own probability passed its own threshold), or None.
    secondary: Mapped[str | None] = mapped_column(String(64))
    secondary_confidence: Mapped[float | None] = mapped_column(Float)
    severity: Mapped[str | None] = mapped_column(String(16))  # from the taxonomy: low | medium | high
    stage_candidate: Mapped[str | None] = mapped_column(String(32))  # the lifecycle stage the intent suggests
    taxonomy_version: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    classified_at: Mapped[datetime]


class ServiceEvent(Base):
    """A canonical service event as received: the raw message kept for audit and retraining, join keys only as
    keyed hashes, and who it was resolved to (or why it waits in quarantine)."""

    __tablename__ = "service_events"
    __table_args__ = (Index("ix_service_events_identity_status", "identity_status", "received_at"),)

    event_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))  # a re-post with other content under this id is refused
    event_type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime]
    channel: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)  # raw: untrusted customer text, never instructions
    session_key: Mapped[str | None] = mapped_column(String(32), index=True)
    user_key: Mapped[str | None] = mapped_column(String(32))
    email_key: Mapped[str | None] = mapped_column(String(32))
    email_domain: Mapped[str | None] = mapped_column(String(254))
    account_key: Mapped[str | None] = mapped_column(String(32))
    agent_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(64))
    satisfaction: Mapped[float | None] = mapped_column(Float)
    resolution_flag: Mapped[bool | None] = mapped_column(Boolean)
    product: Mapped[str | None] = mapped_column(String(64))
    # matched | quarantined | discarded (an analyst threw it away)
    identity_status: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    match_method: Mapped[str] = mapped_column(String(16))  # user_id | email | probabilistic | analyst | none
    match_confidence: Mapped[float] = mapped_column(Float)
    match_reason: Mapped[str] = mapped_column(Text)
    candidates: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    received_at: Mapped[datetime]
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None]


class IntentLabel(Base):
    """A person's word on what a message is about (a rep or analyst correcting the classifier): the examples
    the classifier learns from beside the taxonomy's. Append-only; the newest label of an event counts."""

    __tablename__ = "intent_labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(96), index=True)
    intent: Mapped[str] = mapped_column(String(64))
    read_as: Mapped[str | None] = mapped_column(String(64))  # what the classifier had said
    labelled_by: Mapped[str] = mapped_column(String(64))
    labelled_at: Mapped[datetime]
