"""Cards: built from decisions, drafted in the background, acted on by reps, swept for SLA.

At most one live card per customer; each rep gets at most `daily_cap` open cards a day, by priority (the
decision's score), the rest wait as `queued` and move up as cards close. A card follows one draft lineage
and always shows its newest version: a rep's edit and a compliance edit are versions of it. Every action
is one unit of work with its audit entry, owned by the edge that calls it; a refused action writes nothing.
Each action carries an idempotency key: a retried request returns the first result and records nothing twice.
"""

from __future__ import annotations

import difflib
import math
import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.cards.tables import Card, CardAction
from app.data.tables import Customer
from app.domain import Channel, Outcome
from app.drafting import service as drafting
from app.drafting.facts import CompanyProfile
from app.drafting.service import Drafter, DraftInputs, DraftMode, DraftRequest, DraftResult
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.feedback import service as feedback
from app.library.index import TemplateIndex
from app.library.retrieval import best_for_decision
from app.models.tables import Decision
from app.review import service as review
from app.review.checks import Reviewer, Verdict
from app.review.service import Assessment, ReviewStatus
from app.users.service import Role
from app.users.tables import User


class CardStatus(StrEnum):
    QUEUED = "queued"  # over the rep's daily cap: waits for a place in the inbox
    OPEN = "open"  # in today's inbox
    ADOPTED = "adopted"
    REJECTED = "rejected"
    EXECUTED = "executed"  # released and sent


# How a card may move: the single source of truth for every action. Anything else is a 409.
TRANSITIONS: dict[CardStatus, frozenset[CardStatus]] = {
    CardStatus.QUEUED: frozenset({CardStatus.OPEN, CardStatus.ADOPTED, CardStatus.REJECTED}),
    CardStatus.OPEN: frozenset({CardStatus.ADOPTED, CardStatus.REJECTED, CardStatus.EXECUTED}),
    CardStatus.ADOPTED: frozenset({CardStatus.ADOPTED, CardStatus.REJECTED, CardStatus.EXECUTED}),
    CardStatus.REJECTED: frozenset(),
    CardStatus.EXECUTED: frozenset(),
}
LIVE = (CardStatus.QUEUED, CardStatus.OPEN, CardStatus.ADOPTED)
VERB = {CardStatus.ADOPTED: "adopted", CardStatus.REJECTED: "rejected", CardStatus.EXECUTED: "sent",
        CardStatus.OPEN: "opened"}


class ActionKind(StrEnum):
    ADOPT = "adopt"
    ADOPT_EDITED = "adopt_edited"
    REJECT = "reject"
    SEND = "send"
    OUTCOME = "outcome"


REJECT_REASONS = {"not_relevant": "not relevant for this customer", "bad_timing": "wrong time",
                  "wrong_channel": "wrong channel", "already_in_touch": "already in touch",
                  "poor_script": "the script is not usable", "do_not_contact": "customer asked not to be contacted",
                  "other": "other"}
# --- who may do what -------------------------------------------------------------------------------------

def can_see(user: User, card: Card) -> bool:
    """Reps see their own cards, their teammates' and their team queue; admin and compliance see all."""
    if user.role in (Role.ADMIN, Role.COMPLIANCE):
        return True
    return user.role == Role.REP and (card.rep_id == user.rep_id or (card.team is not None and card.team == user.team))


def can_act(user: User, card: Card) -> bool:
    """Reps act on their own cards and on their team's queue (cards no rep holds); admin on any."""
    if user.role == Role.ADMIN:
        return True
    return user.role == Role.REP and (card.rep_id == user.rep_id
                                      or (card.rep_id is None and card.team is not None and card.team == user.team))


def _readable(user: User) -> None:
    if user.role not in (Role.REP, Role.ADMIN, Role.COMPLIANCE):
        raise Forbidden(f"cards are for reps (you are {user.role})", field="role")


def _actionable(session: Session, user: User, card_id: str) -> Card:
    card = session.get(Card, card_id)
    if card is None or not can_see(user, card):
        raise NotFound(f"card {card_id!r} not found", field="card")
    if not can_act(user, card):
        who = f"rep {card.rep_id}" if card.rep_id else f"team {card.team}'s queue"
        raise Forbidden(f"card {card_id} belongs to {who}: you can act on your own cards and your team queue",
                        field="card")
    return card


