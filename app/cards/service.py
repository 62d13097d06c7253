"""Cards: built from decisions, drafted in the background, acted on by reps, swept for SLA.

At most one live card per customer; each rep gets at most `daily_cap` open cards a day, by priority
(the decision's score), the rest wait as `queued` and move up as cards close. Every action carries an
idempotency key: a retried request returns the first result and records nothing twice. Each action
lands in one transaction with its audit entry.
"""

from __future__ import annotations

import difflib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.domain import Channel, Outcome
from app.review import audit
from app.store.db import transaction
from app.store.tables import (Card, CardAction, Customer, Decision, Draft, Event, EventJob, Feedback, OutreachAttempt,
                              ScoreRun, User)

LIVE = ("open", "queued", "adopted")
REJECT_REASONS = {"not_relevant": "not relevant for this customer", "bad_timing": "wrong time",
                  "wrong_channel": "wrong channel", "already_in_touch": "already in touch",
                  "poor_script": "the script is not usable", "do_not_contact": "customer asked not to be contacted",
                  "other": "other"}
# A new event that meets one of these makes (or refreshes) a card without waiting for the batch run:
# (event intent, lifecycle stage the customer must be in, or None for any).
TRIGGERS = {("pricing_question", "lead"), ("renewal_risk", "active"), ("upsell_interest", "active"),
            ("implementation_blocker", None), ("complaint", None)}


class CardError(ValueError):
    """A request about a card that cannot be done as asked (HTTP 422); the message names the field."""


class NotFound(LookupError):
    """No such card (or not one this user may see)."""


class Forbidden(PermissionError):
    """The user's role or team does not allow this."""


class Conflict(Exception):
    """The card's state does not allow this action now (HTTP 409)."""


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


def can_see(user: User, card: Card) -> bool:
    if user.role in ("admin", "compliance", "data_scientist"):
        return True
    return user.role == "rep" and (card.rep_id == user.rep_id or (card.team is not None and card.team == user.team))


@dataclass
class BuildReport:
    open: int = 0
    queued: int = 0
    skipped_live: int = 0
    by_rep: dict[str, int] = field(default_factory=dict)


def build_cards(factory: sessionmaker[Session], run_id: str, *, now: datetime, daily_cap: int, sla_hours: float
                ) -> BuildReport:
    """The day's cards from a scoring run; customers who already have a live card keep it."""
    report = BuildReport()
    day = now.date().isoformat()
    with factory() as session:
        rows = session.execute(select(Decision.id, Decision.customer_id, Decision.score, Customer.owner_rep, Customer.team)
                               .join(Customer, Customer.id == Decision.customer_id)
                               .where(Decision.run_id == run_id, Decision.status == "recommended")
                               .order_by(Decision.score.desc())).all()
        live = set(session.scalars(select(Card.customer_id).where(Card.status.in_(LIVE))))
        open_today = dict(session.execute(select(Card.rep_id, func.count()).where(Card.day == day, Card.status == "open")
                                          .group_by(Card.rep_id)).all())
    cards = []
    for decision_id, customer_id, score, rep, team in rows:
        if customer_id in live:
            report.skipped_live += 1
            continue
        live.add(customer_id)
        taken = open_today.get(rep, 0)
        status = "open" if taken < daily_cap else "queued"
        open_today[rep] = taken + (status == "open")
        report.open += status == "open"
        report.queued += status == "queued"
        report.by_rep[rep or "-"] = report.by_rep.get(rep or "-", 0) + 1
        cards.append({"id": _new_id(), "customer_id": customer_id, "decision_id": decision_id, "rep_id": rep,
                      "team": team, "status": status, "priority": float(score or 0), "source": "batch", "day": day,
                      "created_at": now, "updated_at": now, "due_at": now + timedelta(hours=sla_hours)})
    with transaction(factory) as session:
        if cards:
            session.execute(Card.__table__.insert(), cards)
        audit.record(session, actor="system", action="cards_built", subject_type="score_run", subject_id=run_id,
                     now=now, details={"open": report.open, "queued": report.queued, "kept": report.skipped_live})
    return report


