"""Request bodies and small shared types of the HTTP API."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.cards.service import REJECT_REASONS
from app.domain import Channel, Outcome, UTCDatetime
from app.review.service import REASON_CODES

# Integers from clients fit the database's 32-bit columns: a version of 2**63 is a 422, never a 500.
MAX_INT = 2**31 - 1
Version = Annotated[int, Field(ge=1, le=MAX_INT)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)


class AdoptBody(Strict):
    text: str | None = Field(default=None, max_length=10_000, description="The edited script, if the rep changed it.")


class RejectBody(Strict):
    reason: str = Field(max_length=32, description=f"One of: {', '.join(REJECT_REASONS)}")
    note: str | None = Field(default=None, max_length=2_000)


class SendBody(Strict):
    channel: Channel | None = None
    at: UTCDatetime | None = Field(default=None, description="When it was actually sent (default: now).")


class OutcomeBody(Strict):
    outcome: Outcome
    value: float | None = Field(default=None, ge=0, le=1e12, allow_inf_nan=False)
    correction: bool = Field(default=False, description="Replace an outcome recorded earlier (audited).")


class ApproveBody(Strict):
    version: Version = Field(description="The item version you reviewed: a stale version gets 409.")
    text: str | None = Field(default=None, max_length=10_000, description="Approve this edited text instead.")
    comment: str | None = Field(default=None, max_length=2_000)


class ComplianceRejectBody(Strict):
    version: Version
    reason_code: str = Field(max_length=32, description=f"One of: {', '.join(REASON_CODES)}")
    comment: str | None = Field(default=None, max_length=2_000)


class TemplateEdit(Strict):
    title: str | None = Field(default=None, max_length=200)
    body: str | None = Field(default=None, max_length=10_000)
    disclosures: list[Annotated[str, Field(max_length=500)]] | None = Field(default=None, max_length=20)
    sensitive: bool | None = None
    intents: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=20)


class TemplateEdited(BaseModel):
    id: str
    version: int
    status: str


class TemplateApproved(BaseModel):
    id: str
    approved_version: int