def move_card(card: Card, to: CardStatus) -> None:
    if to not in TRANSITIONS[CardStatus(card.status)]:
        raise Conflict(f"card {card.id} is {card.status}: it can no longer be {VERB.get(to, to)}", field="status")
    card.status = to


# --- what a card looks like ------------------------------------------------------------------------------

class CustomerBrief(BaseModel):
    id: str
    name: str
    segment: str | None
    industry: str | None
    stage: str


class DraftView(BaseModel):
    """The text the card shows and copies: the newest version of its draft, exactly as stored."""

    id: str
    lineage_id: str
    revision: int
    subject: str | None
    body: str
    mode: str
    author: str
    label: str
    model: str | None
    drafting: str | None
    review_status: str | None
    findings: list[dict[str, Any]]
    routing: list[str]
    fallback_reason: str | None
    template_version: int
    prompt_version: str | None
    # Set when compliance changed the text after the rep adopted it: what changed, as a unified diff.
    changed_by_compliance: bool = False
    changes: str | None = None


class ReleaseView(BaseModel):
    id: str
    draft_id: str
    body_sha256: str
    released_at: datetime
    channel: str


class ObjectiveView(BaseModel):
    """The objective the decision chose by predicted uplift, its predicted change per KPI, its value net of the
    contact cost, and why each alternative lost."""
    id: str
    label: str
    kpis: dict[str, float]
    value: float
    contact_cost: float
    alternatives: list[dict[str, Any]]


class CardView(BaseModel):
    id: str
    status: CardStatus
    priority: float
    source: str
    trigger: str | None
    route: str | None = None  # the routing rule that made or refreshed it (a routed event)
    sla_minutes: int | None = None  # minutes its owner has for a first touch (a routed event); else due_at
    rep_id: str | None
    team: str | None
    due_at: datetime
    customer: CustomerBrief
    confidence: float | None
    method: str | None
    flags: list[str]
    reasons: list[str]
    channel: str | None
    when: str | None
    product: str | None
    objective: ObjectiveView | None = None
    template_id: str | None
    draft: DraftView | None
    draft_status: str
    executed_at: datetime | None
    executed_channel: str | None
    outcome: str | None
    outcome_value: float | None
    reject_reason: str | None
    release: ReleaseView | None
    versions: dict[str, str | None]
    replayed: bool = False


def _draft_status(head: DraftResult | None, status: str | None) -> str:
    if head is None:
        return "drafting"
    if status == ReviewStatus.NEEDS_APPROVAL:
        return "requires approval"
    if status in (ReviewStatus.BLOCKED, ReviewStatus.REJECTED, ReviewStatus.APPROVED):
        return str(status)
    if status is None:
        return "not reviewed"
    return "template only" if head.mode == DraftMode.TEMPLATE_ONLY else "ready"