def promote_queued(session: Session, rep_id: str | None, day: str, daily_cap: int) -> None:
    """Fill a rep's inbox back up to the cap from their queued cards, best first."""
    if rep_id is None:
        return
    open_now = session.scalar(select(func.count()).select_from(Card).where(Card.rep_id == rep_id, Card.status == "open",
                                                                          Card.day == day)) or 0
    for card in session.scalars(select(Card).where(Card.rep_id == rep_id, Card.status == "queued")
                                .order_by(Card.priority.desc()).limit(max(0, daily_cap - open_now))):
        card.status, card.day = "open", day


def views(session: Session, cards: list[Card]) -> list[dict[str, Any]]:
    """Many cards at once: three queries for their customers, decisions and drafts, not three per card."""
    def by_id(model: Any, ids: set[Any]) -> dict[Any, Any]:
        ids.discard(None)
        return {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))} if ids else {}

    customers = by_id(Customer, {c.customer_id for c in cards})
    decisions = by_id(Decision, {c.decision_id for c in cards})
    drafts = by_id(Draft, {c.draft_id for c in cards})
    return [view(session, c, customers[c.customer_id], decisions.get(c.decision_id), drafts.get(c.draft_id))
            for c in cards]


def view(session: Session, card: Card, customer: Customer | None = None, decision: Decision | None = None,
         draft: Draft | None = None) -> dict[str, Any]:
    """A card as the rep sees it."""
    customer = customer or session.get(Customer, card.customer_id)
    if decision is None and card.decision_id:
        decision = session.get(Decision, card.decision_id)
    if draft is None and card.draft_id:
        draft = session.get(Draft, card.draft_id)
    if draft is None:
        draft_status = "drafting"
    elif draft.review_status == "needs_approval":
        draft_status = "requires approval"
    elif draft.review_status in ("blocked", "rejected"):
        draft_status = draft.review_status
    elif draft.mode == "template_only":
        draft_status = "template only"
    else:
        draft_status = "ready"
    return {
        "id": card.id, "status": card.status, "priority": round(card.priority, 4), "source": card.source,
        "trigger": card.trigger, "rep_id": card.rep_id, "team": card.team, "due_at": card.due_at.isoformat(),
        "customer": {"id": customer.id, "name": " ".join(p for p in (customer.first_name, customer.last_name) if p),
                     "segment": customer.segment, "industry": customer.industry, "stage": customer.lifecycle_stage},
        "confidence": decision.confidence if decision else None,
        "method": decision.method if decision else None,
        "flags": (["rule-based"] if decision and decision.method == "rule-based" else [])
        + (["needs confirmation (sensitive)"] if decision and decision.requires_confirmation else []),
        "reasons": [r["text"] for r in decision.reasons] if decision else [],
        "channel": decision.channel if decision else None, "when": decision.slot_local if decision else None,
        "product": decision.product if decision else None,
        "template_id": card.template_id,
        "draft": None if draft is None else {
            "id": draft.id, "subject": draft.subject, "body": card.adopted_text or draft.body, "mode": draft.mode,
            "model": draft.model, "drafting": draft.drafting, "review_status": draft.review_status,
            "findings": draft.findings, "fallback_reason": draft.fallback_reason,
            "template_version": draft.template_version, "prompt_version": draft.prompt_version},
        "draft_status": draft_status,
        "executed_at": card.executed_at.isoformat() if card.executed_at else None,
        "executed_channel": card.executed_channel, "outcome": card.outcome, "outcome_value": card.outcome_value,
        "reject_reason": card.reject_reason,
        "versions": {"model": decision.model_version if decision else None,
                     "contact_policy": decision.policy_version if decision else None,
                     "prompt": draft.prompt_version if draft else None,
                     "template": f"{draft.template_id}@{draft.template_version}" if draft else None,
                     "review_policy": draft.policy_version if draft else None},
    }


