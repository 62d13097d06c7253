"""Events in: customer events and canonical service events, queued for the worker's next round; what became of
each; and the identity quarantine analysts work through."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Discriminator, Field, Tag

from app.cards import events, operations
from app.cards.events import EventAccepted, EventStatus
from app.cards.operations import Operations
from app.domain import EventRecord, ServiceEventRecord
from app.http.deps import CurrentUser, ServicesDep
from app.intents.events import QuarantinedView

router = APIRouter(prefix="/api", tags=["events"])


SERVICE_EVENT_FIELDS = frozenset({"event_id", "event_type", "timestamp", "message"})


def _shape(value: Any) -> str:
    """A body with any of the canonical service event's own fields is a service event (so a missing `event_id`
    is named as missing); anything else a customer event."""
    return "service_event" if isinstance(value, dict) and SERVICE_EVENT_FIELDS & value.keys() else "customer_event"


PostedEvent = Annotated[Annotated[EventRecord, Tag("customer_event")] | Annotated[ServiceEventRecord, Tag("service_event")],
                        Discriminator(_shape)]


@router.post("/events", status_code=202)
def post_event(event: PostedEvent, user: CurrentUser, services: ServicesDep) -> EventAccepted:
    """Two shapes. A customer event (`id`, `customer_id`, `occurred_at`, `type`...: a page view, or a
    conversation about a known customer) from a rep about their own customer or from an integration. A
    canonical service event (`event_id`, `event_type`, `timestamp`, `channel`, `message`, and `user_id`,
    `email`, `account_id`, `session_id` to say who wrote it) from an integration: it is resolved to a customer,
    or quarantined for an analyst when no customer is certain. The worker routes queued events within
    WORKER_INTERVAL_S seconds. Posting the same event again is a no-op; other content under a used id is 409."""
    now, settings = services.now(), services.settings
    if isinstance(event, ServiceEventRecord):
        return services.write(lambda s: events.accept_service_event(
            session=s, user=user, record=event, now=now, skew_s=settings.event_clock_skew_s,
            hash_key=settings.identity_hash_key, match_threshold=settings.identity_match_threshold))
    return services.write(lambda s: events.accept_event(session=s, user=user, record=event, now=now,
                                                        skew_s=settings.event_clock_skew_s))


@router.get("/events/{event_id}")
def get_event(event_id: str, user: CurrentUser, services: ServicesDep) -> EventStatus:
    """What happened to a posted event: its status (pending, processed, suppressed, quarantined, discarded,
    failed), the intents read from its text with their confidences, who it was matched to and how, the routing
    rule and the card it made, the lead score before and after, the feature-set, model, taxonomy and routing
    policy versions, and how long the worker took."""
    return services.query(lambda s: events.event_status(session=s, user=user, event_id=event_id))


class Label(BaseModel):
    intent: str = Field(min_length=1, max_length=64)


@router.post("/events/{event_id}/label")
def label_event(event_id: str, body: Label, user: CurrentUser, services: ServicesDep) -> events.Relabelled:
    """Say what a message is really about (a rep for their own customers, or an analyst): the classifier learns
    it from its next round on; what it had read stays on the event (audited)."""
    now, taxonomy = services.now(), services.intents.taxonomy
    return services.write(lambda s: events.relabel(session=s, user=user, event_id=event_id, intent=body.intent,
                                                   taxonomy=taxonomy, now=now))


@router.get("/quarantine")
def list_quarantine(user: CurrentUser, services: ServicesDep) -> list[QuarantinedView]:
    """Service events no customer could be matched to with confidence (oldest first), for analysts: the
    message with personal data redacted, why it was held, and the candidates the matcher weighed."""
    patterns = services.reviewer.policy.pii_patterns
    return services.query(lambda s: events.quarantine(session=s, user=user, pii_patterns=patterns))


@router.get("/operations")
def get_operations(user: CurrentUser, services: ServicesDep) -> Operations:
    """The figures of the operators' page (/operations) as JSON, for analysts."""
    events.require_analyst(user)
    return services.query(lambda s: operations.compute(session=s, now=services.now()))


class Resolution(BaseModel):
    customer_id: str = Field(min_length=1, max_length=64)


class Discard(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


@router.post("/quarantine/{event_id}/resolve")
def resolve_quarantined(event_id: str, body: Resolution, user: CurrentUser, services: ServicesDep) -> EventAccepted:
    """An analyst says who a quarantined event is about: it becomes that customer's event and is routed in the
    worker's next round (audited)."""
    now = services.now()
    return services.write(lambda s: events.resolve_quarantined(session=s, user=user, event_id=event_id,
                                                               customer_id=body.customer_id, now=now))


@router.post("/quarantine/{event_id}/discard")
def discard_quarantined(event_id: str, body: Discard, user: CurrentUser, services: ServicesDep) -> EventAccepted:
    """An analyst throws a quarantined event away, saying why (audited); nothing is written to any customer."""
    now = services.now()
    return services.write(lambda s: events.discard_quarantined(session=s, user=user, event_id=event_id,
                                                               reason=body.reason, now=now))
