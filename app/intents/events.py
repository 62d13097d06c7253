"""Canonical service events as received: stored with hashed join keys and their identity, or quarantined.

The raw message is kept (audit, retraining); the email, user, session and account ids are kept only as keyed
hashes (app/intents/identity.py), which is all later events join on. A quarantined event waits for an analyst
to say who it is about, or to discard it.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain import ServiceEventRecord, content_hash
from app.errors import Conflict, NotFound
from app.intents.identity import Identity, email_domain, keyed_hash
from app.intents.tables import ServiceEvent
from app.review import personal_data


def get(*, session: Session, event_id: str) -> ServiceEvent | None:
    return session.get(ServiceEvent, event_id)


def session_matches(*, session: Session, record: ServiceEventRecord, hash_key: str) -> list[str]:
    """Customers that earlier events of the same session were matched to (newest first)."""
    key = keyed_hash(record.session_id, hash_key)
    if key is None:
        return []
    return list(dict.fromkeys(session.scalars(
        select(ServiceEvent.customer_id).where(ServiceEvent.session_key == key, ServiceEvent.customer_id.is_not(None))
        .order_by(ServiceEvent.received_at.desc()).limit(20))))


def store(*, session: Session, record: ServiceEventRecord, identity: Identity, now: datetime, hash_key: str
          ) -> ServiceEvent:
    row = ServiceEvent(
        event_id=record.event_id, content_hash=content_hash(record), event_type=record.event_type,
        occurred_at=record.timestamp, channel=record.channel, message=record.message,
        session_key=keyed_hash(record.session_id, hash_key), user_key=keyed_hash(record.user_id, hash_key),
        email_key=keyed_hash(record.email, hash_key), email_domain=email_domain(record.email),
        account_key=keyed_hash(record.account_id, hash_key), agent_id=record.agent_id, outcome=record.outcome,
        satisfaction=record.satisfaction, resolution_flag=record.resolution_flag, product=record.product,
        identity_status="matched" if identity.matched else "quarantined", customer_id=identity.customer_id,
        match_method=identity.method, match_confidence=identity.confidence, match_reason=identity.reason,
        candidates=[{"customer_id": c.customer_id, "confidence": round(c.confidence, 4), "agreements": c.agreements}
                    for c in identity.candidates],
        received_at=now)
    session.add(row)
    return row


class QuarantinedView(BaseModel):
    """A quarantined event as an analyst sees it: the message with personal data redacted, the email's domain,
    why it was not matched, and the candidates the matcher weighed."""

    event_id: str
    event_type: str
    channel: str
    occurred_at: datetime
    received_at: datetime
    message: str
    email_domain: str | None
    reason: str
    candidates: list[dict]


def quarantined(*, session: Session, pii_patterns: dict[str, re.Pattern[str]], limit: int = 200
                ) -> list[QuarantinedView]:
    rows = session.scalars(select(ServiceEvent).where(ServiceEvent.identity_status == "quarantined")
                           .order_by(ServiceEvent.received_at).limit(limit)).all()
    return [QuarantinedView(event_id=r.event_id, event_type=r.event_type, channel=r.channel, occurred_at=r.occurred_at,
                            received_at=r.received_at, message=personal_data.redact(r.message, pii_patterns),
                            email_domain=r.email_domain, reason=r.match_reason, candidates=r.candidates or [])
            for r in rows]


def settle(*, session: Session, event_id: str, by: str, now: datetime, customer_id: str | None) -> ServiceEvent:
    """An analyst's answer for a quarantined event: the customer it is about, or None to discard it."""
    row = session.get(ServiceEvent, event_id)
    if row is None:
        raise NotFound(f"no service event {event_id!r}", field="event_id")
    if row.identity_status != "quarantined":
        raise Conflict(f"event {event_id} is not in quarantine (it is {row.identity_status})", field="event_id")
    row.identity_status = "matched" if customer_id else "discarded"
    row.customer_id, row.reviewed_by, row.reviewed_at = customer_id, by, now
    if customer_id:
        row.match_method, row.match_confidence = "analyst", 1.0
        row.match_reason = f"an analyst ({by}) matched it"
    return row