def list_cards(factory: sessionmaker[Session], user: User, *, rep: str | None = None, status: str | None = "open",
               limit: int = 50) -> list[dict[str, Any]]:
    if user.role == "rep":
        if rep is not None and rep != user.rep_id:
            raise Forbidden(f"rep: you can list your own cards ({user.rep_id}) and your team's, not {rep!r}")
    with factory() as session:
        statement = select(Card)
        if user.role == "rep":
            statement = statement.where((Card.rep_id == user.rep_id) | ((Card.team == user.team) & Card.rep_id.is_(None)))
        elif rep is not None:
            statement = statement.where(Card.rep_id == rep)
        if status:
            statement = statement.where(Card.status == status)
        cards = session.scalars(statement.order_by(Card.priority.desc(), Card.id).limit(limit)).all()
        return views(session, list(cards))


def get_card(factory: sessionmaker[Session], user: User, card_id: str) -> dict[str, Any]:
    with factory() as session:
        card = session.get(Card, card_id)
        if card is None or not can_see(user, card):
            raise NotFound(f"card {card_id!r} not found")
        return view(session, card)


def _replay(session: Session, key: str, card_id: str, kind: str) -> bool:
    """True when this exact action was already recorded under `key`."""
    done = session.scalars(select(CardAction).where(CardAction.idempotency_key == key)).first()
    if done is None:
        return False
    if done.card_id != card_id or done.kind != kind:
        raise Conflict(f"Idempotency-Key {key!r} was already used for {done.kind} on card {done.card_id}")
    return True