def views(session: Session, cards: list[Card]) -> list[CardView]:
    """Many cards at once: a few queries for their customers, decisions, drafts and reviews, not a few per card."""
    def by_id(model: Any, ids: set[Any]) -> dict[Any, Any]:
        ids.discard(None)
        return {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))} if ids else {}

    customers = by_id(Customer, {c.customer_id for c in cards})
    decisions = by_id(Decision, {c.decision_id for c in cards})
    heads = drafting.heads(session=session, lineage_ids={c.draft_id for c in cards if c.draft_id})
    adopted = {c.adopted_draft_id for c in cards if c.adopted_draft_id}
    earlier = {d: drafting.get(session=session, draft_id=d) for d in adopted - {h.id for h in heads.values()}}
    reviews = review.reviews_of(session=session, draft_ids={h.id for h in heads.values()})
    releases = review.releases_of(session=session, draft_ids={c.draft_id for c in cards if c.release_id})
    out = []
    for card in cards:
        customer, decision = customers[card.customer_id], decisions.get(card.decision_id)
        head = heads.get(card.draft_id) if card.draft_id else None
        checked = reviews.get(head.id) if head else None
        draft = None
        if head is not None:
            draft = DraftView(id=head.id, lineage_id=head.lineage_id, revision=head.revision, subject=head.subject,
                              body=head.body, mode=head.mode, author=head.author, label=head.label, model=head.model,
                              drafting=head.drafting, review_status=checked.status if checked else None,
                              findings=checked.findings if checked else [], routing=checked.routing if checked else [],
                              fallback_reason=head.fallback_reason, template_version=head.template_version,
                              prompt_version=head.prompt_version)
            before = earlier.get(card.adopted_draft_id)
            if before is not None and head.mode == DraftMode.COMPLIANCE_EDIT:
                draft.changed_by_compliance = True
                draft.changes = "".join(difflib.unified_diff(before.body.splitlines(True), head.body.splitlines(True),
                                                             "your text", f"approved by {head.author}"))
        released = releases.get(card.draft_id) if card.release_id else None
        out.append(CardView(
            id=card.id, status=card.status, priority=round(card.priority, 4), source=card.source, trigger=card.trigger,
            route=card.route, sla_minutes=card.sla_minutes,
            rep_id=card.rep_id, team=card.team, due_at=card.due_at,
            customer=CustomerBrief(id=customer.id, name=" ".join(p for p in (customer.first_name, customer.last_name) if p),
                                   segment=customer.segment, industry=customer.industry, stage=customer.lifecycle_stage),
            confidence=decision.confidence if decision else None, method=decision.method if decision else None,
            flags=(["rule-based"] if decision and decision.method == "rule-based" else [])
            + (["needs confirmation (sensitive)"] if decision and decision.requires_confirmation else []),
            reasons=[r["text"] for r in decision.reasons] if decision else [],
            channel=decision.channel if decision else None, when=decision.slot_local if decision else None,
            product=decision.product if decision else None, template_id=card.template_id, draft=draft,
            objective=ObjectiveView.model_validate({**decision.impact, "id": decision.impact["objective"]})
            if decision is not None and decision.impact else None,
            draft_status=_draft_status(head, checked.status if checked else None),
            executed_at=card.executed_at, executed_channel=card.executed_channel, outcome=card.outcome,
            outcome_value=card.outcome_value, reject_reason=card.reject_reason,
            release=ReleaseView(id=released.id, draft_id=released.draft_id, body_sha256=released.body_sha256,
                                released_at=released.released_at, channel=released.channel) if released else None,
            versions={"model": decision.model_version if decision else None,
                      "contact_policy": decision.policy_version if decision else None,
                      "objectives": decision.objectives_version if decision else None,
                      "prompt": head.prompt_version if head else None,
                      "template": f"{head.template_id}@{head.template_version}" if head else None,
                      "review_policy": checked.policy_version if checked else None}))
    return out


def view(session: Session, card: Card) -> CardView:
    return views(session, [card])[0]


def list_cards(*, session: Session, user: User, rep: str | None = None, status: str | None = CardStatus.OPEN,
               limit: int = 50) -> list[CardView]:
    """Cards by priority. Reps see their own and their team queue's; admin and compliance anyone's."""
    _readable(user)
    if status is not None and status not in set(CardStatus):
        raise InvalidInput(f"{status!r} is not one of {', '.join(CardStatus)}", field="status")
    statement = select(Card)
    if user.role == Role.REP:
        if rep is not None and rep != user.rep_id:
            raise Forbidden(f"you can list your own cards ({user.rep_id}) and your team's, not {rep!r}", field="rep")
        statement = statement.where((Card.rep_id == user.rep_id) | ((Card.team == user.team) & Card.rep_id.is_(None)))
    elif rep is not None:
        statement = statement.where(Card.rep_id == rep)
    if status:
        statement = statement.where(Card.status == status)
    cards = session.scalars(statement.order_by(Card.priority.desc(), Card.id).limit(limit)).all()
    return views(session, list(cards))


def get_card(*, session: Session, user: User, card_id: str) -> CardView:
    _readable(user)
    card = session.get(Card, card_id)
    if card is None or not can_see(user, card):
        raise NotFound(f"card {card_id!r} not found", field="card")
    return view(session, card)


def any_cards(*, session: Session) -> bool:
    return session.scalar(select(func.count()).select_from(Card)) > 0


def built_from(*, session: Session, run_id: str) -> bool:
    """Whether a scoring run's cards were built already (building twice would re-offer the day's customers)."""
    return session.scalar(select(Card.id).join(Decision, Decision.id == Card.decision_id)
                          .where(Decision.run_id == run_id).limit(1)) is not None


# --- building the day's cards ----------------------------------------------------------------------------

class BuildReport(BaseModel):
    open: int = 0
    queued: int = 0
    skipped_live: int = 0
    by_rep: dict[str, int] = {}


