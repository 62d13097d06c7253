"""What operators watch in the service-event flow: intent volumes and trends by channel, how well the classifier
agrees with people's labels, misroutes, routed cards past their SLA, time from event to first touch, and the
identity quarantine. Read-only; one pass over the last WINDOW_DAYS."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta

import numpy as np
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cards.events import shown_status
from app.cards.service import LIVE
from app.cards.tables import Card, CardAction, EventJob
from app.data.tables import Event
from app.intents import service as intents
from app.intents.tables import EventIntent, IntentLabel, ServiceEvent

WINDOW_DAYS = 28


class IntentVolume(BaseModel):
    intent: str
    by_channel: dict[str, int]
    total: int
    last_week: int
    week_before: int  # the trend: last 7 days against the 7 before


class IntentAgreement(BaseModel):
    """Precision and recall of the classifier's readings against people's labels (the golden set)."""

    intent: str
    labelled: int
    precision: float | None
    recall: float | None


class Misroute(BaseModel):
    event_id: str
    read_as: str | None
    labelled: str
    labelled_by: str
    labelled_at: datetime


class StaleCard(BaseModel):
    card_id: str
    customer_id: str
    route: str | None
    owner: str
    due_at: datetime
    minutes_late: int


class Operations(BaseModel):
    window_days: int
    events: int
    statuses: dict[str, int]  # processed | suppressed | failed | pending
    routes: dict[str, int]  # cards made or refreshed, per route
    volumes: list[IntentVolume]
    agreement: list[IntentAgreement]
    golden_set_size: int
    misroutes: list[Misroute]
    stale: list[StaleCard]
    first_touch_minutes_p50: float | None
    first_touch_minutes_p90: float | None
    touched: int
    quarantined: int
    oldest_quarantined_at: datetime | None


def compute(*, session: Session, now: datetime) -> Operations:
    since = now - timedelta(days=WINDOW_DAYS)
    readings = session.execute(
        select(EventIntent.event_id, EventIntent.intent, Event.channel, Event.attributes, Event.occurred_at)
        .join(Event, Event.id == EventIntent.event_id).where(Event.occurred_at >= since)).all()
    volumes: dict[str, Counter] = defaultdict(Counter)
    weeks: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for _, intent, channel, attributes, occurred_at in readings:
        shown = (attributes or {}).get("service_channel") or channel or "unknown"
        volumes[intent][shown] += 1
        age = (now - occurred_at).days
        if age < 7:
            weeks[intent][0] += 1
        elif age < 14:
            weeks[intent][1] += 1
    jobs = session.execute(select(EventJob.status, EventJob.route, EventJob.card_id)
                           .where(EventJob.created_at >= since)).all()
    return Operations(
        window_days=WINDOW_DAYS, events=len(jobs),
        statuses=dict(Counter(shown_status(status) for status, _, _ in jobs)),
        routes=dict(Counter(route for _, route, card in jobs if card)),
        volumes=sorted((IntentVolume(intent=i, by_channel=dict(c), total=sum(c.values()), last_week=weeks[i][0],
                                     week_before=weeks[i][1]) for i, c in volumes.items()), key=lambda v: -v.total),
        **_agreement(session), stale=_stale(session, now), **_first_touch(session, since),
        quarantined=session.scalar(select(func.count()).select_from(ServiceEvent)
                                   .where(ServiceEvent.identity_status == "quarantined")) or 0,
        oldest_quarantined_at=session.scalar(select(func.min(ServiceEvent.received_at))
                                             .where(ServiceEvent.identity_status == "quarantined")))


def _agreement(session: Session) -> dict:
    """People's newest labels against what the classifier read at the time."""
    labels = intents.latest_labels(session=session)
    read = dict(session.execute(select(EventIntent.event_id, EventIntent.intent)
                                .where(EventIntent.event_id.in_(list(labels)))).all()) if labels else {}
    pairs = [(read[e], label) for e, label in labels.items() if e in read]
    rows = []
    for intent in sorted({p for p, _ in pairs} | {t for _, t in pairs}):
        predicted = sum(p == intent for p, _ in pairs)
        actual = sum(t == intent for _, t in pairs)
        hits = sum(p == t == intent for p, t in pairs)
        rows.append(IntentAgreement(intent=intent, labelled=actual, precision=hits / predicted if predicted else None,
                                    recall=hits / actual if actual else None))
    latest = session.execute(select(IntentLabel).where(IntentLabel.read_as.is_not(None),
                                                       IntentLabel.read_as != IntentLabel.intent)
                             .order_by(IntentLabel.labelled_at.desc()).limit(10)).scalars().all()
    return {"agreement": rows, "golden_set_size": len(pairs),
            "misroutes": [Misroute(event_id=r.event_id, read_as=r.read_as, labelled=r.intent, labelled_by=r.labelled_by,
                                   labelled_at=r.labelled_at) for r in latest]}


def _stale(session: Session, now: datetime) -> list[StaleCard]:
    late = session.scalars(select(Card).where(Card.route.is_not(None), Card.status.in_(LIVE), Card.due_at < now)
                           .order_by(Card.due_at).limit(20)).all()
    return [StaleCard(card_id=c.id, customer_id=c.customer_id, route=c.route, owner=c.rep_id or f"team {c.team}",
                      due_at=c.due_at, minutes_late=int((now - c.due_at).total_seconds() // 60)) for c in late]


def _first_touch(session: Session, since: datetime) -> dict:
    """Minutes from a routed event's arrival to the first thing anyone did with its card."""
    rows = session.execute(
        select(EventJob.created_at, func.min(CardAction.created_at))
        .join(CardAction, CardAction.card_id == EventJob.card_id)
        .where(EventJob.card_id.is_not(None), EventJob.created_at >= since, CardAction.created_at >= EventJob.created_at)
        .group_by(EventJob.event_id, EventJob.created_at)).all()
    minutes = [(touched - arrived).total_seconds() / 60 for arrived, touched in rows if touched is not None]
    if not minutes:
        return {"first_touch_minutes_p50": None, "first_touch_minutes_p90": None, "touched": 0}
    return {"first_touch_minutes_p50": round(float(np.percentile(minutes, 50)), 1),
            "first_touch_minutes_p90": round(float(np.percentile(minutes, 90)), 1), "touched": len(minutes)}