def act(factory: sessionmaker[Session], user: User, card_id: str, kind: str, *, key: str, now: datetime,
        payload: dict[str, Any], reviewer: Any = None, profile: Any = None, daily_cap: int = 10) -> dict[str, Any]:
    """One action on a card (adopt, reject, send, outcome), exactly once per idempotency key."""
    from app.review import service as review

    if not key or len(key) > 128:
        raise CardError("Idempotency-Key: a header of 1 to 128 characters is required")
    edited_draft = None
    if kind == "adopt" and payload.get("text") is not None:
        with factory() as session:
            seen = session.scalars(select(CardAction).where(CardAction.idempotency_key == key)).first()
        if seen is None:  # a replay must not make a second edited draft
            edited_draft = _edited_draft(factory, user, card_id, str(payload["text"]), reviewer=reviewer,
                                         profile=profile, now=now)
    with transaction(factory) as session:
        card = session.get(Card, card_id)
        if card is None or not can_see(user, card):
            raise NotFound(f"card {card_id!r} not found")
        if user.role not in ("rep", "admin"):
            raise Forbidden(f"only reps act on cards (you are {user.role})")
        if _replay(session, key, card_id, kind):
            return view(session, card) | {"replayed": True}
        details: dict[str, Any] = {}
        if kind == "adopt":
            if card.status not in ("open", "queued", "adopted"):
                raise Conflict(f"card {card_id} is {card.status}: it can no longer be adopted")
            draft = session.get(Draft, card.draft_id) if card.draft_id else None
            if draft is None:
                raise Conflict(f"card {card_id} has no draft yet: try again in a moment")
            edited = payload.get("text")
            if edited_draft is not None:
                details["diff"] = "".join(difflib.unified_diff(draft.body.splitlines(True), edited.splitlines(True),
                                                               "draft", "edited"))
                details["edited_draft"] = edited_draft
                card.adopted_text, card.draft_id = edited, edited_draft
            card.status = "adopted"
        elif kind == "reject":
            reason = payload.get("reason")
            if reason not in REJECT_REASONS:
                raise CardError(f"reason: {reason!r} is not one of {', '.join(REJECT_REASONS)}")
            if card.status not in LIVE:
                raise Conflict(f"card {card_id} is {card.status}: it can no longer be rejected")
            card.status, card.reject_reason = "rejected", reason
            customer = session.get(Customer, card.customer_id)
            session.add(Feedback(kind="rep_rejection", customer_id=card.customer_id, decision_id=card.decision_id,
                                 draft_id=card.draft_id, template_id=card.template_id, segment=customer.segment,
                                 reason_code=reason, comment=payload.get("note"), created_by=user.name, created_at=now))
            details = {"reason": reason, "note": payload.get("note")}
            promote_queued(session, card.rep_id, now.date().isoformat(), daily_cap)
        elif kind == "send":
            if card.status not in ("open", "adopted"):
                raise Conflict(f"card {card_id} is {card.status}: only an open or adopted card can be sent")
            draft = session.get(Draft, card.draft_id) if card.draft_id else None
            if draft is None:
                raise Conflict(f"card {card_id} has no draft yet")
            if draft.review_status not in review.RELEASABLE:
                raise Conflict(f"card {card_id} cannot be sent: the draft is {draft.review_status or 'not reviewed'}"
                               + (" and waits for compliance approval" if draft.review_status == "needs_approval" else ""))
            decision = session.get(Decision, card.decision_id) if card.decision_id else None
            channel = payload.get("channel") or (decision.channel if decision else None)
            if channel not in set(Channel):
                raise CardError(f"channel: {channel!r} is not one of {', '.join(Channel)}")
            sent_at = payload.get("at") or now
            if sent_at > now:
                raise CardError("at: the time it was sent cannot be in the future")
            card.status, card.executed_at, card.executed_channel = "executed", sent_at, channel
            draft.sent_at = draft.sent_at or now
            details = {"channel": channel, "at": card.executed_at.isoformat(), "draft_id": draft.id}
            promote_queued(session, card.rep_id, now.date().isoformat(), daily_cap)
        elif kind == "outcome":
            outcome = payload.get("outcome")
            if outcome not in set(Outcome):
                raise CardError(f"outcome: {outcome!r} is not one of {', '.join(Outcome)}")
            if card.status != "executed":
                raise Conflict(f"card {card_id} is {card.status}: record the outcome after it was sent")
            value = payload.get("value")
            if value is not None and (not isinstance(value, (int, float)) or value < 0):
                raise CardError("value: must be a number >= 0")
            card.outcome, card.outcome_value = outcome, value
            decision = session.get(Decision, card.decision_id) if card.decision_id else None
            attempt = session.get(OutreachAttempt, f"card-{card.id}")
            if attempt is None:
                attempt = OutreachAttempt(id=f"card-{card.id}", customer_id=card.customer_id, attributes={})
                session.add(attempt)
            attempt.attempted_at, attempt.channel, attempt.outcome = card.executed_at, card.executed_channel, outcome
            attempt.template_id, attempt.rep_id, attempt.value = card.template_id, card.rep_id, value
            attempt.product = decision.product if decision else None
            attempt.attributes = {"card": card.id, "arm": decision.arm if decision else None}
            details = {"outcome": outcome, "value": value}
        else:
            raise CardError(f"action: {kind!r} is not one of adopt, reject, send, outcome")
        card.updated_at = now
        session.add(CardAction(card_id=card.id, kind=kind, idempotency_key=key, actor=user.name,
                               payload={k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in payload.items()},
                               created_at=now))
        audit.record(session, actor=user.name, action=f"card_{kind}", subject_type="card", subject_id=card.id, now=now,
                     details=details)
        if kind == "send" and card.draft_id:
            audit.record(session, actor=user.name, action="send", subject_type="draft", subject_id=card.draft_id,
                         now=now, details={"card": card.id, "channel": card.executed_channel})
        session.flush()
        return view(session, card) | {"replayed": False}


