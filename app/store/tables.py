"""Typed SQLAlchemy 2.0 tables for the data spine: customers, consent, events and outreach history."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always hands back an aware UTC datetime, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONType}


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    segment: Mapped[str | None] = mapped_column(String(64), index=True)
    industry: Mapped[str | None] = mapped_column(String(64))
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default="lead")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    age: Mapped[int | None] = mapped_column(Integer)
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    do_not_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_rep: Mapped[str | None] = mapped_column(String(64), index=True)
    team: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime | None]
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Consent(Base):
    __tablename__ = "consents"

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    granted: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime | None]
    source: Mapped[str | None] = mapped_column(String(64))


class Event(Base):
    """A behaviour (page or product view, email open, purchase) or a service conversation."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_customer_time", "customer_id", "occurred_at"),)

    id: Mapped[str] = mapped_column(String(96), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime]
    type: Mapped[str] = mapped_column(String(32))
    product: Mapped[str | None] = mapped_column(String(64))
    intent: Mapped[str | None] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(16))
    # Customer-written free text: untrusted data, never instructions.
    text: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)


class OutreachAttempt(Base):
    """One contact attempt and what came of it."""

    __tablename__ = "outreach_attempts"
    __table_args__ = (Index("ix_outreach_customer_time", "customer_id", "attempted_at"),)

    id: Mapped[str] = mapped_column(String(96), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    attempted_at: Mapped[datetime]
    channel: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    template_id: Mapped[str | None] = mapped_column(String(96))
    campaign: Mapped[str | None] = mapped_column(String(64))
    product: Mapped[str | None] = mapped_column(String(64))
    rep_id: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)


TABLE_FOR_RECORD = {
    "customer": Customer,
    "consent": Consent,
    "event": Event,
    "outreach": OutreachAttempt,
}


class ModelVersion(Base):
    """A trained model bundle (propensity + timing) with what it was trained on and how it scored."""

    __tablename__ = "model_versions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), default="propensity")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    artifact_path: Mapped[str] = mapped_column(String(500))
    data_snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)
    features: Mapped[dict[str, Any]] = mapped_column(default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)


class RegistryEvent(Base):
    """Append-only log of registry changes: what a rollback walks back through."""

    __tablename__ = "registry_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(16))
    version_id: Mapped[str] = mapped_column(ForeignKey("model_versions.id"))
    previous_champion: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)


class ScoreRun(Base):
    __tablename__ = "score_runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    as_of: Mapped[datetime]
    champion_version: Mapped[str | None] = mapped_column(String(64))
    challenger_version: Mapped[str | None] = mapped_column(String(64))
    policy_version: Mapped[str] = mapped_column(String(64))
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    parquet_path: Mapped[str | None] = mapped_column(String(500))


class Decision(Base):
    """Who to contact, when and where, with confidence and reasons; or which rule suppressed it."""

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_run_confidence", "run_id", "status", "score"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("score_runs.id", ondelete="CASCADE"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    as_of: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))
    arm: Mapped[str | None] = mapped_column(String(16))
    model_version: Mapped[str | None] = mapped_column(String(64))
    policy_version: Mapped[str] = mapped_column(String(64))
    score: Mapped[float | None] = mapped_column(Float)
    confidence: Mapped[float | None] = mapped_column(Float)
    channel: Mapped[str | None] = mapped_column(String(16))
    slot_at: Mapped[datetime | None]
    slot_local: Mapped[str | None] = mapped_column(String(32))
    product: Mapped[str | None] = mapped_column(String(64))
    reasons: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    suppressed_by: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    requires_confirmation: Mapped[bool] = mapped_column(Boolean, default=False)


class Template(Base):
    """A script template: which version is live (approved) and whether it is retired."""

    __tablename__ = "templates"

    id: Mapped[str] = mapped_column(String(96), primary_key=True)
    latest_version: Mapped[int] = mapped_column(Integer)
    approved_version: Mapped[int | None] = mapped_column(Integer)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class TemplateVersion(Base):
    """One immutable version of a template's text and metadata, with its review status."""

    __tablename__ = "template_versions"

    template_id: Mapped[str] = mapped_column(ForeignKey("templates.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    products: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    stage: Mapped[str] = mapped_column(String(32))
    intents: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    owner: Mapped[str] = mapped_column(String(64))
    disclosures: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    body: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))


