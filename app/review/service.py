"""Reviewing draft versions, the compliance queue, and the one release gate.

Every stored draft version gets one review: `ready` versions may go out, `needs_approval` ones wait in the
compliance queue until compliance approves (as written, or with their own edit, which is a new version) or
rejects them with a reason, `blocked` ones never go out. A newer version of the same lineage withdraws the
older ones' queue items. Two reviewers deciding the same item: each names the item version they saw, and
only the first decision for that version lands.

`release` is the only code that lets a text go out. It takes one stored, immutable draft version: the head
of its lineage, reviewed `ready` or `approved`, never released before; and it records the SHA-256 of that
exact text in the audit chain. Everything here writes inside the caller's unit of work; the slow part
(running the validators) is `assess`, done before it.
"""

from __future__ import annotations

import difflib
import hashlib
import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel
from sqlalchemy import desc, func, select, update
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.data.tables import Customer, Event
from app.drafting import service as drafting
from app.drafting.facts import CompanyProfile, customer_fields
from app.drafting.service import DraftMode, DraftResult
from app.errors import Conflict, InvalidInput, NotFound, NotReleasable
from app.feedback import service as feedback
from app.library import service as library
from app.library.templates import render
from app.models.tables import Decision
from app.review.checks import Review as Verdicts
from app.review.checks import Reviewer, Verdict
from app.review.tables import PolicySuggestion, Release, Review
from app.review.validators import ReviewContext

# Why compliance rejects, and which policy file a rejected wording should teach.
REASON_CODES: dict[str, str | None] = {
    "prohibited_claim": "claims", "missing_disclosure": "disclosures", "personal_data": "pii", "tone": "tone",
    "inaccurate": "faithfulness", "off_brand": None, "wrong_customer": None, "other": None,
}


class ReviewStatus(StrEnum):
    READY = "ready"
    NEEDS_APPROVAL = "needs_approval"
    BLOCKED = "blocked"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"  # a newer version of the lineage replaced it while it waited


# How a reviewed version may move on: the single source of truth. Only a queued version moves at all.
TRANSITIONS: dict[ReviewStatus, frozenset[ReviewStatus]] = {
    ReviewStatus.READY: frozenset(),
    ReviewStatus.NEEDS_APPROVAL: frozenset({ReviewStatus.APPROVED, ReviewStatus.REJECTED, ReviewStatus.WITHDRAWN}),
    ReviewStatus.BLOCKED: frozenset(),
    ReviewStatus.APPROVED: frozenset(),
    ReviewStatus.REJECTED: frozenset(),
    ReviewStatus.WITHDRAWN: frozenset(),
}
RELEASABLE = frozenset({ReviewStatus.READY, ReviewStatus.APPROVED})
# The queue's own words for where an item stands.
QUEUE_STATUS = {ReviewStatus.NEEDS_APPROVAL: "pending", ReviewStatus.APPROVED: "approved",
                ReviewStatus.REJECTED: "rejected", ReviewStatus.WITHDRAWN: "withdrawn"}
QUEUE_FILTER = {v: k for k, v in QUEUE_STATUS.items()}


class DraftLike(Protocol):
    """What a review needs to know about a text: for whom, from which template, on which channel."""

    customer_id: str
    decision_id: int | None
    template_id: str
    template_version: int
    channel: str
    subject: str | None
    body: str


class Assessment(BaseModel):
    """The validators' verdict on one text with what the reviewer will check it against: made before the
    write (it is the slow part), stored by `record`."""

    body: str
    verdicts: Verdicts
    sources: dict[str, Any]
    versions: dict[str, Any]

    @property
    def verdict(self) -> Verdict:
        return self.verdicts.verdict

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [f.model_dump() for f in self.verdicts.findings if not f.passed]


class ReviewResult(BaseModel):
    """Where one draft version stands."""

    id: str
    draft_id: str
    status: ReviewStatus
    verdict: str
    routing: list[str]
    findings: list[dict[str, Any]]
    policy_version: str
    version: int
    decided_by: str | None = None
    reason_code: str | None = None


class TemplateRef(BaseModel):
    id: str
    version: int
    body: str


