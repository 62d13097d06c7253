"""Reviewing drafts, the compliance queue, and releasing (sending) only what may go out.

A draft is reviewed once it exists: `ready` drafts may be sent, `needs_approval` ones wait in the queue
until compliance approves (optionally with an edit) or rejects them with a reason, `blocked` ones never go
out. Every step lands in the same transaction as its audit entry. Two reviewers deciding the same item:
each names the item version they saw, and only the first decision for that version is accepted.
"""

from __future__ import annotations

import difflib
import hashlib
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import desc, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.drafting.facts import CompanyProfile, customer_fields
from app.library.templates import render
from app.review import audit
from app.review.checks import Review, Reviewer, Verdict
from app.review.validators import ReviewContext
from app.store.db import transaction
from app.store.tables import (AuditEntry, Customer, Decision, Draft, Event, Feedback, PolicySuggestion, ReviewItem,
                              TemplateVersion)

# Why compliance rejects, and which policy file a rejected wording should teach.
REASON_CODES: dict[str, str | None] = {
    "prohibited_claim": "claims", "missing_disclosure": "disclosures", "personal_data": "pii", "tone": "tone",
    "inaccurate": "faithfulness", "off_brand": None, "wrong_customer": None, "other": None,
}
RELEASABLE = {"ready", "approved"}


class ReviewError(ValueError):
    """A request that cannot be done as asked; the message names the field."""


class Conflict(Exception):
    """Someone else decided this item first (or the version given is stale)."""


class NotReleasable(Exception):
    """A send refused because the draft is not approved for release."""


def _template(session: Session, draft: Draft) -> TemplateVersion:
    return session.execute(select(TemplateVersion).where(TemplateVersion.template_id == draft.template_id,
                                                         TemplateVersion.version == draft.template_version)).scalar_one()


def review_context(profile: CompanyProfile, *, channel: str, subject: str | None, names: dict[str, str],
                   email: str | None, phone: str | None, owner_rep: str | None, product_key: str | None,
                   template_body: str | None, disclosures: list[str], facts: list[str]) -> ReviewContext:
    """What the validators may compare a text with: the approved template rendered for this recipient, its
    disclosures, the trusted facts, and the recipient's and the company's own contact details."""
    product = profile.product(product_key) if product_key else None
    rep = profile.rep(owner_rep)
    rendered = None
    if template_body is not None:
        rendered = render(template_body, {"customer": names, "product": product or profile.product(None), "rep": rep,
                                          "company": profile.company})
    first_name = "" if names["first_name"] == "there" else names["first_name"]
    return ReviewContext(
        channel=channel, subject=subject, recipient={"first_name": first_name, "email": email or "", "phone": phone or ""},
        allowed_contacts=[v for v in [*rep.values(), *profile.company.values()] if v], template_text=rendered,
        template_disclosures=list(disclosures), facts=[*facts, *([product["name"]] if product else []), *names.values()],
        product_names=profile.products, product_key=product_key or None)


def context_for(session: Session, draft: Draft, profile: CompanyProfile, customer: Customer,
                decision: Decision | None) -> ReviewContext:
    """The validators' context for a stored draft: its template version, its customer, its decision's reasons."""
    template = _template(session, draft)
    names = customer_fields(first_name=customer.first_name, last_name=customer.last_name,
                            company=(customer.attributes or {}).get("company"), segment=customer.segment,
                            industry=customer.industry)
    return review_context(profile, channel=draft.channel, subject=draft.subject, names=names, email=customer.email,
                          phone=customer.phone, owner_rep=customer.owner_rep,
                          product_key=decision.product if decision else (template.products or [None])[0],
                          template_body=template.body, disclosures=template.disclosures or [],
                          facts=[r["text"] for r in (decision.reasons if decision else [])])


def _decision_of(session: Session, draft: Draft) -> Decision | None:
    return session.get(Decision, draft.decision_id) if draft.decision_id else None


def _versions(draft: Draft, decision: Decision | None, review_policy: str | None) -> dict[str, Any]:
    return {"model": decision.model_version if decision else None, "contact_policy": decision.policy_version if decision else None,
            "prompt": draft.prompt_version, "template": f"{draft.template_id}@{draft.template_version}",
            "llm": draft.model, "review_policy": review_policy}


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


def check_edit(factory: sessionmaker[Session], reviewer: Reviewer, profile: CompanyProfile, draft_id: str,
               text: str) -> Review:
    """Someone's edit of a draft through the same validators, against the same template and facts."""
    with factory() as session:
        draft = session.get(Draft, draft_id)
        customer = session.get(Customer, draft.customer_id)
        decision = _decision_of(session, draft)
        context = context_for(session, draft, profile, customer, decision)
    return reviewer.check(text, context)


