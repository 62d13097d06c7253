"""Change requests from intake to applied (or held), with nothing lost.

A request is triaged (app/changes/triage.py, slow: done before the unit of work) and stored once under its id:
a replay returns the first answer and applies nothing twice. Its route decides what happens:
- `auto`: applied now, when the product knows how to write every change it asks (the customer's phone, email,
  address, seats, payout account, VAT number); a change it cannot write itself (a plan, a cancellation) is
  handed to a person who applies it where it lives (`awaiting_manual_apply`, then `mark_applied`);
- `verify`: waits for its verification (POST /api/changes/{id}/verify); passed, it is applied; failed, rejected;
- `review`: waits for a person (compliance or admin) to approve or reject it.
A verified change whose type has a cooling-off period (a new payout account, a cancellation) is written when the
period ends (`apply_due`, run by the worker); until then it can be withdrawn. Applying writes every field's
before and after value, who verified and who applied it, and the taxonomy version, in one unit of work with its
audit entry; an authorised user can reverse it, restoring the old values. The risk score reads the account's
own recent requests (`history`) beside what the caller says.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.changes import knowledge
from app.changes.extract import mask
from app.changes.tables import AppliedChange, ChangeConfirmation, ChangeRequestRow
from app.changes.triage import ChangeRequest, PastChange, Triage
from app.data.tables import Customer
from app.domain import content_hash
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.review import personal_data
from app.review import service as review
from app.users.service import Role
from app.users.tables import User

REVIEWERS = (Role.COMPLIANCE, Role.ADMIN)
# What the product writes itself, per change type: (the value's kind, the customer field or attributes key).
WRITERS: dict[str, tuple[str, str]] = {
    "contact_phone": ("phone", "phone"), "contact_email": ("email", "email"),
    "postal_address": ("address", "attributes.address"), "seats_change": ("seats", "attributes.seats"),
    "payment_method": ("iban", "attributes.payout_iban"), "billing_details": ("vat", "attributes.vat_number"),
}


class ChangeSubmission(ChangeRequest):
    """POST /api/changes: a change request about a known customer."""

    customer_id: str


class ConfirmationView(BaseModel):
    channel: str
    contact: str
    to: str
    draft_id: str
    review: str | None
    released: bool


class AppliedView(BaseModel):
    change_type: str
    field: str
    before: Any
    after: Any
    verified_by: str
    applied_by: str
    applied_at: datetime
    reversed_at: datetime | None


class ChangeView(BaseModel):
    id: str
    customer_id: str
    status: str
    triage: dict[str, Any]
    applied: list[AppliedView]
    decided_by: str | None
    reason: str | None
    verified_by: str | None = None
    effective_at: datetime | None = None
    questions: list[dict[str, Any]] = []
    confirmations: list[ConfirmationView] = []
    replayed: bool = False


def _view(session: Session, row: ChangeRequestRow, replayed: bool = False) -> ChangeView:
    applied = session.scalars(select(AppliedChange).where(AppliedChange.request_id == row.id)
                              .order_by(AppliedChange.id)).all()
    kinds = {field: kind for kind, field in WRITERS.values()}
    return ChangeView(id=row.id, customer_id=row.customer_id, status=row.status, triage=row.triage,
                      applied=[AppliedView(change_type=a.change_type, field=a.field,
                                           before=mask(kinds.get(a.field, ""), a.before) if a.before else a.before,
                                           after=mask(kinds.get(a.field, ""), a.after) if a.after else a.after,
                                           verified_by=a.verified_by, applied_by=a.applied_by, applied_at=a.applied_at,
                                           reversed_at=a.reversed_at) for a in applied],
                      decided_by=row.decided_by, reason=row.reason, verified_by=row.verified_by,
                      effective_at=row.effective_at,
                      questions=knowledge.shown(row.challenge) if row.challenge and row.status ==
                      "awaiting_verification" else [],
                      confirmations=_confirmations(session, row.id), replayed=replayed)


def _confirmations(session: Session, request_id: str) -> list[ConfirmationView]:
    rows = session.scalars(select(ChangeConfirmation).where(ChangeConfirmation.request_id == request_id)
                           .order_by(ChangeConfirmation.id)).all()
    drafts = {c.draft_id for c in rows}
    # Each confirmation is the first version of its own lineage, so its draft id is its lineage id.
    reviews, releases = review.reviews_of(session=session, draft_ids=drafts), review.releases_of(
        session=session, draft_ids=drafts)
    return [ConfirmationView(channel=c.channel, contact=c.contact, to=_shown_contact(c.channel, c.to_address),
                             draft_id=c.draft_id, review=reviews[c.draft_id].status if c.draft_id in reviews else None,
                             released=c.draft_id in releases) for c in rows]


def unconfirmed(*, session: Session, limit: int = 50) -> list[str]:
    """Applied requests not confirmed to the customer yet (the worker confirms them)."""
    return list(session.scalars(select(ChangeRequestRow.id).where(ChangeRequestRow.status == "applied",
                                                                  ChangeRequestRow.confirmed_at.is_(None))
                                .order_by(ChangeRequestRow.updated_at).limit(limit)))


def view(*, session: Session, request_id: str) -> ChangeView:
    """A request as the edge that just wrote it shows it back (its caller was authorised by that write)."""
    return _view(session, session.get(ChangeRequestRow, request_id))


def history(*, session: Session, customer_id: str, now: datetime, window_days: int,
            leave_out: str | None = None) -> list[PastChange]:
    """The account's own change requests in the risk window, whatever became of them (a refused takeover
    attempt still counts): what the risk score reads beside what the caller says."""
    rows = session.scalars(select(ChangeRequestRow).where(
        ChangeRequestRow.customer_id == customer_id, ChangeRequestRow.status != "no_change",
        ChangeRequestRow.created_at >= now - timedelta(days=window_days), ChangeRequestRow.created_at <= now)).all()
    return [PastChange(type=change["type"], days_ago=round((now - row.created_at).total_seconds() / 86400, 3))
            for row in rows if row.id != leave_out for change in row.triage["changes"]]


def _shown_contact(kind: str, value: str) -> str:
    """A contact point as it may be shown: an email's first letter and domain, a phone's ends."""
    if kind == "email":
        name, _, domain = value.partition("@")
        return f"{name[:1]}***@{domain}"
    return mask("phone", value)


def submit(*, session: Session, user: User, submission: ChangeSubmission, triaged: Triage, now: datetime) -> ChangeView:
    if user.role not in (Role.REP, Role.INTEGRATION, Role.ADMIN):
        raise Forbidden(f"change requests come from reps and integrations (you are {user.role})", field="role")
    customer = session.get(Customer, submission.customer_id)
    if customer is None:
        raise InvalidInput(f"customer {submission.customer_id!r} not found", field="customer_id")
    if user.role == Role.REP and customer.owner_rep != user.rep_id:
        raise Forbidden(f"customer {submission.customer_id} is not yours", field="customer_id")
    return _store(session, user.name, customer, submission, triaged, now)


def submit_from_event(*, session: Session, submission: ChangeSubmission, triaged: Triage, identity: str,
                      now: datetime) -> ChangeView | None:
    """A change request read in a service conversation (the event's id is the request's). A customer found only
    probabilistically (app/intents/identity.py) is not assumed to be the requester: the change needs at least a
    code to the contact on file before anything is written. None when the customer is gone."""
    customer = session.get(Customer, submission.customer_id)
    if customer is None:
        return None
    if identity == "probabilistic" and triaged.verification == "none":
        triaged.verification = "code_to_contact_on_file"
        if triaged.route == "auto":
            triaged.route = "verify"
        triaged.risk = {**triaged.risk, "signals": [*triaged.risk["signals"], "identity_matched_probabilistically"]}
    return _store(session, "service-events", customer, submission, triaged, now)


def _store(session: Session, actor: str, customer: Customer, submission: ChangeSubmission, triaged: Triage,
           now: datetime) -> ChangeView:
    stored = session.get(ChangeRequestRow, submission.id)
    if stored is not None:
        if stored.content_hash != content_hash(submission):
            raise Conflict(f"change request {submission.id!r} was already submitted with other content", field="id")
        return _view(session, stored, replayed=True)
    if triaged.problems:  # an invalid new value: nothing is stored, the sender is told what is missing
        raise InvalidInput("; ".join(triaged.problems), field="text")
    shown = triaged.as_json()
    status = {"auto": "applied", "verify": "awaiting_verification", "review": "in_review"}[triaged.route]
    held_because = None
    if shown["verification"] == "code_to_contact_on_file":
        # The code goes to a contact point already on file that this request does not change; none left, a
        # person verifies instead.
        changing = {c["type"] for c in shown["changes"]}
        on_file = [(kind, value) for kind, value, change in (("email", customer.email, "contact_email"),
                                                             ("phone", customer.phone, "contact_phone"))
                   if value and change not in changing]
        if on_file:
            shown["code_to"] = {"kind": on_file[0][0], "to": _shown_contact(*on_file[0])}
        else:
            shown["verification"], status = "human", "in_review"
            shown["code_to"] = None
            held_because = "no contact point on file that this request leaves unchanged: a person verifies it"
    if triaged.change_type == "not_a_change":
        status = "no_change"
    row = ChangeRequestRow(id=submission.id, customer_id=customer.id, content_hash=content_hash(submission),
                           channel=submission.channel, text=submission.text, triage=shown,
                           new_values=triaged.values, status=status, taxonomy_version=triaged.taxonomy_version,
                           submitted_by=actor, created_at=now, updated_at=now, reason=held_because)
    session.add(row)
    session.flush()
    audit.record(session=session, actor=actor, action="change_submitted", subject_type="change_request",
                 subject_id=row.id, now=now, details={"customer_id": customer.id, "route": triaged.route,
                                                       "types": [c["type"] for c in shown["changes"]],
                                                       "risk": shown["risk"]})
    if status == "applied":
        _apply(session, row, customer, verified_by="none needed", by=actor, now=now)
    return _view(session, row)


def _unwritable(row: ChangeRequestRow) -> list[str]:
    """The change types of a request the product cannot write itself (a person applies them)."""
    return [c["type"] for c in row.triage["changes"]
            if c["type"] not in WRITERS or WRITERS[c["type"]][0] not in row.new_values]


def _apply(session: Session, row: ChangeRequestRow, customer: Customer, *, verified_by: str, by: str,
           now: datetime) -> None:
    """A verified (or approved) request goes ahead: now, or when its cooling-off period ends."""
    row.verified_by = verified_by
    cooling = max((c.get("rules", {}).get("cooling_off_days", 0) for c in row.triage["changes"]), default=0)
    if cooling and row.effective_at is None:
        row.status, row.effective_at, row.updated_at = "cooling_off", now + timedelta(days=cooling), now
        audit.record(session=session, actor=by, action="change_scheduled", subject_type="change_request",
                     subject_id=row.id, now=now, details={"customer_id": customer.id, "verified_by": verified_by,
                                                           "effective_at": row.effective_at.isoformat(),
                                                           "cooling_off_days": cooling})
        return
    _go_ahead(session, row, customer, by=by, now=now)


def _go_ahead(session: Session, row: ChangeRequestRow, customer: Customer, *, by: str, now: datetime) -> None:
    """Written by the product, or, with a change it cannot write (a plan, a cancellation), handed to a person who
    applies it in the system that holds it and says so (`mark_applied`)."""
    unwritable = _unwritable(row)
    if not unwritable:
        _write(session, row, customer, by=by, now=now)
        return
    row.status, row.updated_at = "awaiting_manual_apply", now
    row.reason = "a person applies the " + ", ".join(t.replace("_", " ") for t in unwritable) + \
        " where it is kept, then reports it applied"
    audit.record(session=session, actor=by, action="change_handed_over", subject_type="change_request",
                 subject_id=row.id, now=now, details={"customer_id": customer.id, "types": unwritable})


def _write(session: Session, row: ChangeRequestRow, customer: Customer, *, by: str, now: datetime) -> None:
    """Write every change the product can write, each field's before and after kept; the rest a person did."""
    unwritable = set(_unwritable(row))
    types = [c["type"] for c in row.triage["changes"]]
    attributes = dict(customer.attributes or {})
    for change_type in types:
        if change_type in unwritable:
            continue
        kind, field = WRITERS[change_type]
        after = row.new_values[kind]
        if field.startswith("attributes."):
            key = field.removeprefix("attributes.")
            before = attributes.get(key)
            attributes[key] = after
        else:
            before = getattr(customer, field)
            setattr(customer, field, after)
        session.add(AppliedChange(request_id=row.id, customer_id=customer.id, change_type=change_type, field=field,
                                  before=before, after=after, verified_by=row.verified_by or "none needed",
                                  applied_by=by, applied_at=now))
    customer.attributes = attributes
    row.status, row.updated_at = "applied", now
    audit.record(session=session, actor=by, action="change_applied", subject_type="change_request", subject_id=row.id,
                 now=now, details={"customer_id": customer.id, "types": types, "verified_by": row.verified_by,
                                   "by_hand": sorted(unwritable), "taxonomy_version": row.taxonomy_version})