class QueueItem(BaseModel):
    """A queued version with everything a reviewer needs: the text, what it replaced, the template, the
    findings with spans, the reasons and data sources."""

    id: str
    version: int
    status: str
    created_at: datetime
    customer_id: str
    draft_id: str
    revision: int
    channel: str
    subject: str | None
    body: str
    mode: str
    model: str | None
    author: str
    previous_body: str | None
    template: TemplateRef
    routing: list[str]
    findings: list[dict[str, Any]]
    sources: dict[str, Any]
    policy_version: str
    decided_by: str | None
    reason_code: str | None
    comment: str | None


class QueueDecision(BaseModel):
    id: str
    status: str
    version: int
    decided_by: str | None
    reason_code: str | None = None
    draft_id: str
    approved_draft_id: str | None = None


class ReleaseResult(BaseModel):
    id: str
    draft_id: str
    lineage_id: str
    body_sha256: str
    subject_sha256: str | None
    channel: str
    released_by: str
    released_at: datetime


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def review_context(profile: CompanyProfile, *, channel: str, subject: str | None, names: dict[str, str],
                   email: str | None, phone: str | None, owner_rep: str | None, product_key: str | None,
                   template_body: str | None, disclosures: list[str], facts: list[str],
                   template_values: dict[str, dict[str, str]] | None = None) -> ReviewContext:
    """What the validators may compare a text with: the approved template rendered for this recipient, its
    disclosures, the trusted facts, and the recipient's and the company's own contact details."""
    product = profile.product(product_key) if product_key else None
    rep = profile.rep(owner_rep)
    rendered = None
    if template_body is not None:
        rendered = render(template_body, {"customer": names, "product": product or profile.product(None), "rep": rep,
                                          "company": profile.company, **(template_values or {})})
    first_name = "" if names["first_name"] == "there" else names["first_name"]
    return ReviewContext(
        channel=channel, subject=subject, recipient={"first_name": first_name, "email": email or "", "phone": phone or ""},
        allowed_contacts=[v for v in [*rep.values(), *profile.company.values()] if v], template_text=rendered,
        template_disclosures=list(disclosures), facts=[*facts, *([product["name"]] if product else []), *names.values()],
        product_names=profile.products, product_key=product_key or None, company_domains=profile.domains)


def _decision(session: Session, decision_id: int | None) -> Decision | None:
    return session.get(Decision, decision_id) if decision_id else None


def _versions(draft: DraftLike, decision: Decision | None, review_policy: str | None) -> dict[str, Any]:
    return {"model": decision.model_version if decision else None,
            "contact_policy": decision.policy_version if decision else None,
            "prompt": getattr(draft, "prompt_version", None), "template": f"{draft.template_id}@{draft.template_version}",
            "llm": getattr(draft, "model", None), "review_policy": review_policy}


def _sources(session: Session, customer: Customer, decision: Decision | None, now: datetime) -> dict[str, Any]:
    """Which reasons, features and recent events drove the recommendation: what the reviewer checks it against."""
    events = session.scalars(select(Event).where(Event.customer_id == customer.id, Event.occurred_at <= now)
                             .order_by(desc(Event.occurred_at)).limit(8)).all()
    return {
        "reasons": decision.reasons if decision else [],
        "confidence": decision.confidence if decision else None,
        "method": decision.method if decision else None,
        "events": [{"id": e.id, "type": e.type, "at": e.occurred_at.isoformat(), "product": e.product,
                    "intent": e.intent} for e in events],
        "customer_fields": {"segment": customer.segment, "industry": customer.industry,
                            "lifecycle_stage": customer.lifecycle_stage, "sensitive": customer.sensitive},
    }


