"""Model versions, the registry's log, scoring runs and their decisions (owned by `app.models`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.store.base import Base, JSONType


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
    # batch: a full run over every customer; live: the day's one-customer decisions made by triggers.
    kind: Mapped[str] = mapped_column(String(8), default="batch")
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
    slot_local: Mapped[str | None] = mapped_column(String(96))  # "Wed 25 Nov 10:00 " and the zone (customers.timezone: 64)
    product: Mapped[str | None] = mapped_column(String(64))
    reasons: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    suppressed_by: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    requires_confirmation: Mapped[bool] = mapped_column(Boolean, default=False)
    # The objective chosen by predicted uplift (objectives.yaml), its predicted change per KPI, its value net of
    # the contact cost and why the alternatives lost; None where no uplift model decided (rules, old bundles).
    objective: Mapped[str | None] = mapped_column(String(64))
    objectives_version: Mapped[str | None] = mapped_column(String(64))
    impact: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