def apply_due(*, session: Session, now: datetime, limit: int = 100) -> list[str]:
    """Write the verified changes whose cooling-off period has ended (the worker runs this every round)."""
    rows = session.scalars(select(ChangeRequestRow).where(ChangeRequestRow.status == "cooling_off",
                                                          ChangeRequestRow.effective_at <= now)
                           .order_by(ChangeRequestRow.effective_at).limit(limit)).all()
    for row in rows:
        _go_ahead(session, row, session.get(Customer, row.customer_id), by="cooling-off ended", now=now)
    return [row.id for row in rows]


def mark_applied(*, session: Session, user: User, request_id: str, now: datetime) -> ChangeView:
    """A person applied by hand what the product cannot write (the plan in billing, the cancellation): the
    request is applied (what the product can write is written now) and confirmed to the customer."""
    if user.role not in (Role.REP, Role.INTEGRATION, Role.ADMIN):
        raise Forbidden(f"applied changes are reported by reps and integrations (you are {user.role})", field="role")
    row, customer = _waiting(session, request_id, "awaiting_manual_apply")
    if user.role == Role.REP and customer.owner_rep != user.rep_id:
        raise Forbidden(f"change request {request_id} is about a customer who is not yours", field="id")
    _write(session, row, customer, by=user.name, now=now)
    return _view(session, row)