def new_card_id() -> str:
    return uuid.uuid4().hex[:12]


def build_cards(*, session: Session, run_id: str, now: datetime, daily_cap: int, sla_hours: float) -> BuildReport:
    """The day's cards from a scoring run; customers who already have a live card keep it."""
    report = BuildReport()
    day = now.date().isoformat()
    rows = session.execute(select(Decision.id, Decision.customer_id, Decision.score, Customer.owner_rep, Customer.team)
                           .join(Customer, Customer.id == Decision.customer_id)
                           .where(Decision.run_id == run_id, Decision.status == "recommended")
                           .order_by(Decision.score.desc())).all()
    live = set(session.scalars(select(Card.customer_id).where(Card.status.in_(LIVE))))
    open_today = dict(session.execute(select(Card.rep_id, func.count()).where(Card.day == day,
                                                                              Card.status == CardStatus.OPEN)
                                      .group_by(Card.rep_id)).all())
    cards = []
    for decision_id, customer_id, score, rep, team in rows:
        if customer_id in live:
            report.skipped_live += 1
            continue
        live.add(customer_id)
        taken = open_today.get(rep, 0)
        status = CardStatus.OPEN if taken < daily_cap else CardStatus.QUEUED
        open_today[rep] = taken + (status == CardStatus.OPEN)
        report.open += status == CardStatus.OPEN
        report.queued += status == CardStatus.QUEUED
        report.by_rep[rep or "-"] = report.by_rep.get(rep or "-", 0) + 1
        cards.append({"id": new_card_id(), "customer_id": customer_id, "decision_id": decision_id, "rep_id": rep,
                      "team": team, "status": status, "priority": float(score or 0), "source": "batch", "day": day,
                      "created_at": now, "updated_at": now, "due_at": now + timedelta(hours=sla_hours)})
    if cards:
        session.execute(Card.__table__.insert(), cards)
    audit.record(session=session, actor="system", action="cards_built", subject_type="score_run", subject_id=run_id,
                 now=now, details={"open": report.open, "queued": report.queued, "kept": report.skipped_live})
    return report


def promote_queued(session: Session, rep_id: str | None, day: str, daily_cap: int) -> None:
    """Fill a rep's inbox back up to the cap from their queued cards, best first."""
    if rep_id is None:
        return
    open_now = session.scalar(select(func.count()).select_from(Card).where(
        Card.rep_id == rep_id, Card.status == CardStatus.OPEN, Card.day == day)) or 0
    for card in session.scalars(select(Card).where(Card.rep_id == rep_id, Card.status == CardStatus.QUEUED)
                                .order_by(Card.priority.desc()).limit(max(0, daily_cap - open_now))):
        move_card(card, CardStatus.OPEN)
        card.day = day


# --- actions ---------------------------------------------------------------------------------------------

def _check_key(key: str) -> None:
    if not key or len(key) > 128:
        raise InvalidInput("a header of 1 to 128 characters is required", field="Idempotency-Key")


def _replayed(session: Session, key: str, card: Card, kind: ActionKind) -> bool:
    """True when this exact action was already recorded under `key` (a retry): nothing is done again."""
    _check_key(key)
    done = session.scalars(select(CardAction).where(CardAction.idempotency_key == key)).first()
    if done is None:
        return False
    if done.card_id != card.id or done.kind != kind:
        raise Conflict(f"Idempotency-Key {key!r} was already used for {done.kind} on card {done.card_id}",
                       field="Idempotency-Key")
    return True


def _done(session: Session, card: Card, kind: ActionKind, *, key: str, user: User, now: datetime,
          payload: dict[str, Any], details: dict[str, Any]) -> CardView:
    """Record the action under its key, with its audit entry. The key is unique: a concurrent twin of this
    request fails to commit and is answered as a replay by the edge."""
    card.updated_at = now
    session.add(CardAction(card_id=card.id, kind=kind, idempotency_key=key, actor=user.name, created_at=now,
                           payload={k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in payload.items()}))
    audit.record(session=session, actor=user.name, action=f"card_{kind}", subject_type="card", subject_id=card.id,
                 now=now, details=details)
    session.flush()
    return view(session, card)


def _replay(session: Session, card: Card) -> CardView:
    return view(session, card).model_copy(update={"replayed": True})


