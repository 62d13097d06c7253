"""The shared vocabulary: channels, outcomes and the canonical records every importer produces."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    CALL = "call"
    CHAT = "chat"


class Outcome(StrEnum):
    """What happened after a contact attempt, from worst to best."""

    NO_ANSWER = "no_answer"
    DECLINED = "declined"
    REPLIED = "replied"
    MEETING = "meeting"
    CONVERTED = "converted"


POSITIVE_OUTCOMES = frozenset({Outcome.REPLIED, Outcome.MEETING, Outcome.CONVERTED})
# What the product writes on an attempt it recorded itself (the card it came from, its A/B arm): a trace for
# audits and the live split, never campaign context a model should learn from (an id per row, and "this row
# came from the product" would leak into every later model).
TRACE_ATTRIBUTES = frozenset({"card", "arm"})


class LifecycleStage(StrEnum):
    LEAD = "lead"
    ACTIVE = "active"
    CHURNED = "churned"


class EventType(StrEnum):
    PAGE_VIEW = "page_view"
    PRODUCT_VIEW = "product_view"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    SERVICE_CONVERSATION = "service_conversation"
    PURCHASE = "purchase"


class Intent(StrEnum):
    """Intents tagged on service conversations."""

    PRICING_QUESTION = "pricing_question"
    UPSELL_INTEREST = "upsell_interest"
    RENEWAL_RISK = "renewal_risk"
    IMPLEMENTATION_BLOCKER = "implementation_blocker"
    CHANGE_REQUEST = "change_request"
    COMPLAINT = "complaint"


_TIMEZONES = frozenset(available_timezones())


def first_problem(exc: ValidationError) -> str:
    """The first validation error as 'field.path: reason', for messages that name the field."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    reason = "is required" if first["type"] == "missing" else first["msg"].removeprefix("Value error, ")
    return f"{where}: {reason}"


def content_hash(model: BaseModel) -> str:
    """What makes a re-post the same request or event: every field, in a fixed order."""
    return hashlib.sha256(json.dumps(model.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


# Naive timestamps in source files are taken as UTC; aware ones are converted to UTC.
UTCDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, use_enum_values=True)


class CustomerRecord(Record):
    id: str = Field(min_length=1, max_length=64)
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()\-]{6,}$")
    segment: str | None = Field(default=None, max_length=64)
    industry: str | None = Field(default=None, max_length=64)
    lifecycle_stage: LifecycleStage = LifecycleStage.LEAD
    timezone: str = "UTC"
    age: int | None = Field(default=None, ge=0, le=130)
    sensitive: bool = False
    do_not_contact: bool = False
    owner_rep: str | None = Field(default=None, max_length=64)
    team: str | None = Field(default=None, max_length=64)
    created_at: UTCDatetime | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        if value not in _TIMEZONES:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Lisbon)")
        return value



class ConsentRecord(Record):
    customer_id: str = Field(min_length=1, max_length=64)
    channel: Channel
    granted: bool
    updated_at: UTCDatetime | None = None
    source: str | None = Field(default=None, max_length=64)



class EventRecord(Record):
    id: str = Field(min_length=1, max_length=96)
    customer_id: str = Field(min_length=1, max_length=64)
    occurred_at: UTCDatetime
    type: EventType
    product: str | None = Field(default=None, max_length=64)
    intent: Intent | None = None
    channel: Channel | None = None
    text: str | None = Field(default=None, max_length=10_000)
    attributes: dict[str, Any] = Field(default_factory=dict)



class ServiceEventType(StrEnum):
    CONVERSATION_CLOSED = "conversation_closed"
    TICKET_UPDATED = "ticket_updated"
    CHAT_MESSAGE = "chat_message"
    EMAIL_RECEIVED = "email_received"
    CALL_TRANSCRIPT = "call_transcript"
    FORM_SUBMITTED = "form_submitted"


class ServiceChannel(StrEnum):
    """Where a service conversation happened."""

    CHAT = "chat"
    EMAIL = "email"
    CALL = "call"
    SMS = "sms"
    WEB = "web"
    SOCIAL = "social"


MAX_MESSAGE_CHARS = 10_000


class ServiceEventRecord(Record):
    """A service conversation as a help desk or chat tool sends it (the canonical service event). Who it is
    about is not given as a customer id: it is resolved from `user_id`, `email`, `account_id` and the session;
    the intent is read from `message`."""

    event_id: str = Field(min_length=1, max_length=96)
    event_type: ServiceEventType
    timestamp: UTCDatetime
    channel: ServiceChannel
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    session_id: str | None = Field(default=None, max_length=128)
    user_id: str | None = Field(default=None, max_length=128)
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    account_id: str | None = Field(default=None, max_length=128)
    agent_id: str | None = Field(default=None, max_length=64)
    outcome: str | None = Field(default=None, max_length=64)
    satisfaction: float | None = Field(default=None, ge=0, le=10)
    resolution_flag: bool | None = None
    product: str | None = Field(default=None, max_length=64)


class OutreachRecord(Record):
    id: str = Field(min_length=1, max_length=96)
    customer_id: str = Field(min_length=1, max_length=64)
    attempted_at: UTCDatetime
    channel: Channel
    outcome: Outcome
    template_id: str | None = Field(default=None, max_length=96)
    campaign: str | None = Field(default=None, max_length=64)
    product: str | None = Field(default=None, max_length=64)
    rep_id: str | None = Field(default=None, max_length=64)
    value: float | None = Field(default=None, ge=0)
    attributes: dict[str, Any] = Field(default_factory=dict)



RECORD_TYPES: dict[str, type[Record]] = {
    "customer": CustomerRecord,
    "consent": ConsentRecord,
    "event": EventRecord,
    "outreach": OutreachRecord,
}
# Timestamp field of each record kind, checked against "now" so no record claims to come from the future.
TIMESTAMP_FIELDS = {"customer": "created_at", "consent": "updated_at", "event": "occurred_at", "outreach": "attempted_at"}
