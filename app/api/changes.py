"""Customer change requests: submitted (triaged, then applied, verified first, or held for a person), read,
verified, decided and reversed. Every write is one unit of work with its audit entry."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.changes import service
from app.changes.service import ChangeSubmission, ChangeView, HeldView
from app.http.deps import CurrentUser, ServicesDep
from app.worker import confirm_if_applied

router = APIRouter(prefix="/api/changes", tags=["changes"])


@router.post("", status_code=201)
def submit_change(body: ChangeSubmission, user: CurrentUser, services: ServicesDep) -> ChangeView:
    """A customer's change request in their own words (`id`, `customer_id`, `channel`, `text`, optional
    `context`): what it asks, the new values, the verification and risk, and what happened (applied,
    awaiting_verification, in_review, no_change). The same id again returns the first answer; a new value
    that is not valid (a phone number with letters) is 422 naming `text`, and nothing is stored."""
    now = services.now()
    triage = services.changes
    past = services.query(lambda s: service.history(session=s, customer_id=body.customer_id, now=now,
                                                    window_days=triage.taxonomy.risk.window_days, leave_out=body.id))
    triaged = triage.triage(body, past)  # slow (the classifier), before the unit of work
    answer = services.write(lambda s: service.submit(session=s, user=user, submission=body, triaged=triaged, now=now))
    return confirm_if_applied(services, answer)


@router.get("")
def held_changes(user: CurrentUser, services: ServicesDep, status: str = "in_review") -> list[HeldView]:
    """A queue of requests waiting for a person, the riskiest first, messages redacted: `in_review` (the review
    queue, compliance) or `awaiting_manual_apply` (verified changes the product cannot write, such as a plan or
    a cancellation, for whoever applies them)."""
    patterns = services.reviewer.policy.pii_patterns
    return services.query(lambda s: service.held(session=s, user=user, pii_patterns=patterns, status=status))


@router.get("/{request_id}")
def get_change(request_id: str, user: CurrentUser, services: ServicesDep) -> ChangeView:
    """A change request, its triage (values masked), its status, and every value it wrote, before and after."""
    return services.query(lambda s: service.get(session=s, user=user, request_id=request_id))


@router.post("/{request_id}/questions")
def knowledge_questions(request_id: str, user: CurrentUser, services: ServicesDep) -> ChangeView:
    """The knowledge questions (in `questions`, with options, never the answers) for a request that needs them,
    generated from the customer's own history; asked again, the same ones. Integrations put them to the
    customer and send the answers to /verify."""
    now, products = services.now(), services.profile.products
    return services.write(lambda s: service.ask_questions(session=s, user=user, request_id=request_id,
                                                          products=products, now=now))


class Verification(BaseModel):
    method: Literal["code_to_contact_on_file", "knowledge_questions"]
    passed: bool | None = None  # the code: entered right or not (the system that sent it knows)
    answers: dict[str, str] | None = None  # the knowledge questions: question id -> the option chosen


@router.post("/{request_id}/verify")
def verify_change(request_id: str, body: Verification, user: CurrentUser, services: ServicesDep) -> ChangeView:
    """The outcome of the verification the request needed: for a code sent to the contact already on file
    (never to one this request changes), `passed`; for the knowledge questions, the `answers`, checked here.
    Passed, the change is written (or scheduled, when its type has a cooling-off period) and confirmed."""
    now = services.now()
    answer = services.write(lambda s: service.verify(session=s, user=user, request_id=request_id, method=body.method,
                                                     passed=body.passed, answers=body.answers, now=now))
    return confirm_if_applied(services, answer)


class Decision(BaseModel):
    reason: str | None = Field(default=None, max_length=500)


@router.post("/{request_id}/approve")
def approve_change(request_id: str, body: Decision, user: CurrentUser, services: ServicesDep) -> ChangeView:
    now = services.now()
    answer = services.write(lambda s: service.decide(session=s, user=user, request_id=request_id, approve=True,
                                                     reason=body.reason, now=now))
    return confirm_if_applied(services, answer)


@router.post("/{request_id}/reject")
def reject_change(request_id: str, body: Decision, user: CurrentUser, services: ServicesDep) -> ChangeView:
    now = services.now()
    return services.write(lambda s: service.decide(session=s, user=user, request_id=request_id, approve=False,
                                                   reason=body.reason, now=now))


@router.post("/{request_id}/reverse")
def reverse_change(request_id: str, user: CurrentUser, services: ServicesDep) -> ChangeView:
    """Restore the values an applied request replaced (admins; audited); reversing twice changes nothing more."""
    now = services.now()
    return services.write(lambda s: service.reverse(session=s, user=user, request_id=request_id, now=now))


class MoreVerification(BaseModel):
    method: Literal["code_to_contact_on_file", "knowledge_questions"]


@router.post("/{request_id}/ask-verification")
def ask_verification(request_id: str, body: MoreVerification, user: CurrentUser, services: ServicesDep
                     ) -> ChangeView:
    """Compliance asks for more assurance before a held request goes ahead: it waits for that verification."""
    now = services.now()
    return services.write(lambda s: service.ask_verification(session=s, user=user, request_id=request_id,
                                                             method=body.method, now=now))


class Withdrawal(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


@router.post("/{request_id}/withdraw")
def withdraw_change(request_id: str, body: Withdrawal, user: CurrentUser, services: ServicesDep) -> ChangeView:
    """The customer changed their mind before the change was written (waiting, held, or in its cooling-off
    period): nothing is written."""
    now = services.now()
    return services.write(lambda s: service.withdraw(session=s, user=user, request_id=request_id,
                                                     reason=body.reason, now=now))


@router.post("/{request_id}/applied")
def mark_applied(request_id: str, user: CurrentUser, services: ServicesDep) -> ChangeView:
    """Someone applied by hand a verified change the product cannot write (`awaiting_manual_apply`): it is
    recorded as applied, with whoever says so, and confirmed to the customer."""
    now = services.now()
    answer = services.write(lambda s: service.mark_applied(session=s, user=user, request_id=request_id, now=now))
    return confirm_if_applied(services, answer)