def _head(session: Session, card: Card) -> DraftResult:
    current = drafting.head(session=session, lineage_id=card.draft_id) if card.draft_id else None
    if current is None:
        raise Conflict(f"card {card.id} has no draft yet: try again in a moment", field="draft")
    return current


def adopt(*, session: Session, user: User, card_id: str, key: str, now: datetime) -> CardView:
    """Adopt the draft as it stands (one tap; the page copies exactly this text)."""
    card = _actionable(session, user, card_id)
    if _replayed(session, key, card, ActionKind.ADOPT):
        return _replay(session, card)
    move_card(card, CardStatus.ADOPTED)
    current = _head(session, card)
    card.adopted_draft_id = current.id
    return _done(session, card, ActionKind.ADOPT, key=key, user=user, now=now, payload={},
                 details={"draft_id": current.id, "revision": current.revision,
                          "body_sha256": review.sha256(current.body)})


class PreparedEdit(BaseModel):
    """A rep's edit, checked by the guardrails before anything is written."""

    card_id: str
    base_draft_id: str
    text: str
    assessment: Assessment | None  # None: the text is the draft as it stands


def prepare_edit(*, session: Session, user: User, card_id: str, text: str, reviewer: Reviewer,
                 profile: CompanyProfile, now: datetime) -> PreparedEdit:
    """Check an edited script the way any draft is checked (reads only). A blocked edit is refused here."""
    text = drafting.check_text(text, field="text")
    card = _actionable(session, user, card_id)
    if CardStatus.ADOPTED not in TRANSITIONS[CardStatus(card.status)]:
        raise Conflict(f"card {card_id} is {card.status}: it can no longer be adopted", field="status")
    current = _head(session, card)
    if text == current.body:
        return PreparedEdit(card_id=card_id, base_draft_id=current.id, text=text, assessment=None)
    assessment = review.assess(session=session, reviewer=reviewer, profile=profile,
                               draft=current.model_copy(update={"body": text}), now=now)
    if assessment.verdict == Verdict.BLOCKED:
        raise InvalidInput("the edited script is blocked by the guardrails: " + "; ".join(assessment.verdicts.routing),
                           field="text")
    return PreparedEdit(card_id=card_id, base_draft_id=current.id, text=text, assessment=assessment)


def adopt_edited(*, session: Session, user: User, edit: PreparedEdit, key: str, now: datetime) -> CardView:
    """Adopt an edited script: a new version of the card's draft, reviewed like any other (needing approval
    puts it in the compliance queue, and it cannot be sent until approved). The diff is audited."""
    card = _actionable(session, user, edit.card_id)
    if _replayed(session, key, card, ActionKind.ADOPT_EDITED):
        return _replay(session, card)
    move_card(card, CardStatus.ADOPTED)
    current = _head(session, card)
    if current.id != edit.base_draft_id:
        raise Conflict(f"the draft of card {card.id} changed while you edited it: reload the card", field="text")
    details: dict[str, Any] = {"draft_id": current.id}
    if edit.assessment is not None:
        edited = drafting.revise(session=session, base=current, body=edit.text, author=user.name,
                                 mode=DraftMode.REP_EDIT, now=now)
        checked = review.record(session=session, draft=edited, assessment=edit.assessment, actor=user.name, now=now)
        details = {"draft_id": edited.id, "replaces": current.id, "revision": edited.revision,
                   "review": checked.status, "body_sha256": review.sha256(edited.body),
                   "diff": "".join(difflib.unified_diff(current.body.splitlines(True), edit.text.splitlines(True),
                                                        "draft", "edited"))}
        current = edited
    card.adopted_draft_id = current.id
    return _done(session, card, ActionKind.ADOPT_EDITED, key=key, user=user, now=now, payload={"text": edit.text},
                 details=details)


