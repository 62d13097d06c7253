"""Events in: stored, queued for the trigger worker, which makes or refreshes a card within a round."""

from __future__ import annotations

from fastapi import APIRouter

from app.cards import service as cards
from app.cards.service import EventAccepted, EventStatus
from app.domain import EventRecord
from app.http.deps import CurrentUser, ServicesDep

router = APIRouter(prefix="/api", tags=["events"])


@router.post("/events", status_code=202)
def post_event(event: EventRecord, user: CurrentUser, services: ServicesDep) -> EventAccepted:
    """A customer event (a page view, a service conversation with an intent...), from a rep about their own
    customer or from an integration. Triggers are checked by the background worker within WORKER_INTERVAL_S
    seconds. Posting the same event again is a no-op; other content under a used id is 409."""
    now = services.now()
    return services.write(lambda s: cards.accept_event(session=s, user=user, record=event, now=now,
                                                       skew_s=services.settings.event_clock_skew_s))


@router.get("/events/{event_id}")
def get_event(event_id: str, user: CurrentUser, services: ServicesDep) -> EventStatus:
    """What happened to a posted event: pending, processed or failed; the intent read from its text (with the
    taxonomy and model versions); the card it created or refreshed, with the decision's model and policy
    versions; and how long the worker took."""
    return services.query(lambda s: cards.event_status(session=s, user=user, event_id=event_id))