def review_draft(factory: sessionmaker[Session], reviewer: Reviewer, profile: CompanyProfile, draft_id: str, *,
                 now: datetime, actor: str = "system") -> Review:
    """Run the validators on a draft, route it, queue it if it needs approval, and audit all of it."""
    with factory() as session:
        draft = session.get(Draft, draft_id)
        if draft is None:
            raise ReviewError(f"draft {draft_id!r} not found")
        customer = session.get(Customer, draft.customer_id)
        decision = _decision_of(session, draft)
        template = _template(session, draft)
        context = context_for(session, draft, profile, customer, decision)
        sources = _sources(session, customer, decision, now)
    sensitive = reviewer.sensitivity(customer_sensitive=customer.sensitive, industry=customer.industry,
                                     template_sensitive=template.sensitive)
    review = reviewer.check(draft.body, context, sensitive=sensitive,
                            confidence=decision.confidence if decision else None)
    findings = [f.model_dump() for f in review.findings if not f.passed]
    with transaction(factory) as session:
        row = session.get(Draft, draft_id)
        row.review_status, row.policy_version, row.findings = review.verdict.value, review.policy_version, findings
        versions = _versions(row, decision, review.policy_version)
        first_review = session.scalars(select(AuditEntry.seq).where(AuditEntry.subject_id == row.id,
                                                                    AuditEntry.action == "draft")).first() is None
        if decision is not None and first_review:
            audit.record(session, actor=actor, action="recommendation", subject_type="decision",
                         subject_id=str(decision.id), now=now, versions=versions,
                         details={"customer_id": decision.customer_id, "channel": decision.channel,
                                  "slot": decision.slot_local, "confidence": decision.confidence,
                                  "reasons": [r["text"] for r in decision.reasons], "method": decision.method})
        if first_review:  # a cached draft reviewed again (say, under a new policy) is not a new draft
            audit.record(session, actor=actor, action="draft", subject_type="draft", subject_id=row.id, now=now,
                         versions=versions, details={"customer_id": row.customer_id, "mode": row.mode,
                                                     "fallback_reason": row.fallback_reason,
                                                     "body_sha256": hashlib.sha256(row.body.encode()).hexdigest()})
        audit.record(session, actor=actor, action="review", subject_type="draft", subject_id=row.id, now=now,
                     versions=versions, details={"verdict": review.verdict.value, "routing": review.routing,
                                                 "failed": [f["validator"] for f in findings],
                                                 "latency_ms": review.latency_ms})
        if review.verdict == Verdict.NEEDS_APPROVAL:
            existing = session.scalars(select(ReviewItem).where(ReviewItem.draft_id == row.id)).first()
            if existing is None:
                item = ReviewItem(id=uuid.uuid4().hex[:12], draft_id=row.id, customer_id=row.customer_id,
                                  template_id=row.template_id, status="pending", verdict=review.verdict.value,
                                  routing=review.routing, findings=findings, sources=sources,
                                  policy_version=review.policy_version, created_at=now, version=1)
                session.add(item)
                session.flush()
                audit.record(session, actor=actor, action="queued", subject_type="review_item", subject_id=item.id,
                             now=now, versions=versions, details={"draft_id": row.id, "routing": review.routing})
    return review


def queue(factory: sessionmaker[Session], status: str | None = "pending", limit: int = 200) -> list[dict[str, Any]]:
    """Queue items with everything a reviewer needs: draft, template, findings with spans, reasons, sources."""
    with factory() as session:
        statement = select(ReviewItem, Draft).join(Draft, Draft.id == ReviewItem.draft_id)
        if status:
            statement = statement.where(ReviewItem.status == status)
        rows = session.execute(statement.order_by(ReviewItem.created_at).limit(limit)).all()
        out = []
        for item, draft in rows:
            template = _template(session, draft)
            out.append({"id": item.id, "version": item.version, "status": item.status, "created_at": item.created_at.isoformat(),
                        "customer_id": item.customer_id, "draft_id": draft.id, "channel": draft.channel,
                        "subject": draft.subject, "body": draft.body, "mode": draft.mode, "model": draft.model,
                        "template": {"id": template.template_id, "version": template.version, "body": template.body},
                        "routing": item.routing, "findings": item.findings, "sources": item.sources,
                        "policy_version": item.policy_version, "decided_by": item.decided_by,
                        "reason_code": item.reason_code, "comment": item.comment})
        return out


def _decide(session: Session, item_id: str, version: int, values: dict[str, Any]) -> ReviewItem:
    changed = session.execute(update(ReviewItem).where(ReviewItem.id == item_id, ReviewItem.version == version,
                                                       ReviewItem.status == "pending")
                              .values(version=ReviewItem.version + 1, **values))
    item = session.get(ReviewItem, item_id)
    if item is None:
        raise ReviewError(f"review item {item_id!r} not found")
    if changed.rowcount != 1:
        session.refresh(item)
        who = f" by {item.decided_by}" if item.decided_by else ""
        raise Conflict(f"review item {item_id} was already {item.status}{who} (you saw version {version}, "
                       f"it is at version {item.version}): reload it")
    session.refresh(item)
    return item


