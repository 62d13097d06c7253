"""Writing single records of the history from the product itself (the importer writes files in batches)."""

from __future__ import annotations

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


def same_event(row: Event, record: EventRecord) -> bool:
    """Whether a stored event says exactly what a posted record says (a retry, not a different event)."""
    return all(getattr(row, name) == value for name, value in record.model_dump().items())


def add_event(*, session: Session, record: EventRecord) -> Event:
    row = Event(**record.model_dump())
    session.add(row)
    return row
