"""Reviews of draft versions (the compliance queue), releases, and policy suggestions (owned by `app.review`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.store.base import Base, JSONType


class Review(Base):
    """The guardrails' verdict on one draft version and where that version stands: ready, waiting for
    compliance (the queue), approved, rejected, blocked, or withdrawn when a newer version replaced it.

    `version` is the queue's optimistic lock: a decision names the version it saw, and only one decision
    per version can land."""

    __tablename__ = "reviews"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    draft_id: Mapped[str] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"), unique=True)
    lineage_id: Mapped[str] = mapped_column(String(32), index=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    template_id: Mapped[str] = mapped_column(String(96))
    verdict: Mapped[str] = mapped_column(String(16))  # what the guardrails said: ready | needs_approval | blocked
    status: Mapped[str] = mapped_column(String(16), index=True)  # ReviewStatus
    routing: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    findings: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    sources: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    policy_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    reason_code: Mapped[str | None] = mapped_column(String(32))
    comment: Mapped[str | None] = mapped_column(Text)
    # The version compliance approved when deciding this item: this draft itself, or their edit of it.
    approved_draft_id: Mapped[str | None] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer, default=1)


class Release(Base):
    """The one record that a text went out: which immutable draft version, the SHA-256 of its text, who,
    when and where. One per lineage: a script goes out once."""

    __tablename__ = "releases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    draft_id: Mapped[str] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"), unique=True)
    lineage_id: Mapped[str] = mapped_column(String(32), unique=True)
    body_sha256: Mapped[str] = mapped_column(String(64))
    subject_sha256: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    released_by: Mapped[str] = mapped_column(String(64))
    released_at: Mapped[datetime]
    # What the release was for (a card id); kept as plain text so review/ does not depend on cards/.
    subject_ref: Mapped[str | None] = mapped_column(String(64))


class PolicySuggestion(Base):
    """A new policy example proposed from a rejection, for the policy owners to accept into guardrails/."""

    __tablename__ = "policy_suggestions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    category: Mapped[str] = mapped_column(String(64))
    example: Mapped[str] = mapped_column(Text)
    source_item: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime]