def reject(*, session: Session, user: User, card_id: str, key: str, reason: str, note: str | None, now: datetime,
           daily_cap: int) -> CardView:
    """Reject with a reason from the list (and a note): it feeds the contact policy's cooldown."""
    if reason not in REJECT_REASONS:
        raise InvalidInput(f"{reason!r} is not one of {', '.join(REJECT_REASONS)}", field="reason")
    card = _actionable(session, user, card_id)
    if _replayed(session, key, card, ActionKind.REJECT):
        return _replay(session, card)
    move_card(card, CardStatus.REJECTED)
    card.reject_reason = reason
    customer = session.get(Customer, card.customer_id)
    feedback.record_rep_rejection(session=session, card_id=card.id, customer_id=card.customer_id,
                                  decision_id=card.decision_id, draft_id=card.draft_id, template_id=card.template_id,
                                  segment=customer.segment, reason=reason, note=note, by=user.name, now=now)
    if card.draft_id:  # nothing of this card is going out: its queue items are no longer needed
        review.withdraw(session=session, lineage_id=card.draft_id, by=user.name, now=now, reason="card rejected")
    promote_queued(session, card.rep_id, now.date().isoformat(), daily_cap)
    return _done(session, card, ActionKind.REJECT, key=key, user=user, now=now,
                 payload={"reason": reason, "note": note}, details={"reason": reason, "note": note})


def mark_sent(*, session: Session, user: User, card_id: str, key: str, channel: str | None, at: datetime | None,
              now: datetime, daily_cap: int) -> CardView:
    """Mark the card sent: the release gate lets the draft's newest version go out (or refuses with 409) and
    records the hash of exactly that text."""
    card = _actionable(session, user, card_id)
    if _replayed(session, key, card, ActionKind.SEND):
        return _replay(session, card)
    decision = session.get(Decision, card.decision_id) if card.decision_id else None
    channel = channel or (decision.channel if decision else None)
    if channel not in set(Channel):
        raise InvalidInput(f"{channel!r} is not one of {', '.join(Channel)}", field="channel")
    sent_at = at or now
    if sent_at > now:
        raise InvalidInput("the time it was sent cannot be in the future", field="at")
    if sent_at < card.created_at - timedelta(days=1):
        raise InvalidInput("the time it was sent is before the card existed", field="at")
    move_card(card, CardStatus.EXECUTED)
    current = _head(session, card)
    released = review.release(session=session, draft_id=current.id, by=user.name, channel=channel, now=now,
                              subject_ref=card.id)
    card.executed_at, card.executed_channel, card.release_id = sent_at, channel, released.id
    card.adopted_draft_id = card.adopted_draft_id or current.id
    promote_queued(session, card.rep_id, now.date().isoformat(), daily_cap)
    return _done(session, card, ActionKind.SEND, key=key, user=user, now=now, payload={"channel": channel, "at": sent_at},
                 details={"channel": channel, "at": sent_at.isoformat(), "draft_id": current.id,
                          "release_id": released.id, "body_sha256": released.body_sha256})


def record_outcome(*, session: Session, user: User, card_id: str, key: str, outcome: str, value: float | None,
                   now: datetime, correction: bool = False) -> CardView:
    """What came of a sent card; it becomes an outreach attempt for the next training run. A second,
    different outcome is refused unless sent as an explicit correction, which is audited with the old one."""
    if outcome not in set(Outcome):
        raise InvalidInput(f"{outcome!r} is not one of {', '.join(Outcome)}", field="outcome")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                              or value < 0):
        raise InvalidInput("must be a finite number >= 0", field="value")
    card = _actionable(session, user, card_id)
    if _replayed(session, key, card, ActionKind.OUTCOME):
        return _replay(session, card)
    if card.status != CardStatus.EXECUTED:
        raise Conflict(f"card {card_id} is {card.status}: record the outcome after it was sent", field="status")
    before = (card.outcome, card.outcome_value)
    if card.outcome is not None and before == (outcome, value):
        return view(session, card)  # the same outcome again: nothing new to record
    if card.outcome is not None and not correction:
        raise Conflict(f"card {card_id} already has the outcome {card.outcome}: send correction=true to correct it "
                       "(the correction is audited)", field="outcome")
    decision = session.get(Decision, card.decision_id) if card.decision_id else None
    feedback.record_outcome(session=session, label=feedback.OutcomeLabel(
        card_id=card.id, customer_id=card.customer_id, decision_id=card.decision_id, draft_id=card.draft_id,
        template_id=card.template_id, channel=card.executed_channel, attempted_at=card.executed_at, outcome=outcome,
        value=value, arm=decision.arm if decision else None, model_version=decision.model_version if decision else None,
        product=decision.product if decision else None, rep_id=card.rep_id), by=user.name, now=now)
    card.outcome, card.outcome_value = outcome, value
    details: dict[str, Any] = {"outcome": outcome, "value": value}
    if before[0] is not None:
        details |= {"correction": True, "previous_outcome": before[0], "previous_value": before[1]}
    return _done(session, card, ActionKind.OUTCOME, key=key, user=user, now=now,
                 payload={"outcome": outcome, "value": value, "correction": correction}, details=details)