def assess(*, session: Session, reviewer: Reviewer, profile: CompanyProfile, draft: DraftLike,
           now: datetime, template_values: dict[str, dict[str, str]] | None = None) -> Assessment:
    """Run every validator on a text, against its template version, its customer and its decision's reasons,
    and route it. Reads only; the slow part of a review, done before the write. `template_values`: the values
    of placeholders only some templates know (a change confirmation's `change`)."""
    customer = session.get(Customer, draft.customer_id)
    if customer is None:
        raise NotFound(f"customer {draft.customer_id!r} not found", field="customer_id")
    decision = _decision(session, draft.decision_id)
    template = library.template_version(session=session, template_id=draft.template_id, version=draft.template_version)
    names = customer_fields(first_name=customer.first_name, last_name=customer.last_name,
                            company=(customer.attributes or {}).get("company"), segment=customer.segment,
                            industry=customer.industry)
    context = review_context(profile, channel=draft.channel, subject=draft.subject, names=names, email=customer.email,
                             phone=customer.phone, owner_rep=customer.owner_rep,
                             product_key=decision.product if decision else (template.products or [None])[0],
                             template_body=template.body, disclosures=template.disclosures or [],
                             facts=[r["text"] for r in (decision.reasons if decision else [])],
                             template_values=template_values)
    if reviewer.injection is not None:
        said = [e.text for e in session.scalars(select(Event).where(
            Event.customer_id == customer.id, Event.text.is_not(None), Event.occurred_at <= now,
            Event.occurred_at >= now - timedelta(days=30)).order_by(desc(Event.occurred_at)).limit(5))]
        context.customer_instructions = [t for t, flagged in zip(said, reviewer.injection.flags(said)) if flagged]
    sensitive = reviewer.sensitivity(customer_sensitive=customer.sensitive, industry=customer.industry,
                                     template_sensitive=template.sensitive)
    verdicts = reviewer.check(draft.body, context, sensitive=sensitive,
                              confidence=decision.confidence if decision else None)
    return Assessment(body=draft.body, verdicts=verdicts, sources=_sources(session, customer, decision, now),
                      versions=_versions(draft, decision, verdicts.policy_version))


def _result(row: Review) -> ReviewResult:
    return ReviewResult(id=row.id, draft_id=row.draft_id, status=row.status, verdict=row.verdict, routing=row.routing,
                        findings=row.findings, policy_version=row.policy_version, version=row.version,
                        decided_by=row.decided_by, reason_code=row.reason_code)


def record(*, session: Session, draft: DraftResult, assessment: Assessment, actor: str, now: datetime,
           approved_by: str | None = None) -> ReviewResult:
    """Store the review of a new draft version, queue it if it needs approval, withdraw the queue items of
    the versions it replaces, and audit all of it. `approved_by`: compliance wrote this version themselves."""
    if assessment.body != draft.body:
        raise InvalidInput("the assessment was made for another text", field="draft")
    verdict = assessment.verdict
    status = ReviewStatus.APPROVED if approved_by else ReviewStatus(verdict.value)
    versions = assessment.versions
    decision = _decision(session, draft.decision_id)
    if draft.revision == 1 and decision is not None:
        audit.record(session=session, actor=actor, action="recommendation", subject_type="decision",
                     subject_id=str(decision.id), now=now, versions=versions,
                     details={"customer_id": decision.customer_id, "channel": decision.channel,
                              "slot": decision.slot_local, "confidence": decision.confidence,
                              "reasons": [r["text"] for r in decision.reasons], "method": decision.method})
    audit.record(session=session, actor=actor, action="draft", subject_type="draft", subject_id=draft.id, now=now,
                 versions=versions, details={"customer_id": draft.customer_id, "lineage_id": draft.lineage_id,
                                             "revision": draft.revision, "mode": draft.mode, "author": draft.author,
                                             "fallback_reason": draft.fallback_reason,
                                             "body_sha256": sha256(draft.body)})
    routing = list(assessment.verdicts.routing) + ([f"approved as edited by {approved_by}"] if approved_by else [])
    row = Review(id=uuid.uuid4().hex[:12], draft_id=draft.id, lineage_id=draft.lineage_id,
                 customer_id=draft.customer_id, template_id=draft.template_id, verdict=verdict.value, status=status,
                 routing=routing, findings=assessment.failed, sources=assessment.sources,
                 policy_version=assessment.verdicts.policy_version, created_at=now, version=1,
                 decided_by=approved_by, decided_at=now if approved_by else None,
                 approved_draft_id=draft.id if approved_by else None)
    session.add(row)
    session.flush()
    audit.record(session=session, actor=actor, action="review", subject_type="draft", subject_id=draft.id, now=now,
                 versions=versions, details={"verdict": verdict.value, "status": status, "routing": routing,
                                             "failed": [f["validator"] for f in assessment.failed],
                                             "latency_ms": assessment.verdicts.latency_ms, "review_item": row.id})
    if status == ReviewStatus.NEEDS_APPROVAL:
        audit.record(session=session, actor=actor, action="queued", subject_type="review_item", subject_id=row.id,
                     now=now, versions=versions, details={"draft_id": draft.id, "routing": routing})
    withdraw(session=session, lineage_id=draft.lineage_id, by=actor, now=now, keep=draft.id,
             reason=f"replaced by version {draft.revision}")
    return _result(row)


