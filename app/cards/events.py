"""Events in, routed cards out: the event queue, identity quarantine and routing lineage (owned by app.cards).

Two shapes come in. A customer event (`EventRecord`: a page view, or a conversation already about a known
customer) is stored and queued. A canonical service event (`ServiceEventRecord`: what a help desk sends, with
an email or user id instead of a customer id) is first resolved to a customer (app/intents/identity.py); a
matched one is stored and queued the same way, an unmatched or ambiguous one waits in quarantine for an
analyst, and nothing is written to any customer.

The worker reads a queued event's intent (posted, or classified from its text), and the routing policy
(script_library/routing.yaml) decides whether it makes a card, whose, and how fast. Every routed event keeps
its lineage on its queue row: the rule, the card, the lead score before and after, and the feature-set,
model, taxonomy and routing-policy versions.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.cards.service import LIVE, CardStatus, move_card, new_card_id
from app.cards.tables import Card, EventJob
from app.data import history
from app.data.tables import Customer, Event
from app.domain import Channel, EventRecord, EventType, ServiceEventRecord, content_hash
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.intents import events as service_events
from app.intents import service as intents
from app.intents.identity import resolve
from app.intents.routing import Route, RoutingPolicy
from app.intents.tables import EventIntent, ServiceEvent
from app.intents.taxonomy import Taxonomy
from app.models import registry
from app.models.tables import Decision
from app.review import service as review
from app.users.service import Role
from app.users.tables import User

ANALYSTS = (Role.ADMIN, Role.DATA_SCIENTIST, Role.COMPLIANCE)


class EventAccepted(BaseModel):
    event_id: str
    queued: bool  # waiting for the worker's next round (False: quarantined or discarded)
    duplicate: bool = False
    identity: str | None = None  # service events: matched | quarantined | discarded


def _check_time(occurred_at: datetime, now: datetime, skew_s: float, field: str) -> None:
    if occurred_at.year < 1970:
        raise InvalidInput("is before 1970: not a plausible time for an event", field=field)
    if occurred_at > now + timedelta(seconds=skew_s):
        raise InvalidInput("must not be in the future", field=field)


def _queue(session: Session, record: EventRecord, now: datetime) -> None:
    history.add_event(session=session, record=record)
    session.add(EventJob(event_id=record.id, status="pending", created_at=now, customer_id=record.customer_id))


def accept_event(*, session: Session, user: User, record: EventRecord, now: datetime, skew_s: float) -> EventAccepted:
    """Store a posted event and queue it for the worker. Reps post events of their own customers, an
    integration (or admin) of any. Posting the same event again is a no-op; another event under a used id is
    refused."""
    if user.role not in (Role.REP, Role.INTEGRATION, Role.ADMIN):
        raise Forbidden(f"events come from reps and integrations (you are {user.role})", field="role")
    _check_time(record.occurred_at, now, skew_s, "occurred_at")
    customer = session.get(Customer, record.customer_id)
    if customer is None:
        raise InvalidInput(f"customer {record.customer_id!r} not found", field="customer_id")
    if user.role == Role.REP and customer.owner_rep != user.rep_id:
        raise Forbidden(f"customer {record.customer_id} is not yours: a rep posts events of their own customers",
                        field="customer_id")
    if service_events.get(session=session, event_id=record.id) is not None:
        raise Conflict(f"event {record.id!r} was already posted as a service event: use a new id", field="id")
    stored = history.get_event(session=session, event_id=record.id)
    if stored is not None:
        read = intents.classified(session=session, event_id=record.id) is not None
        if not history.same_event(stored, record, intent_was_read=read):
            raise Conflict(f"event {record.id!r} was already posted with other content: use a new id", field="id")
        return EventAccepted(event_id=record.id, queued=True, duplicate=True)
    _queue(session, record, now)
    return EventAccepted(event_id=record.id, queued=True)


def _as_customer_event(row: ServiceEvent, customer_id: str) -> EventRecord:
    """A matched service event as an event of its customer (the raw message is its text: the classifier
    redacts personal data before it reads it)."""
    channel = row.channel if row.channel in {c.value for c in Channel} else None
    return EventRecord(id=row.event_id, customer_id=customer_id, occurred_at=row.occurred_at,
                       type=EventType.SERVICE_CONVERSATION, product=row.product, channel=channel, text=row.message,
                       attributes={"event_type": row.event_type, "service_channel": row.channel,
                                   "agent_id": row.agent_id, "outcome": row.outcome, "satisfaction": row.satisfaction,
                                   "resolution_flag": row.resolution_flag})


def accept_service_event(*, session: Session, user: User, record: ServiceEventRecord, now: datetime, skew_s: float,
                         hash_key: str, match_threshold: float) -> EventAccepted:
    """Store a canonical service event with who it was resolved to: matched, it is queued as its customer's
    event; unmatched or ambiguous, it waits in quarantine. The same event again is a no-op; other content
    under a used id is refused."""
    if user.role not in (Role.INTEGRATION, Role.ADMIN):
        raise Forbidden(f"service events come from integrations (you are {user.role})", field="role")
    _check_time(record.timestamp, now, skew_s, "timestamp")
    stored = service_events.get(session=session, event_id=record.event_id)
    if stored is not None:
        if stored.content_hash != content_hash(record):
            raise Conflict(f"event {record.event_id!r} was already posted with other content: use a new id",
                           field="event_id")
        return EventAccepted(event_id=record.event_id, queued=stored.identity_status == "matched", duplicate=True,
                             identity=stored.identity_status)
    if history.get_event(session=session, event_id=record.event_id) is not None:
        raise Conflict(f"event {record.event_id!r} was already posted as a customer event: use a new id",
                       field="event_id")
    identity = resolve(session=session, record=record, threshold=match_threshold,
                       session_matches=service_events.session_matches(session=session, record=record, hash_key=hash_key))
    row = service_events.store(session=session, record=record, identity=identity, now=now, hash_key=hash_key)
    if identity.matched:
        _queue(session, _as_customer_event(row, identity.customer_id), now)
    else:
        audit.record(session=session, actor=user.name, action="event_quarantined", subject_type="event",
                     subject_id=row.event_id, now=now, details={"reason": identity.reason,
                                                                "candidates": len(identity.candidates)})
    return EventAccepted(event_id=row.event_id, queued=identity.matched, identity=row.identity_status)


# --- quarantine ------------------------------------------------------------------------------------------

def require_analyst(user: User) -> None:
    if user.role not in ANALYSTS:
        raise Forbidden(f"this is for analysts: data scientists, compliance and admins (you are {user.role})",
                        field="role")


def quarantine(*, session: Session, user: User, pii_patterns: dict[str, re.Pattern[str]], limit: int = 200
               ) -> list[service_events.QuarantinedView]:
    require_analyst(user)
    return service_events.quarantined(session=session, pii_patterns=pii_patterns, limit=limit)


def resolve_quarantined(*, session: Session, user: User, event_id: str, customer_id: str, now: datetime
                        ) -> EventAccepted:
    """An analyst says who a quarantined event is about: it is queued as that customer's event."""
    require_analyst(user)
    if session.get(Customer, customer_id) is None:
        raise InvalidInput(f"customer {customer_id!r} not found", field="customer_id")
    row = service_events.settle(session=session, event_id=event_id, by=user.name, now=now, customer_id=customer_id)
    _queue(session, _as_customer_event(row, customer_id), now)
    audit.record(session=session, actor=user.name, action="event_resolved", subject_type="event",
                 subject_id=event_id, now=now, details={"customer_id": customer_id})
    return EventAccepted(event_id=event_id, queued=True, identity=row.identity_status)