def _waiting(session: Session, request_id: str, status: str) -> tuple[ChangeRequestRow, Customer]:
    row = session.get(ChangeRequestRow, request_id)
    if row is None:
        raise NotFound(f"no change request {request_id!r}", field="id")
    if row.status != status:
        raise Conflict(f"change request {request_id} is {row.status}, not {status.replace('_', ' ')}", field="id")
    return row, session.get(Customer, row.customer_id)


def ask_questions(*, session: Session, user: User, request_id: str, products: dict[str, str], now: datetime
                  ) -> ChangeView:
    """The knowledge questions for a request that needs them, generated from the customer's own history (the
    same questions if asked again). A history too thin to ask about sends the request to a person."""
    if user.role not in (Role.INTEGRATION, Role.ADMIN):
        raise Forbidden(f"verification runs through integrations (you are {user.role})", field="role")
    row, customer = _waiting(session, request_id, "awaiting_verification")
    if row.triage["verification"] != "knowledge_questions":
        raise InvalidInput(f"this request needs {row.triage['verification']}, not knowledge questions", field="method")
    if row.challenge is None:
        row.challenge = knowledge.challenge(session=session, customer=customer, products=products, now=now)
        if row.challenge is None:
            row.status, row.updated_at = "in_review", now
            row.reason = "the customer's history holds too little for knowledge questions: a person verifies it"
            row.triage = {**row.triage, "verification": "human"}
        audit.record(session=session, actor=user.name, action="change_questions_asked", subject_type="change_request",
                     subject_id=row.id, now=now, details={"questions": len(row.challenge["questions"])
                                                           if row.challenge else 0})
    return _view(session, row)


