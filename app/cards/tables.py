"""Cards, the actions on them, and the queue of posted events for the trigger worker (owned by `app.cards`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.store.base import Base, JSONType


class Card(Base):
    """One recommendation in a rep's day: customer, decision, draft, and what the rep did with it."""

    __tablename__ = "cards"
    __table_args__ = (Index("ix_cards_rep_status", "rep_id", "status"), Index("ix_cards_team_status", "team", "status"))

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id", ondelete="SET NULL"))
    # The card's draft lineage (its first version's id); the card always shows that lineage's newest version.
    draft_id: Mapped[str | None] = mapped_column(ForeignKey("drafts.id", ondelete="SET NULL"))
    template_id: Mapped[str | None] = mapped_column(String(96))
    rep_id: Mapped[str | None] = mapped_column(String(64))  # None once reassigned to the team queue
    team: Mapped[str | None] = mapped_column(String(64))
    # CardStatus: queued (over the daily cap) | open (in today's inbox) | adopted | rejected | executed
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(16))  # batch | trigger
    trigger: Mapped[str | None] = mapped_column(String(200))
    # For a card a routed event made: the routing rule, and the minutes the owner has for a first touch.
    route: Mapped[str | None] = mapped_column(String(48))
    sla_minutes: Mapped[int | None] = mapped_column(Integer)
    day: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    due_at: Mapped[datetime]
    reminded_at: Mapped[datetime | None]
    reassigned_at: Mapped[datetime | None]
    # The version the rep adopted (their edit, or the draft as it stood); the release names what went out.
    adopted_draft_id: Mapped[str | None] = mapped_column(String(32))
    release_id: Mapped[str | None] = mapped_column(String(32))
    executed_at: Mapped[datetime | None]
    executed_channel: Mapped[str | None] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(16))
    outcome_value: Mapped[float | None] = mapped_column(Float)
    reject_reason: Mapped[str | None] = mapped_column(String(32))


class CardAction(Base):
    """Every action on a card, once: the idempotency key makes a retried request return the first result."""

    __tablename__ = "card_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    actor: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime]


class EventJob(Base):
    """An event posted to the API, waiting for the worker to route it (durable across restarts); once done, its
    lineage: the rule that fired or why none did, the card, the score before and after, the versions behind it."""

    __tablename__ = "event_jobs"

    event_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | done | suppressed | failed
    created_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    result: Mapped[str | None] = mapped_column(Text)
    customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    route: Mapped[str | None] = mapped_column(String(48))
    card_id: Mapped[str | None] = mapped_column(String(16))
    decision_id: Mapped[int | None] = mapped_column(Integer)
    score_before: Mapped[float | None] = mapped_column(Float)
    score_after: Mapped[float | None] = mapped_column(Float)
    feature_set_version: Mapped[str | None] = mapped_column(String(64))
    model_version: Mapped[str | None] = mapped_column(String(64))
    taxonomy_version: Mapped[str | None] = mapped_column(String(64))
    routing_policy_version: Mapped[str | None] = mapped_column(String(64))