class TemplateEvent(Base):
    """Who changed what in the library, and when: imports, edits, approvals, retirements."""

    __tablename__ = "template_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    template_id: Mapped[str] = mapped_column(ForeignKey("templates.id", ondelete="CASCADE"), index=True)
    version: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(Text)


class Draft(Base):
    """A drafted script: what was written, by which model and prompt, from which template version and facts."""

    __tablename__ = "drafts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16))
    template_id: Mapped[str] = mapped_column(String(96))
    template_version: Mapped[int] = mapped_column(Integer)
    prompt_version: Mapped[str | None] = mapped_column(String(64))
    profile_version: Mapped[str | None] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16))  # llm | template_only
    drafting: Mapped[str | None] = mapped_column(String(16))  # opening | rewrite
    model: Mapped[str | None] = mapped_column(String(128))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    facts_used: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    fallback_reason: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    # Same template version + prompt version + model + facts => same draft, served from here.
    cache_key: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime]
    # Review: ready | needs_approval | blocked, then approved | rejected by compliance; sent once released.
    review_status: Mapped[str | None] = mapped_column(String(16), index=True)
    policy_version: Mapped[str | None] = mapped_column(String(64))
    findings: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    sent_at: Mapped[datetime | None]


class ReviewItem(Base):
    """A draft waiting for (or decided by) compliance. `version` is the optimistic lock: a decision names
    the version it saw, and only one decision per version can land."""

    __tablename__ = "review_items"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    draft_id: Mapped[str] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"), unique=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    template_id: Mapped[str] = mapped_column(String(96))
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | approved | rejected
    verdict: Mapped[str] = mapped_column(String(16))
    routing: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    findings: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    sources: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    policy_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    reason_code: Mapped[str | None] = mapped_column(String(32))
    comment: Mapped[str | None] = mapped_column(Text)
    edited_body: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)


class Feedback(Base):
    """A labelled outcome people gave the system (here: compliance rejections), for ranking, evaluation
    and the next training run."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    decision_id: Mapped[int | None] = mapped_column(Integer)
    draft_id: Mapped[str | None] = mapped_column(String(32))
    template_id: Mapped[str | None] = mapped_column(String(96), index=True)
    segment: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(16))
    reason_code: Mapped[str | None] = mapped_column(String(32))
    comment: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class PolicySuggestion(Base):
    """A new policy example proposed from a rejection, for the policy owners to accept into guardrails/."""

    __tablename__ = "policy_suggestions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    category: Mapped[str] = mapped_column(String(64))
    example: Mapped[str] = mapped_column(Text)
    source_item: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime]


class AuditEntry(Base):
    """Append-only, hash-chained: each entry's hash covers its content and the previous entry's hash."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32), index=True)
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(96), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    versions: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's tip, one row. Updating it first in every append serialises writers on any backend."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class User(Base):
    """Someone who signs in: a role, the rep id and team a rep works as, and a hashed API token."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(24))  # rep | content | compliance | data_scientist | admin
    rep_id: Mapped[str | None] = mapped_column(String(64))
    team: Mapped[str | None] = mapped_column(String(64))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]


class Card(Base):
    """One recommendation in a rep's day: customer, decision, draft, and what the rep did with it."""

    __tablename__ = "cards"
    __table_args__ = (Index("ix_cards_rep_status", "rep_id", "status"), Index("ix_cards_team_status", "team", "status"))

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id", ondelete="SET NULL"))
    draft_id: Mapped[str | None] = mapped_column(ForeignKey("drafts.id", ondelete="SET NULL"))
    template_id: Mapped[str | None] = mapped_column(String(96))
    rep_id: Mapped[str | None] = mapped_column(String(64))  # None once reassigned to the team queue
    team: Mapped[str | None] = mapped_column(String(64))
    # open (in today's inbox) | queued (over the daily cap) | adopted | rejected | executed | closed
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(16))  # batch | trigger
    trigger: Mapped[str | None] = mapped_column(String(96))
    day: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    due_at: Mapped[datetime]
    reminded_at: Mapped[datetime | None]
    reassigned_at: Mapped[datetime | None]
    adopted_text: Mapped[str | None] = mapped_column(Text)
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
    kind: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    actor: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime]


class EventJob(Base):
    """An event posted to the API, waiting for the worker to check its triggers (durable across restarts)."""

    __tablename__ = "event_jobs"

    event_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | done | failed
    created_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    result: Mapped[str | None] = mapped_column(Text)