def verify(*, session: Session, user: User, request_id: str, method: str, now: datetime, passed: bool | None = None,
           answers: dict[str, str] | None = None) -> ChangeView:
    """The verification's outcome: a code's (reported by the system that sent it to the contact on file), or the
    answers to the knowledge questions (checked here). Passed, the request goes ahead; failed, it is rejected."""
    if user.role not in (Role.INTEGRATION, Role.ADMIN):
        raise Forbidden(f"verification results come from integrations (you are {user.role})", field="role")
    row, customer = _waiting(session, request_id, "awaiting_verification")
    needed = row.triage["verification"]
    if method != needed:
        raise InvalidInput(f"this request needs {needed}, not {method}", field="method")
    if method == "knowledge_questions":
        if row.challenge is None:
            raise Conflict(f"no questions were asked yet: POST /api/changes/{request_id}/questions first",
                           field="answers")
        missing = knowledge.unanswered(row.challenge, answers or {})
        if missing:
            raise InvalidInput(f"no answer to {', '.join(missing)}", field="answers")
        passed = knowledge.passed(row.challenge, answers or {})
    elif passed is None:
        raise InvalidInput("say whether the code was entered correctly", field="passed")
    if not passed:
        row.status, row.reason, row.decided_by, row.updated_at = "rejected", f"{method} failed", user.name, now
        audit.record(session=session, actor=user.name, action="change_rejected", subject_type="change_request",
                     subject_id=row.id, now=now, details={"reason": row.reason})
    else:
        _apply(session, row, customer, verified_by=f"{method} ({user.name})", by=user.name, now=now)
    return _view(session, row)