def discard_quarantined(*, session: Session, user: User, event_id: str, reason: str, now: datetime) -> EventAccepted:
    require_analyst(user)
    if not reason.strip():
        raise InvalidInput("must say why the event is thrown away", field="reason")
    row = service_events.settle(session=session, event_id=event_id, by=user.name, now=now, customer_id=None)
    audit.record(session=session, actor=user.name, action="event_discarded", subject_type="event",
                 subject_id=event_id, now=now, details={"reason": reason.strip()})
    return EventAccepted(event_id=event_id, queued=False, identity=row.identity_status)


# --- what happened to an event ---------------------------------------------------------------------------

class EventReading(BaseModel):
    """What the classifier read in an event's text."""

    intent: str
    confidence: float
    runner_up: str | None
    secondary: str | None = None
    secondary_confidence: float | None = None
    severity: str | None = None
    stage_candidate: str | None = None
    taxonomy_version: str
    model: str
    classified_at: datetime


class IntentConfidence(BaseModel):
    intent: str
    confidence: float | None


class IdentityView(BaseModel):
    customer_id: str | None
    method: str
    confidence: float
    reason: str


class EventStatus(BaseModel):
    """What happened to a posted event: where it is (pending, processed, suppressed, quarantined, discarded,
    failed), what was read in it, who it is about, the rule that fired and the card it made, the lead score
    before and after, the versions behind all of that, and how long it took."""

    event_id: str
    customer_id: str | None
    occurred_at: datetime
    type: str
    product: str | None = None  # given with the event, or the catalogue product its message names
    posted_intent: str | None
    status: str
    result: str | None
    # The classification fields of the canonical service event.
    intent_primary: str | None = None
    intent_secondary: str | None = None
    severity: str | None = None
    lifecycle_stage_candidate: str | None = None
    intents: list[IntentConfidence] = []  # the intents read, with their confidences
    read_as: EventReading | None
    identity: IdentityView | None = None
    route: str | None = None
    card_id: str | None
    score_before: float | None = None
    score_after: float | None = None
    decision_method: str | None = None  # model | rule-based
    decision_model_version: str | None = None
    decision_policy_version: str | None = None
    model_version: str | None = None  # the lead-score model behind the routing decision (lineage)
    feature_set_version: str | None = None
    taxonomy_version: str | None = None
    routing_policy_version: str | None = None
    queued_at: datetime | None
    processed_at: datetime | None
    processing_seconds: float | None