def _edited_draft(factory: sessionmaker[Session], user: User, card_id: str, text: str, *, reviewer: Any,
                  profile: Any, now: datetime) -> str | None:
    """A rep's edit becomes a new draft, reviewed like any other: blocked is refused, needing approval goes
    to the compliance queue (and the card cannot be sent until it is approved). None if nothing changed."""
    from app.review.checks import Verdict
    from app.review.service import check_edit, review_draft

    if not text.strip():
        raise CardError("text: the edited script must not be empty")
    if len(text) > 10_000:
        raise CardError("text: the edited script is longer than 10,000 characters")
    with factory() as session:
        card = session.get(Card, card_id)
        if card is None or not can_see(user, card):
            raise NotFound(f"card {card_id!r} not found")
        draft = session.get(Draft, card.draft_id) if card.draft_id else None
        if draft is None:
            raise Conflict(f"card {card_id} has no draft yet: try again in a moment")
        if text == draft.body:
            return None
    check = check_edit(factory, reviewer, profile, draft.id, text)
    if check.verdict == Verdict.BLOCKED:
        raise CardError("text: the edited script is blocked by the guardrails: " + "; ".join(check.routing))
    new_id = uuid.uuid4().hex
    with transaction(factory) as session:
        original = session.get(Draft, draft.id)
        session.add(Draft(id=new_id, customer_id=original.customer_id, decision_id=original.decision_id,
                          channel=original.channel, template_id=original.template_id,
                          template_version=original.template_version, prompt_version=original.prompt_version,
                          profile_version=original.profile_version, mode="edited", drafting=f"edited by {user.name}",
                          model=original.model, subject=original.subject, body=text, facts_used=original.facts_used,
                          latency_ms=0.0, prompt_tokens=0, completion_tokens=0, cache_key=f"edit-{new_id}",
                          created_at=now, findings=[]))
    review_draft(factory, reviewer, profile, new_id, now=now, actor=user.name)
    return new_id


def sweep_sla(factory: sessionmaker[Session], *, now: datetime, sla_hours: float) -> dict[str, int]:
    """Remind cards past their SLA; reassign to the team queue those still not executed one SLA later."""
    counts = {"reminded": 0, "reassigned": 0}
    with transaction(factory) as session:
        overdue = session.scalars(select(Card).where(Card.status.in_(("open", "adopted")), Card.due_at < now)).all()
        for card in overdue:
            if card.reminded_at is None:
                card.reminded_at = now
                counts["reminded"] += 1
                audit.record(session, actor="system", action="card_remind", subject_type="card", subject_id=card.id,
                             now=now, details={"rep_id": card.rep_id, "due_at": card.due_at.isoformat()})
            elif card.rep_id is not None and card.due_at + timedelta(hours=sla_hours) < now:
                counts["reassigned"] += 1
                audit.record(session, actor="system", action="card_reassign", subject_type="card", subject_id=card.id,
                             now=now, details={"from_rep": card.rep_id, "to_team": card.team})
                card.rep_id, card.reassigned_at = None, now
    return counts


def accept_event(factory: sessionmaker[Session], event: Event, *, now: datetime) -> None:
    """Store a posted event and queue it for the trigger worker, in one transaction."""
    with transaction(factory) as session:
        if session.get(Customer, event.customer_id) is None:
            raise CardError(f"customer_id: customer {event.customer_id!r} not found")
        if session.get(Event, event.id) is not None:
            return  # the same event posted twice is stored once
        session.add(event)
        session.add(EventJob(event_id=event.id, status="pending", created_at=now))


def process_events(factory: sessionmaker[Session], *, now: datetime, decide: Any, sla_hours: float,
                   limit: int = 100) -> list[str]:
    """Check pending events against the triggers; a match gets a fresh decision and a new or refreshed card."""
    done = []
    with factory() as session:
        jobs = session.scalars(select(EventJob).where(EventJob.status == "pending").order_by(EventJob.created_at)
                               .limit(limit)).all()
    for job in jobs:
        with factory() as session:
            event = session.get(Event, job.event_id)
            customer = session.get(Customer, event.customer_id) if event is not None else None
        if event is None or customer is None:
            with transaction(factory) as session:
                row = session.get(EventJob, job.event_id)
                row.status, row.processed_at, row.result = "failed", now, "failed: the event or its customer is gone"
            done.append(f"{job.event_id}: failed: the event or its customer is gone")
            continue
        stage = customer.lifecycle_stage
        fired = (event.intent, stage) in TRIGGERS or (event.intent, None) in TRIGGERS
        result = "no trigger"
        if fired:
            try:
                decision = decide(event.customer_id)
                result = _card_from_trigger(factory, decision, event, now=now, sla_hours=sla_hours)
            except Exception as exc:  # noqa: BLE001 - one bad event must not stop the worker
                result = f"failed: {type(exc).__name__}: {exc}"
        with transaction(factory) as session:
            row = session.get(EventJob, job.event_id)
            row.status, row.processed_at, row.result = ("failed" if result.startswith("failed") else "done"), now, result
        done.append(f"{job.event_id}: {result}")
    return done