def _move(session: Session, item_id: str, version: int, to: ReviewStatus, values: dict[str, Any]) -> Review:
    """The optimistic lock: only a decision naming the current version, on an item that may move to `to`."""
    allowed = [s for s, targets in TRANSITIONS.items() if to in targets]
    changed = session.execute(update(Review).where(Review.id == item_id, Review.version == version,
                                                   Review.status.in_(allowed))
                              .values(version=Review.version + 1, status=to, **values))
    item = session.get(Review, item_id)
    if item is None:
        raise NotFound(f"review item {item_id!r} not found", field="item")
    session.refresh(item)
    if changed.rowcount != 1:
        who = f" by {item.decided_by}" if item.decided_by else ""
        state = QUEUE_STATUS.get(ReviewStatus(item.status), item.status)
        raise Conflict(f"review item {item_id} was already {state}{who} (you saw version {version}, it is at "
                       f"version {item.version}): reload it", field="version")
    return item


def withdraw(*, session: Session, lineage_id: str, by: str, now: datetime, reason: str, keep: str | None = None) -> int:
    """Take a lineage's waiting queue items out of the queue (a newer version replaced them, or the card
    moved on to another draft). Returns how many."""
    waiting = session.scalars(select(Review).where(Review.lineage_id == lineage_id,
                                                   Review.status == ReviewStatus.NEEDS_APPROVAL,
                                                   Review.draft_id != (keep or ""))).all()
    for item in waiting:
        _move(session, item.id, item.version, ReviewStatus.WITHDRAWN, {"comment": reason})
        audit.record(session=session, actor=by, action="withdrawn", subject_type="review_item", subject_id=item.id,
                     now=now, details={"draft_id": item.draft_id, "reason": reason})
    return len(waiting)


def reviews_of(*, session: Session, draft_ids: set[str]) -> dict[str, ReviewResult]:
    if not draft_ids:
        return {}
    rows = session.scalars(select(Review).where(Review.draft_id.in_(draft_ids))).all()
    return {row.draft_id: _result(row) for row in rows}


def queue(*, session: Session, status: str | None = "pending", limit: int = 200) -> list[QueueItem]:
    """Queue items, oldest first. `status`: pending, approved, rejected, withdrawn, or None for all."""
    statement = select(Review).where(Review.status.in_(list(QUEUE_STATUS)))
    if status:
        if status not in QUEUE_FILTER:
            raise InvalidInput(f"{status!r} is not one of {', '.join(QUEUE_FILTER)}, all", field="status")
        statement = statement.where(Review.status == QUEUE_FILTER[status])
    items = session.scalars(statement.order_by(Review.created_at, Review.id).limit(limit)).all()
    out = []
    for item in items:
        draft = drafting.get(session=session, draft_id=item.draft_id)
        previous = None
        if draft.revision > 1:
            before = [v for v in drafting.versions(session=session, lineage_id=draft.lineage_id)
                      if v.revision == draft.revision - 1]
            previous = before[0].body if before else None
        template = library.template_version(session=session, template_id=draft.template_id,
                                            version=draft.template_version)
        out.append(QueueItem(id=item.id, version=item.version, status=QUEUE_STATUS[ReviewStatus(item.status)],
                             created_at=item.created_at, customer_id=item.customer_id, draft_id=draft.id,
                             revision=draft.revision, channel=draft.channel, subject=draft.subject, body=draft.body,
                             mode=draft.mode, model=draft.model, author=draft.author, previous_body=previous,
                             template=TemplateRef(id=template.id, version=template.version, body=template.body),
                             routing=item.routing, findings=item.findings, sources=item.sources,
                             policy_version=item.policy_version, decided_by=item.decided_by,
                             reason_code=item.reason_code, comment=item.comment))
    return out


class ApprovalEdit(BaseModel):
    """Compliance's edit of a queued version, already checked by the validators."""

    item_id: str
    base_draft_id: str
    assessment: Assessment