def decide(*, session: Session, user: User, request_id: str, approve: bool, reason: str | None, now: datetime
           ) -> ChangeView:
    """A person's decision on a held request: approved, it goes ahead (written, scheduled after its cooling-off,
    or handed to a person to apply); rejected, nothing is written."""
    if user.role not in REVIEWERS:
        raise Forbidden(f"held change requests are decided by compliance (you are {user.role})", field="role")
    row, customer = _waiting(session, request_id, "in_review")
    if not approve and not (reason or "").strip():
        raise InvalidInput("must say why the request is rejected", field="reason")
    row.decided_by, row.reason, row.updated_at = user.name, (reason or "").strip() or None, now
    if approve:
        verified = row.verified_by or f"review ({user.name})"
        _apply(session, row, customer, verified_by=verified, by=user.name, now=now)
    else:
        row.status = "rejected"
        audit.record(session=session, actor=user.name, action="change_rejected", subject_type="change_request",
                     subject_id=row.id, now=now, details={"reason": row.reason})
    return _view(session, row)


WITHDRAWABLE = ("awaiting_verification", "in_review", "cooling_off", "awaiting_manual_apply")


def withdraw(*, session: Session, user: User, request_id: str, reason: str, now: datetime) -> ChangeView:
    """The customer changed their mind before the change was written (waiting, held or cooling off): nothing is
    written. Told by the rep who owns the customer, an integration, or an admin."""
    if user.role not in (Role.REP, Role.INTEGRATION, Role.ADMIN):
        raise Forbidden(f"a withdrawal comes from reps and integrations (you are {user.role})", field="role")
    row = session.get(ChangeRequestRow, request_id)
    if row is None:
        raise NotFound(f"no change request {request_id!r}", field="id")
    if user.role == Role.REP and session.get(Customer, row.customer_id).owner_rep != user.rep_id:
        raise Forbidden(f"change request {request_id} is about a customer who is not yours", field="id")
    if row.status not in WITHDRAWABLE:
        raise Conflict(f"change request {request_id} is {row.status}: only one not yet written can be withdrawn",
                       field="id")
    if not reason.strip():
        raise InvalidInput("must say why the request is withdrawn", field="reason")
    row.status, row.reason, row.decided_by, row.updated_at = "withdrawn", reason.strip(), user.name, now
    audit.record(session=session, actor=user.name, action="change_withdrawn", subject_type="change_request",
                 subject_id=row.id, now=now, details={"reason": row.reason})
    return _view(session, row)


