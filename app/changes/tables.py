"""Change requests as received and triaged, and every value a change wrote (owned by app/changes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.store.base import Base, JSONType


class ChangeRequestRow(Base):
    """One request, once: its id makes a replay return the first answer and apply nothing twice."""

    __tablename__ = "change_requests"

    id: Mapped[str] = mapped_column(String(96), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    triage: Mapped[dict[str, Any]] = mapped_column(JSONType)  # as shown: values masked
    new_values: Mapped[dict[str, Any]] = mapped_column(JSONType)  # unmasked, to apply; never shown
    # applied | awaiting_verification | in_review | cooling_off | awaiting_manual_apply | rejected | withdrawn |
    # reversed | no_change
    status: Mapped[str] = mapped_column(String(24), index=True)
    taxonomy_version: Mapped[str] = mapped_column(String(64))
    submitted_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    # Knowledge questions asked (answers as salted hashes), once verification asked for them.
    challenge: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    verified_by: Mapped[str | None] = mapped_column(String(64))
    # A verified change whose type has a cooling-off period is written at this time, not before.
    effective_at: Mapped[datetime | None] = mapped_column(index=True)
    confirmed_at: Mapped[datetime | None]  # when its confirmations were made (none, if nothing could be sent)


class AppliedChange(Base):
    """One field a change wrote: before and after (to reverse it), who verified and who applied it."""

    __tablename__ = "applied_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("change_requests.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    change_type: Mapped[str] = mapped_column(String(32))
    field: Mapped[str] = mapped_column(String(64))
    before: Mapped[Any] = mapped_column(JSONType, nullable=True)
    after: Mapped[Any] = mapped_column(JSONType, nullable=True)
    verified_by: Mapped[str] = mapped_column(String(64))
    applied_by: Mapped[str] = mapped_column(String(64))
    applied_at: Mapped[datetime]
    reversed_by: Mapped[str | None] = mapped_column(String(64))
    reversed_at: Mapped[datetime | None]


class ChangeConfirmation(Base):
    """The confirmation of an applied change to one contact point (the old and the new one when a contact point
    changed): a draft from an approved template, reviewed like every draft, released through the release gate
    when its review lets it."""

    __tablename__ = "change_confirmations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("change_requests.id", ondelete="CASCADE"), index=True)
    draft_id: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    contact: Mapped[str] = mapped_column(String(16))  # old | new | on_file
    to_address: Mapped[str] = mapped_column(String(254))  # for the delivery integration; masked when shown
    created_at: Mapped[datetime]