def prepare_approval(*, session: Session, reviewer: Reviewer, profile: CompanyProfile, item_id: str,
                     edited_body: str | None, now: datetime) -> ApprovalEdit | None:
    """Check compliance's edit before the decision is written; None when there is no edit (no text, or the
    same text as the draft). An edit the guardrails block cannot be approved."""
    if edited_body is None:
        return None
    edited_body = drafting.check_text(edited_body, field="text")
    item = session.get(Review, item_id)
    if item is None:
        raise NotFound(f"review item {item_id!r} not found", field="item")
    draft = drafting.get(session=session, draft_id=item.draft_id)
    if edited_body == draft.body:
        return None
    assessment = assess(session=session, reviewer=reviewer, profile=profile,
                        draft=draft.model_copy(update={"body": edited_body}), now=now)
    if assessment.verdict == Verdict.BLOCKED:
        raise InvalidInput("the edit is blocked by the guardrails: " + "; ".join(assessment.verdicts.routing),
                           field="text")
    return ApprovalEdit(item_id=item_id, base_draft_id=draft.id, assessment=assessment)


def _diff(before: str, after: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), "before", "after"))


def approve(*, session: Session, item_id: str, version: int, by: str, now: datetime, edit: ApprovalEdit | None = None,
            comment: str | None = None) -> QueueDecision:
    """Approve a queued version as written, or approve compliance's edit of it: the edit is a new version of
    the lineage (never a change in place), approved by its author, and it is what the card shows and sends."""
    if edit is not None and edit.item_id != item_id:
        raise InvalidInput("the checked edit belongs to another item", field="text")
    item = _move(session, item_id, version, ReviewStatus.APPROVED, {"decided_by": by, "decided_at": now,
                                                                    "comment": comment})
    draft = drafting.get(session=session, draft_id=item.draft_id)
    approved = draft
    if edit is not None:
        approved = drafting.revise(session=session, base=draft, body=edit.assessment.body, author=by,
                                   mode=DraftMode.COMPLIANCE_EDIT, now=now)
        audit.record(session=session, actor=by, action="edit", subject_type="draft", subject_id=approved.id, now=now,
                     versions=edit.assessment.versions,
                     details={"replaces": draft.id, "diff": _diff(draft.body, approved.body)})
        record(session=session, draft=approved, assessment=edit.assessment, actor=by, now=now, approved_by=by)
    item.approved_draft_id = approved.id
    audit.record(session=session, actor=by, action="approve", subject_type="review_item", subject_id=item.id, now=now,
                 versions=_versions(approved, _decision(session, approved.decision_id), item.policy_version),
                 details={"draft_id": draft.id, "approved_draft_id": approved.id, "comment": comment,
                          "edited": edit is not None, "body_sha256": sha256(approved.body)})
    return QueueDecision(id=item.id, status=QUEUE_STATUS[ReviewStatus.APPROVED], version=item.version,
                         decided_by=by, draft_id=draft.id, approved_draft_id=approved.id)


def reject(*, session: Session, item_id: str, version: int, by: str, reason_code: str, now: datetime,
           comment: str | None = None) -> QueueDecision:
    """Reject with a reason: the template ranks lower for similar customers, the case is kept as a labelled
    negative and for the next training run, and a policy example is suggested."""
    if reason_code not in REASON_CODES:
        raise InvalidInput(f"{reason_code!r} is not one of {', '.join(REASON_CODES)}", field="reason_code")
    item = _move(session, item_id, version, ReviewStatus.REJECTED, {"decided_by": by, "decided_at": now,
                                                                    "reason_code": reason_code, "comment": comment})
    draft = drafting.get(session=session, draft_id=item.draft_id)
    customer = session.get(Customer, draft.customer_id)
    feedback.record_compliance_rejection(session=session, customer_id=draft.customer_id, decision_id=draft.decision_id,
                                         draft_id=draft.id, template_id=draft.template_id,
                                         segment=customer.segment if customer else None, channel=draft.channel,
                                         reason_code=reason_code, comment=comment, text=draft.body, by=by, now=now)
    category = REASON_CODES[reason_code]
    if category:
        flagged = next((s["text"] for f in item.findings if f.get("validator") == category for s in f.get("spans", [])),
                       None)
        session.add(PolicySuggestion(category=category, example=(flagged or draft.body)[:500], source_item=item.id,
                                     created_at=now))
    audit.record(session=session, actor=by, action="reject", subject_type="review_item", subject_id=item.id, now=now,
                 versions=_versions(draft, _decision(session, draft.decision_id), item.policy_version),
                 details={"draft_id": draft.id, "reason_code": reason_code, "comment": comment})
    return QueueDecision(id=item.id, status=QUEUE_STATUS[ReviewStatus.REJECTED], version=item.version, decided_by=by,
                         reason_code=reason_code, draft_id=draft.id)


