"""Writing single records of the history from the product itself (the importer writes files in batches)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.data.tables import Event, OutreachAttempt
from app.domain import EventRecord, OutreachRecord


def record_attempt(*, session: Session, record: OutreachRecord) -> None:
    """Store (or correct) one contact attempt and its outcome: what the next training run learns from."""
    row = session.get(OutreachAttempt, record.id)
    if row is None:
        row = OutreachAttempt(id=record.id)
        session.add(row)
    for name, value in record.model_dump().items():
        setattr(row, name, value)


def get_event(*, session: Session, event_id: str) -> Event | None:
    return session.get(Event, event_id)


def same_event(row: Event, record: EventRecord, *, intent_was_read: bool = False) -> bool:
    """Whether a stored event says exactly what a posted record says (a retry, not a different event). When its
    intent was read from its text (`intent_was_read`), the stored intent is that reading, not part of the post."""
    return all(getattr(row, name) == value for name, value in record.model_dump().items()
               if not (name == "intent" and intent_was_read and value is None))


def add_event(*, session: Session, record: EventRecord) -> Event:
    row = Event(**record.model_dump())
    session.add(row)
    return row


def set_intent(*, session: Session, event_id: str, intent: str, product: str | None = None) -> None:
    """Give an event posted without an intent the intent read from its text, and the product it names when it
    came without one (never overwrites what was posted)."""
    row = session.get(Event, event_id)
    if row is not None and row.intent is None:
        row.intent = intent
    if row is not None and row.product is None and product is not None:
        row.product = product


def texts(*, session: Session, event_ids: list[str]) -> dict[str, str]:
    """The text of each of these events that has one."""
    if not event_ids:
        return {}
    rows = session.execute(select(Event.id, Event.text).where(Event.id.in_(event_ids), Event.text.is_not(None)))
    return {event_id: text for event_id, text in rows}
