"""Events in: stored, queued for the trigger worker, which makes or refreshes a card within a round."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter

from app.api.deps import CurrentUser, StoreDep
from app.cards import service as cards
from app.domain import EventRecord
from app.store.tables import Event

router = APIRouter(prefix="/api", tags=["events"])


@router.post("/events", status_code=202)
def post_event(event: EventRecord, user: CurrentUser, factory: StoreDep) -> dict[str, Any]:
    """A customer event (a page view, a service conversation with an intent...). Triggers are checked by the
    background worker within WORKER_INTERVAL_S seconds."""
    now = datetime.now(timezone.utc)
    if event.occurred_at > now:
        from fastapi import HTTPException

        raise HTTPException(status_code=422, detail="occurred_at: must not be in the future")
    cards.accept_event(factory, Event(**event.model_dump()), now=now)
    return {"event_id": event.id, "queued": True}