def _card_from_trigger(factory: sessionmaker[Session], decision: Decision, event: Event, *, now: datetime,
                       sla_hours: float) -> str:
    if decision.status != "recommended":
        return f"trigger {event.intent}: not recommended ({', '.join(map(str, decision.suppressed_by)) or decision.status})"
    trigger = f"{event.intent} at {event.occurred_at.isoformat()}"
    with transaction(factory) as session:
        customer = session.get(Customer, decision.customer_id)
        card = session.scalars(select(Card).where(Card.customer_id == decision.customer_id, Card.status.in_(LIVE))).first()
        if card is None:
            card = Card(id=_new_id(), customer_id=decision.customer_id, rep_id=customer.owner_rep, team=customer.team,
                        status="open", source="trigger", day=now.date().isoformat(), created_at=now)
            session.add(card)
            action = "created"
        else:
            action = "refreshed"
            card.status = "open" if card.status == "queued" else card.status
        card.decision_id, card.priority, card.trigger = decision.id, float(decision.score or 0) + 1.0, trigger
        card.draft_id, card.template_id = None, None  # drafted again for the new reasons
        card.updated_at, card.due_at = now, now + timedelta(hours=sla_hours)
        session.flush()
        audit.record(session, actor="system", action=f"card_{action}", subject_type="card", subject_id=card.id, now=now,
                     details={"trigger": trigger, "decision": decision.id})
        return f"card {card.id} {action} by {event.intent}"


def draft_pending(factory: sessionmaker[Session], *, drafter: Any, reviewer: Any, index: Any, now: datetime,
                  limit: int = 20, rep_id: str | None = None) -> int:
    """Draft and review open cards that have no draft yet, best first. Returns how many were drafted."""
    from app.drafting.service import DraftRequest
    from app.library.retrieval import best_for_decision
    from app.review.service import review_draft

    with factory() as session:
        statement = select(Card.id).where(Card.status == "open", Card.draft_id.is_(None))
        if rep_id is not None:
            statement = statement.where(Card.rep_id == rep_id)
        ids = list(session.scalars(statement.order_by(Card.priority.desc()).limit(limit)))
    drafted = 0
    for card_id in ids:
        with factory() as session:
            card = session.get(Card, card_id)
            decision = session.get(Decision, card.decision_id)
            customer = session.get(Customer, card.customer_id)
            stage, segment = customer.lifecycle_stage, customer.segment
        chosen = best_for_decision(factory, index, decision, stage, segment)
        if chosen is None:
            continue
        result = drafter.draft(factory, DraftRequest(customer_id=card.customer_id, channel=decision.channel,
                                                     template_id=chosen.id, product=decision.product,
                                                     reasons=[r["text"] for r in decision.reasons],
                                                     decision_id=decision.id), now=now)
        review_draft(factory, reviewer, drafter.profile, result.id, now=now)
        with transaction(factory) as session:
            card = session.get(Card, card_id)
            if card.draft_id is None:
                card.draft_id, card.template_id, card.updated_at = result.id, chosen.id, now
        drafted += 1
    return drafted


def latest_run(factory: sessionmaker[Session]) -> ScoreRun | None:
    with factory() as session:
        return session.scalars(select(ScoreRun).where(ScoreRun.finished_at.is_not(None), ScoreRun.id.like("run-%"))
                               .order_by(ScoreRun.started_at.desc())).first()