def _reading(found: EventIntent | None) -> EventReading | None:
    if found is None:
        return None
    return EventReading(intent=found.intent, confidence=found.confidence, runner_up=found.runner_up,
                        secondary=found.secondary, secondary_confidence=found.secondary_confidence,
                        severity=found.severity, stage_candidate=found.stage_candidate,
                        taxonomy_version=found.taxonomy_version, model=found.model, classified_at=found.classified_at)


def event_status(*, session: Session, user: User, event_id: str) -> EventStatus:
    """A posted event as its poster and the people who act on it may see it: reps for their own customers,
    integrations, compliance, data scientists and admins for any."""
    if user.role == Role.CONTENT:
        raise Forbidden("the content team does not read customer events", field="role")
    arrived = service_events.get(session=session, event_id=event_id)
    event = history.get_event(session=session, event_id=event_id)
    if event is None and arrived is None:
        raise NotFound(f"no event {event_id!r}", field="event_id")
    customer = session.get(Customer, event.customer_id) if event is not None else None
    if user.role == Role.REP and (customer is None or customer.owner_rep != user.rep_id):
        raise Forbidden(f"event {event_id} is about a customer who is not yours", field="event_id")
    job = session.get(EventJob, event_id)
    decision = session.get(Decision, job.decision_id) if job is not None and job.decision_id else None
    identity = IdentityView(customer_id=arrived.customer_id, method=arrived.match_method,
                            confidence=arrived.match_confidence, reason=arrived.match_reason) if arrived else None
    if job is None:
        status = arrived.identity_status if arrived is not None and arrived.identity_status != "matched" else "pending"
    else:
        status = shown_status(job.status)
    occurred = event.occurred_at if event is not None else arrived.occurred_at
    reading = _reading(intents.classified(session=session, event_id=event_id))
    # A read intent is also stored as the event's intent (for the features): it was posted only when none was read.
    posted = event.intent if event is not None and reading is None else None
    return EventStatus(
        event_id=event_id, customer_id=event.customer_id if event is not None else None, occurred_at=occurred,
        type=event.type if event is not None else arrived.event_type, posted_intent=posted,
        product=event.product if event is not None else arrived.product,
        status=status, result=job.result if job is not None else (arrived.match_reason if arrived else None),
        intent_primary=reading.intent if reading else posted,
        intent_secondary=reading.secondary if reading else None,
        severity=reading.severity if reading else None,
        lifecycle_stage_candidate=reading.stage_candidate if reading else None,
        intents=([IntentConfidence(intent=reading.intent, confidence=reading.confidence)]
                 + ([IntentConfidence(intent=reading.secondary, confidence=reading.secondary_confidence)]
                    if reading.secondary else [])) if reading else [],
        read_as=reading, identity=identity, model_version=job.model_version if job else None,
        route=job.route if job else None, card_id=job.card_id if job else None,
        score_before=job.score_before if job else None, score_after=job.score_after if job else None,
        decision_method=decision.method if decision is not None else None,
        decision_model_version=decision.model_version if decision is not None else None,
        decision_policy_version=decision.policy_version if decision is not None else None,
        feature_set_version=job.feature_set_version if job else None,
        taxonomy_version=job.taxonomy_version if job else None,
        routing_policy_version=job.routing_policy_version if job else None,
        queued_at=job.created_at if job is not None else None, processed_at=job.processed_at if job is not None else None,
        processing_seconds=(job.processed_at - job.created_at).total_seconds()
        if job is not None and job.processed_at is not None else None)