# --- SLA -------------------------------------------------------------------------------------------------

class SlaReport(BaseModel):
    reminded: int = 0
    reassigned: int = 0


def sweep_sla(*, session: Session, now: datetime, sla_hours: float) -> SlaReport:
    """Remind cards past their SLA; reassign to the team queue those still not sent one SLA later."""
    counts = SlaReport()
    overdue = session.scalars(select(Card).where(Card.status.in_((CardStatus.OPEN, CardStatus.ADOPTED)),
                                                 Card.due_at < now)).all()
    for card in overdue:
        if card.reminded_at is None:
            card.reminded_at = now
            counts.reminded += 1
            audit.record(session=session, actor="system", action="card_remind", subject_type="card", subject_id=card.id,
                         now=now, details={"rep_id": card.rep_id, "due_at": card.due_at.isoformat()})
        elif card.rep_id is not None and card.due_at + timedelta(hours=sla_hours) < now:
            counts.reassigned += 1
            audit.record(session=session, actor="system", action="card_reassign", subject_type="card",
                         subject_id=card.id, now=now, details={"from_rep": card.rep_id, "to_team": card.team})
            card.rep_id, card.reassigned_at = None, now
    return counts


# --- drafting cards in the background --------------------------------------------------------------------

def cards_to_draft(*, session: Session, limit: int = 20, rep_id: str | None = None) -> list[str]:
    """Open cards without a draft, best first."""
    return [card_id for card_id, _ in cards_to_draft_with_decision(session=session, limit=limit, rep_id=rep_id)]


def cards_to_draft_with_decision(*, session: Session, limit: int = 20,
                                 rep_id: str | None = None) -> list[tuple[str, int | None]]:
    """Open cards without a draft, best first, with the decision each would be drafted for (a card refreshed
    by a newer decision needs a draft for that one)."""
    statement = select(Card.id, Card.decision_id).where(Card.status == CardStatus.OPEN, Card.draft_id.is_(None))
    if rep_id is not None:
        statement = statement.where(Card.rep_id == rep_id)
    return [(card_id, decision_id) for card_id, decision_id in
            session.execute(statement.order_by(Card.priority.desc()).limit(limit))]


class DraftPlan(BaseModel):
    """What a card's draft will be made from, read before the model writes."""

    card_id: str
    decision_id: int
    inputs: DraftInputs


def plan_draft(*, session: Session, card_id: str, drafter: Drafter, index: TemplateIndex,
               now: datetime) -> DraftPlan | None:
    """Choose the approved template for an open card without a draft and gather the draft's inputs (reads
    only). None when the card no longer needs a draft or no approved template fits."""
    card = session.get(Card, card_id)
    if card is None or card.status != CardStatus.OPEN or card.draft_id is not None or card.decision_id is None:
        return None
    decision = session.get(Decision, card.decision_id)
    customer = session.get(Customer, card.customer_id)
    if decision is None or customer is None:
        return None
    chosen = best_for_decision(session=session, index=index, decision=decision,
                               lifecycle_stage=customer.lifecycle_stage, segment=customer.segment)
    if chosen is None:
        return None
    request = DraftRequest(customer_id=card.customer_id, channel=decision.channel, template_id=chosen.id,
                           product=decision.product, reasons=[r["text"] for r in decision.reasons],
                           decision_id=decision.id)
    return DraftPlan(card_id=card_id, decision_id=decision.id,
                     inputs=drafter.gather(session=session, request=request, now=now))


def attach_draft(*, session: Session, plan: DraftPlan, prepared: drafting.PreparedDraft, assessment: Assessment,
                 now: datetime) -> bool:
    """Store the prepared draft and its review and give it to the card, unless the card moved on meanwhile
    (then nothing is written)."""
    card = session.get(Card, plan.card_id)
    if card is None or card.status != CardStatus.OPEN or card.draft_id is not None or card.decision_id != plan.decision_id:
        return False
    stored = drafting.save(session=session, prepared=prepared, now=now)
    review.record(session=session, draft=stored, assessment=assessment, actor="system", now=now)
    card.draft_id, card.template_id, card.updated_at = stored.lineage_id, stored.template_id, now
    return True