def reverse(*, session: Session, user: User, request_id: str, now: datetime) -> ChangeView:
    """Restore the values an applied request replaced (admins only); reversing twice changes nothing more."""
    if user.role != Role.ADMIN:
        raise Forbidden(f"reversing a change needs the admin role (you are {user.role})", field="role")
    row = session.get(ChangeRequestRow, request_id)
    if row is None:
        raise NotFound(f"no change request {request_id!r}", field="id")
    if row.status == "reversed":
        return _view(session, row, replayed=True)
    if row.status != "applied":
        raise Conflict(f"change request {request_id} is {row.status}: only an applied one can be reversed", field="id")
    customer = session.get(Customer, row.customer_id)
    attributes = dict(customer.attributes or {})
    for applied in reversed(session.scalars(select(AppliedChange).where(AppliedChange.request_id == row.id)).all()):
        if applied.field.startswith("attributes."):
            key = applied.field.removeprefix("attributes.")
            if applied.before is None:
                attributes.pop(key, None)
            else:
                attributes[key] = applied.before
        else:
            setattr(customer, applied.field, applied.before)
        applied.reversed_by, applied.reversed_at = user.name, now
    customer.attributes = attributes
    row.status, row.updated_at = "reversed", now
    audit.record(session=session, actor=user.name, action="change_reversed", subject_type="change_request",
                 subject_id=row.id, now=now, details={"customer_id": customer.id})
    return _view(session, row)


def get(*, session: Session, user: User, request_id: str) -> ChangeView:
    if user.role == Role.CONTENT:
        raise Forbidden("the content team does not read change requests", field="role")
    row = session.get(ChangeRequestRow, request_id)
    if row is None:
        raise NotFound(f"no change request {request_id!r}", field="id")
    if user.role == Role.REP and session.get(Customer, row.customer_id).owner_rep != user.rep_id:
        raise Forbidden(f"change request {request_id} is about a customer who is not yours", field="id")
    return _view(session, row)


class HeldView(BaseModel):
    """A request waiting for a person, as the review queue shows it: the message with personal data redacted."""

    id: str
    customer_id: str
    channel: str
    text: str
    types: list[str]
    extracted: list[dict[str, Any]]
    rules: list[dict[str, Any]]  # per change: the records it touches, who approves, cooling-off, what is told
    verification: str
    risk: dict[str, Any]
    reason: str | None
    created_at: datetime


QUEUES = {"in_review": REVIEWERS, "awaiting_manual_apply": (*REVIEWERS, Role.INTEGRATION)}


def held(*, session: Session, user: User, pii_patterns: dict[str, re.Pattern[str]], status: str = "in_review",
         limit: int = 100) -> list[HeldView]:
    """A queue of requests waiting for a person, the riskiest first: `in_review` (compliance decides) or
    `awaiting_manual_apply` (verified; someone applies it where it is kept)."""
    if status not in QUEUES:
        raise InvalidInput(f"must be one of {', '.join(QUEUES)}", field="status")
    if user.role not in QUEUES[status]:
        raise Forbidden(f"the {status.replace('_', ' ')} queue is not for your role ({user.role})", field="role")
    rows = session.scalars(select(ChangeRequestRow).where(ChangeRequestRow.status == status)
                           .order_by(ChangeRequestRow.created_at).limit(limit)).all()
    views = [HeldView(id=r.id, customer_id=r.customer_id, channel=r.channel,
                      text=personal_data.redact(r.text, pii_patterns), types=[c["type"] for c in r.triage["changes"]],
                      extracted=[c["extracted"] for c in r.triage["changes"]],
                      rules=[{"type": c["type"], **c.get("rules", {})} for c in r.triage["changes"]],
                      verification=r.triage["verification"],
                      risk=r.triage["risk"], reason=r.reason, created_at=r.created_at) for r in rows]
    return sorted(views, key=lambda v: -v.risk["score"])


def ask_verification(*, session: Session, user: User, request_id: str, method: str, now: datetime) -> ChangeView:
    """A reviewer asks for more assurance first: the request waits for that verification, then is applied."""
    if user.role not in REVIEWERS:
        raise Forbidden(f"held change requests are decided by compliance (you are {user.role})", field="role")
    if method not in ("code_to_contact_on_file", "knowledge_questions"):
        raise InvalidInput("must be code_to_contact_on_file or knowledge_questions", field="method")
    row, _ = _waiting(session, request_id, "in_review")
    row.triage = {**row.triage, "verification": method}
    row.status, row.decided_by, row.updated_at = "awaiting_verification", user.name, now
    audit.record(session=session, actor=user.name, action="change_verification_asked", subject_type="change_request",
                 subject_id=row.id, now=now, details={"method": method})
    return _view(session, row)