def approve(factory: sessionmaker[Session], reviewer: Reviewer, profile: CompanyProfile, item_id: str, *,
            version: int, by: str, now: datetime, edited_body: str | None = None, comment: str | None = None) -> ReviewItem:
    """Approve, or edit and approve. An edit is checked again: what is blocked cannot be approved. Text equal
    to the draft is no edit."""
    if edited_body is not None:
        if not edited_body.strip():
            raise ReviewError("edited_body: must not be empty")
        with factory() as session:
            item = session.get(ReviewItem, item_id)
            if item is None:
                raise ReviewError(f"review item {item_id!r} not found")
            if edited_body == session.get(Draft, item.draft_id).body:
                edited_body = None
    if edited_body is not None:
        recheck = check_edit(factory, reviewer, profile, item.draft_id, edited_body)
        if recheck.verdict == Verdict.BLOCKED:
            raise ReviewError("edited_body: the edit is blocked by the guardrails: " + "; ".join(recheck.routing))
    with transaction(factory) as session:
        item = _decide(session, item_id, version, {"status": "approved", "decided_by": by, "decided_at": now,
                                                   "comment": comment, "edited_body": edited_body})
        draft = session.get(Draft, item.draft_id)
        decision = _decision_of(session, draft)
        versions = _versions(draft, decision, item.policy_version)
        if edited_body is not None:
            diff = "".join(difflib.unified_diff(draft.body.splitlines(True), edited_body.splitlines(True),
                                                "draft", "edited"))
            audit.record(session, actor=by, action="edit", subject_type="draft", subject_id=draft.id, now=now,
                         versions=versions, details={"diff": diff})
            draft.body = edited_body
        draft.review_status = "approved"
        audit.record(session, actor=by, action="approve", subject_type="review_item", subject_id=item.id, now=now,
                     versions=versions, details={"draft_id": draft.id, "comment": comment, "edited": edited_body is not None})
        return item


def reject(factory: sessionmaker[Session], item_id: str, *, version: int, by: str, reason_code: str, now: datetime,
           comment: str | None = None) -> ReviewItem:
    """Reject with a reason: the template ranks lower for similar customers, the case is kept as a labelled
    negative and for the next training run, and a policy example is suggested."""
    if reason_code not in REASON_CODES:
        raise ReviewError(f"reason_code: {reason_code!r} is not one of {', '.join(REASON_CODES)}")
    with transaction(factory) as session:
        item = _decide(session, item_id, version, {"status": "rejected", "decided_by": by, "decided_at": now,
                                                   "reason_code": reason_code, "comment": comment})
        draft = session.get(Draft, item.draft_id)
        draft.review_status = "rejected"
        customer = session.get(Customer, draft.customer_id)
        session.add(Feedback(kind="compliance_rejection", customer_id=draft.customer_id, decision_id=draft.decision_id,
                             draft_id=draft.id, template_id=draft.template_id, segment=customer.segment if customer else None,
                             channel=draft.channel, reason_code=reason_code, comment=comment, text=draft.body,
                             created_by=by, created_at=now))
        category = REASON_CODES[reason_code]
        if category:
            flagged = next((s["text"] for f in item.findings if f.get("validator") == category for s in f.get("spans", [])),
                           None)
            session.add(PolicySuggestion(category=category, example=(flagged or draft.body)[:500], source_item=item.id,
                                         created_at=now))
        decision = _decision_of(session, draft)
        audit.record(session, actor=by, action="reject", subject_type="review_item", subject_id=item.id, now=now,
                     versions=_versions(draft, decision, item.policy_version),
                     details={"draft_id": draft.id, "reason_code": reason_code, "comment": comment})
        return item


def send(factory: sessionmaker[Session], draft_id: str, *, by: str, now: datetime) -> Draft:
    """Release a draft. Refused unless it passed review or compliance approved it; sending twice is a no-op.
    A refusal is audited too."""
    with transaction(factory) as session:
        draft = session.get(Draft, draft_id)
        if draft is None:
            raise ReviewError(f"draft {draft_id!r} not found")
        if draft.sent_at is not None:
            return draft
        if draft.review_status in RELEASABLE:
            draft.sent_at = now
            decision = _decision_of(session, draft)
            audit.record(session, actor=by, action="send", subject_type="draft", subject_id=draft.id, now=now,
                         versions=_versions(draft, decision, draft.policy_version),
                         details={"channel": draft.channel, "review_status": draft.review_status})
            return draft
        status = draft.review_status
        why = {None: "it has not been reviewed", "needs_approval": "compliance has not approved it yet",
               "blocked": "the guardrails blocked it: " + "; ".join(f.get("reason") or "" for f in draft.findings),
               "rejected": "compliance rejected it"}.get(status, str(status))
        audit.record(session, actor=by, action="send_refused", subject_type="draft", subject_id=draft.id, now=now,
                     details={"review_status": status})
    raise NotReleasable(f"draft {draft_id} cannot be sent: {why}")