# --- people's labels: corrections the classifier learns from ---------------------------------------------

class Relabelled(BaseModel):
    event_id: str
    intent: str
    read_as: str | None  # what the classifier had said
    labelled_by: str


def relabel(*, session: Session, user: User, event_id: str, intent: str, taxonomy: Taxonomy, now: datetime
            ) -> Relabelled:
    """A rep (their own customers' messages) or an analyst says what a message is about. The classifier learns
    it before its next classification; what it read at the time stays on the event's lineage."""
    if user.role not in (Role.REP, Role.DATA_SCIENTIST, Role.ADMIN):
        raise Forbidden(f"reps and analysts label messages (you are {user.role})", field="role")
    event = history.get_event(session=session, event_id=event_id)
    if event is None:
        raise NotFound(f"no event {event_id!r}", field="event_id")
    if not (event.text or "").strip():
        raise InvalidInput(f"event {event_id} has no message to label", field="event_id")
    customer = session.get(Customer, event.customer_id)
    if user.role == Role.REP and (customer is None or customer.owner_rep != user.rep_id):
        raise Forbidden(f"event {event_id} is about a customer who is not yours", field="event_id")
    row = intents.label(session=session, event_id=event_id, intent=intent, by=user.name, now=now, taxonomy=taxonomy)
    audit.record(session=session, actor=user.name, action="event_relabelled", subject_type="event",
                 subject_id=event_id, now=now, details={"intent": intent, "read_as": row.read_as})
    return Relabelled(event_id=event_id, intent=intent, read_as=row.read_as, labelled_by=user.name)


def labelled_examples(*, session: Session) -> list[tuple[str, str]]:
    """(message, intent) for every labelled event, its newest label: what the classifier learns beside the
    taxonomy's examples."""
    labels = intents.latest_labels(session=session)
    texts = history.texts(session=session, event_ids=list(labels))
    return [(texts[event_id], intent) for event_id, intent in sorted(labels.items()) if texts.get(event_id)]


# --- routing (the worker) --------------------------------------------------------------------------------

def shown_status(job_status: str) -> str:
    """The queue row's status as people read it: a routed event is `processed` (stored as `done`)."""
    return "processed" if job_status == "done" else job_status


class RouteCheck(BaseModel):
    event_id: str
    customer_id: str | None
    intent: str | None
    route: str | None = None
    fires: bool
    suppressed: bool = False
    why: str


def pending_events(*, session: Session, limit: int = 100) -> list[str]:
    return list(session.scalars(select(EventJob.event_id).where(EventJob.status == "pending")
                                .order_by(EventJob.created_at).limit(limit)))


def is_pending(*, session: Session, event_id: str) -> bool:
    """Whether the event still waits to be routed (a job retried after its worker died may find it done)."""
    job = session.get(EventJob, event_id)
    return job is not None and job.status == "pending"