def releases_of(*, session: Session, draft_ids: set[str]) -> dict[str, ReleaseResult]:
    """The release of each lineage that went out, by lineage id."""
    if not draft_ids:
        return {}
    rows = session.scalars(select(Release).where(Release.lineage_id.in_(draft_ids))).all()
    return {row.lineage_id: _release(row) for row in rows}


def _release(row: Release) -> ReleaseResult:
    return ReleaseResult(id=row.id, draft_id=row.draft_id, lineage_id=row.lineage_id, body_sha256=row.body_sha256,
                         subject_sha256=row.subject_sha256, channel=row.channel, released_by=row.released_by,
                         released_at=row.released_at)


def queue_counts(*, session: Session) -> dict[str, int]:
    """How many queue items stand where (pending, approved, rejected, withdrawn)."""
    rows = session.execute(select(Review.status, func.count()).where(Review.status.in_(list(QUEUE_STATUS)))
                           .group_by(Review.status)).all()
    return {QUEUE_STATUS[ReviewStatus(status)]: int(n) for status, n in rows}


WHY_NOT = {None: "it has not been reviewed", ReviewStatus.NEEDS_APPROVAL: "it waits for compliance approval",
           ReviewStatus.BLOCKED: "the guardrails blocked it", ReviewStatus.REJECTED: "compliance rejected it",
           ReviewStatus.WITHDRAWN: "a newer version replaced it"}


def release(*, session: Session, draft_id: str, by: str, channel: str, now: datetime,
            subject_ref: str | None = None) -> ReleaseResult:
    """The one release gate. Lets exactly this stored version go out, or refuses (NotReleasable) saying why:
    it must be the newest version of its lineage, reviewed ready or approved, and its lineage never released
    before. The SHA-256 of the released text goes into the audit chain. A refusal writes nothing."""
    draft = drafting.get(session=session, draft_id=draft_id)
    newest = drafting.head(session=session, lineage_id=draft.lineage_id)
    if newest is None or newest.id != draft.id:
        raise NotReleasable(f"draft {draft_id} cannot be sent: version {newest.revision if newest else '?'} replaced it",
                            field="draft")
    item = session.scalars(select(Review).where(Review.draft_id == draft_id)).first()
    status = ReviewStatus(item.status) if item is not None else None
    if status not in RELEASABLE:
        why = WHY_NOT.get(status, str(status))
        if status == ReviewStatus.BLOCKED and item is not None:
            why += ": " + "; ".join(f.get("reason") or "" for f in item.findings)
        raise NotReleasable(f"draft {draft_id} cannot be sent: {why}", field="draft")
    earlier = session.scalars(select(Release).where(Release.lineage_id == draft.lineage_id)).first()
    if earlier is not None:
        raise Conflict(f"draft {draft_id} was already sent at {earlier.released_at:%Y-%m-%d %H:%M} UTC by "
                       f"{earlier.released_by}", field="draft")
    row = Release(id=uuid.uuid4().hex, draft_id=draft.id, lineage_id=draft.lineage_id, body_sha256=sha256(draft.body),
                  subject_sha256=sha256(draft.subject) if draft.subject else None, channel=channel, released_by=by,
                  released_at=now, subject_ref=subject_ref)
    session.add(row)
    session.flush()
    audit.record(session=session, actor=by, action="release", subject_type="draft", subject_id=draft.id, now=now,
                 versions=_versions(draft, _decision(session, draft.decision_id), item.policy_version),
                 details={"release_id": row.id, "lineage_id": draft.lineage_id, "revision": draft.revision,
                          "body_sha256": row.body_sha256, "subject_sha256": row.subject_sha256, "channel": channel,
                          "review_status": status, "for": subject_ref})
    return _release(row)
