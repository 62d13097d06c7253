"""Drafts: immutable versions of a script (owned by `app.drafting`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.store.base import Base, JSONType


class Draft(Base):
    """One immutable version of a script: what was written, by whom (a model, the template, a rep or a
    compliance officer), from which template version and facts.

    A change is never made in place: a rep's edit or a compliance edit is a new version in the same lineage
    (`lineage_id` is the first version's id). `(lineage_id, revision)` is unique, so two changes made from the
    same version cannot both land; the newest revision is the lineage's head, the only one that may go out.
    """

    __tablename__ = "drafts"
    __table_args__ = (UniqueConstraint("lineage_id", "revision", name="uq_drafts_lineage_revision"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    lineage_id: Mapped[str] = mapped_column(String(32), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16))
    template_id: Mapped[str] = mapped_column(String(96))
    template_version: Mapped[int] = mapped_column(Integer)
    prompt_version: Mapped[str | None] = mapped_column(String(64))
    profile_version: Mapped[str | None] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16))  # DraftMode: llm | template_only | rep_edit | compliance_edit
    drafting: Mapped[str | None] = mapped_column(String(16))  # opening | rewrite: what the model was allowed to write
    author: Mapped[str] = mapped_column(String(128))  # the model, "template", or the person who edited
    model: Mapped[str | None] = mapped_column(String(128))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    facts_used: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    fallback_reason: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    # Same template version + prompt version + model + facts => the model's text is reused from here.
    cache_key: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime]