def _event_intent(session: Session, event: Event) -> tuple[str | None, EventIntent | None]:
    """The event's intent: what the classifier read in its text when it was read, else the intent posted."""
    found = intents.classified(session=session, event_id=event.id)
    if found is not None:
        return found.intent, found
    return event.intent, None


def text_to_classify(*, session: Session, event_id: str) -> str | None:
    """The text of an event posted without an intent and not classified yet (None when there is nothing to do)."""
    event = history.get_event(session=session, event_id=event_id)
    if event is None or event.intent is not None or not (event.text or "").strip():
        return None
    if intents.classified(session=session, event_id=event_id) is not None:
        return None
    return event.text


def record_reading(*, session: Session, event_id: str, classification: intents.Classification, now: datetime,
                   product: str | None = None) -> None:
    """Store what the classifier read; an intent of the taxonomy also becomes the event's intent, so the
    customer's features (intent counts in the last 14 days) and the fresh lead score see it, and a product the
    message names becomes its product when none was given."""
    intents.record(session=session, event_id=event_id, classification=classification, now=now)
    history.set_intent(session=session, event_id=event_id, intent=classification.intent, product=product)


class ChangeAsk(BaseModel):
    """A routed event whose message asks to change the customer's records: what change intake needs."""

    event_id: str
    customer_id: str
    channel: str
    text: str
    identity: str  # how the customer was found: customer_id (posted as theirs), user_id, email, probabilistic


def change_asked(*, session: Session, event_id: str, intents_of_changes: frozenset[str]) -> ChangeAsk | None:
    """The event, if it was read (or posted) as one of the change-request intents and has a message."""
    event = history.get_event(session=session, event_id=event_id)
    if event is None or event.intent not in intents_of_changes or not (event.text or "").strip():
        return None
    received = service_events.get(session=session, event_id=event_id)
    return ChangeAsk(event_id=event_id, customer_id=event.customer_id, channel=event.channel or "chat",
                     text=event.text, identity=received.match_method if received is not None else "customer_id")


def check_route(*, session: Session, event_id: str, taxonomy: Taxonomy, routing: RoutingPolicy, now: datetime
                ) -> RouteCheck:
    """Does this queued event make a card? Its intent's route, the customer's stage, and the cooldown decide
    (the lead score is checked once the fresh decision is made)."""
    event = history.get_event(session=session, event_id=event_id)
    customer = session.get(Customer, event.customer_id) if event is not None else None
    if event is None or customer is None:
        return RouteCheck(event_id=event_id, customer_id=None, intent=None, fires=False,
                          why="failed: the event or its customer is gone")
    intent, found = _event_intent(session, event)
    spec = taxonomy.intents.get(intent or "")
    if spec is None:
        return RouteCheck(event_id=event_id, customer_id=customer.id, intent=intent, fires=False,
                          why="no trigger" if found is None else f"no trigger: read as {intent}")
    verdict = routing.route_for(spec.route, stage=customer.lifecycle_stage)
    if not verdict.fires:
        return RouteCheck(event_id=event_id, customer_id=customer.id, intent=intent, route=spec.route, fires=False,
                          why=f"no trigger: {verdict.why}")
    recent = _recent_card(session, customer.id, verdict.route, now)
    if recent is not None:
        return RouteCheck(event_id=event_id, customer_id=customer.id, intent=intent, route=spec.route, fires=False,
                          suppressed=True, why=f"suppressed: card {recent.card_id} was made by route {spec.route} "
                                              f"for this customer at {recent.processed_at:%Y-%m-%d %H:%M} "
                                              f"(cooldown {verdict.route.cooldown_minutes} minutes)")
    return RouteCheck(event_id=event_id, customer_id=customer.id, intent=intent, route=spec.route, fires=True,
                      why=verdict.why)


def _recent_card(session: Session, customer_id: str, route: Route, now: datetime) -> EventJob | None:
    if route.cooldown_minutes <= 0:
        return None
    since = now - timedelta(minutes=route.cooldown_minutes)
    return session.scalars(select(EventJob).where(EventJob.customer_id == customer_id, EventJob.route == route.name,
                                                  EventJob.card_id.is_not(None), EventJob.processed_at >= since)
                           .order_by(EventJob.processed_at.desc())).first()


def last_score(*, session: Session, customer_id: str) -> float | None:
    """The customer's lead score as it stood: their latest decision's."""
    return session.scalars(select(Decision.score).where(Decision.customer_id == customer_id)
                           .order_by(Decision.as_of.desc(), Decision.id.desc())).first()


def finish_event(*, session: Session, event_id: str, result: str, now: datetime, route: str | None = None,
                 suppressed: bool = False) -> str:
    row = session.get(EventJob, event_id)
    if row is not None:
        row.status = "failed" if result.startswith("failed") else ("suppressed" if suppressed else "done")
        row.processed_at, row.result, row.route = now, result, route
    return result


def card_from_route(*, session: Session, event_id: str, route: Route, decision: Decision, score_before: float | None,
                    taxonomy: Taxonomy, routing: RoutingPolicy, now: datetime) -> str:
    """Make or refresh the customer's card for a fired route with the fresh decision, and record the lineage.
    An adopted card keeps its draft (the rep is already working with it); an open or queued one is drafted
    again for the new reasons, and the old draft's queue items are withdrawn."""
    event = history.get_event(session=session, event_id=event_id)
    intent, found = _event_intent(session, event)
    job = session.get(EventJob, event_id)
    job.decision_id, job.score_before, job.score_after = decision.id, score_before, decision.score
    job.model_version = decision.model_version
    job.feature_set_version = registry.feature_set_version(session=session, model_version=decision.model_version)
    job.taxonomy_version = found.taxonomy_version if found is not None else taxonomy.version
    job.routing_policy_version = routing.version
    if decision.status != "recommended":
        why = ", ".join(map(str, decision.suppressed_by)) or decision.status
        return finish_event(session=session, event_id=event_id, now=now, route=route.name,
                            result=f"trigger {intent}: not recommended ({why})")
    if (decision.score or 0.0) < route.min_score:
        return finish_event(session=session, event_id=event_id, now=now, route=route.name,
                            result=f"trigger {intent}: lead score {decision.score:.2f} below the route's "
                                   f"{route.min_score:.2f}")
    read = f" (read from the message, {found.confidence:.0%}, taxonomy {found.taxonomy_version})" if found else ""
    trigger = f"{intent} at {event.occurred_at.isoformat()}{read}"
    customer = session.get(Customer, decision.customer_id)
    card = session.scalars(select(Card).where(Card.customer_id == decision.customer_id, Card.status.in_(LIVE))).first()
    if card is None:
        rep_id, team = (customer.owner_rep, customer.team) if route.assign == "owner" else (None, route.team)
        card = Card(id=new_card_id(), customer_id=decision.customer_id, rep_id=rep_id, team=team,
                    status=CardStatus.OPEN, source="trigger", day=now.date().isoformat(), created_at=now)
        session.add(card)
        action = "created"
    else:
        action = "refreshed"
        if card.status == CardStatus.QUEUED:
            move_card(card, CardStatus.OPEN)
    card.priority, card.trigger = float(decision.score or 0) + 1.0, trigger
    card.route, card.sla_minutes = route.name, route.sla_minutes
    card.updated_at, card.due_at = now, now + timedelta(minutes=route.sla_minutes or 0)
    if card.status != CardStatus.ADOPTED:
        if card.draft_id:
            review.withdraw(session=session, lineage_id=card.draft_id, by="system", now=now,
                            reason=f"card refreshed by {intent}")
        card.decision_id, card.draft_id, card.template_id = decision.id, None, None  # drafted again
    session.flush()
    job.card_id = card.id
    audit.record(session=session, actor="system", action=f"card_{action}", subject_type="card", subject_id=card.id,
                 now=now, details={"trigger": trigger, "event_id": event_id, "route": route.name,
                                   "decision": decision.id, "kept_draft": card.status == CardStatus.ADOPTED,
                                   "score_before": score_before, "score_after": decision.score,
                                   "feature_set_version": job.feature_set_version,
                                   "model_version": decision.model_version, "taxonomy_version": job.taxonomy_version,
                                   "routing_policy_version": routing.version})
    return finish_event(session=session, event_id=event_id, now=now, route=route.name,
                        result=f"card {card.id} {action} by {intent} (route {route.name})")
