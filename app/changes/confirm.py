"""Confirming an applied change to the customer: a message from an approved template (changes.yaml
`confirmations`, stage change_confirmation) to the old and the new contact point when a contact point changed
(the old one is how the real customer hears of a takeover), else to the contact on file. Each message is a draft
like any other: reviewed by the guardrails, released through the one release gate when its review is `ready`,
or waiting in the compliance queue when it needs approval. Nothing here sends: the release is what a delivery
integration picks up.

`plan` reads and renders (before the write), the caller runs the review's `assess` on each planned draft, and
`record` stores drafts, reviews, releases and the confirmations in the caller's unit of work.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.changes.tables import AppliedChange, ChangeConfirmation, ChangeRequestRow
from app.data.tables import Customer
from app.drafting import compose
from app.drafting import service as drafting
from app.drafting.facts import CompanyProfile, facts_for
from app.drafting.service import DraftMode, PreparedDraft
from app.library import service as library
from app.library.templates import render
from app.review import service as review
from app.review.service import RELEASABLE, Assessment

CONTACT_FIELDS = {"email": "email", "phone": "sms"}  # the customer field a change wrote -> the channel to it
ACTOR = "change-confirmations"


@dataclass(frozen=True)
class PlannedConfirmation:
    contact: str  # old | new | on_file
    channel: str
    to: str
    draft: PreparedDraft
    values: dict[str, dict[str, str]]  # the template's own placeholders (`change`), for rendering and review


def release_ref(request_id: str) -> str:
    """What the release records it was for (64 characters at most)."""
    ref = f"change:{request_id}"
    return ref if len(ref) <= 64 else f"change:{hashlib.sha256(request_id.encode()).hexdigest()[:57]}"


def recipients(session: Session, row: ChangeRequestRow, customer: Customer) -> list[tuple[str, str, str]]:
    """(contact, channel, address): both sides of every contact point the request changed, else the one on file."""
    found = []
    for applied in session.scalars(select(AppliedChange).where(AppliedChange.request_id == row.id,
                                                               AppliedChange.reversed_at.is_(None))):
        channel = CONTACT_FIELDS.get(applied.field)
        if channel:
            found += [(side, channel, value) for side, value in (("old", applied.before), ("new", applied.after))
                      if value]
    if not found:
        if customer.email:
            found.append(("on_file", "email", customer.email))
        elif customer.phone:
            found.append(("on_file", "sms", customer.phone))
    unique: dict[tuple[str, str], tuple[str, str, str]] = {}
    for contact, channel, address in found:
        unique.setdefault((channel, address.lower()), (contact, channel, address))
    return list(unique.values())


def plan(*, session: Session, request_id: str, templates: dict[str, str], profile: CompanyProfile,
         now: datetime) -> list[PlannedConfirmation]:
    """The confirmations an applied, not yet confirmed request gets, rendered from the live approved template
    of each channel. Reads only."""
    row = session.get(ChangeRequestRow, request_id)
    if row is None or row.status != "applied" or row.confirmed_at is not None:
        return []
    customer = session.get(Customer, row.customer_id)
    told = " ".join(dict.fromkeys(c.get("rules", {}).get("told", "") for c in row.triage["changes"]
                                  if c.get("rules", {}).get("told")))
    # The template's values do not depend on the channel: read once for every recipient.
    context = facts_for(session=session, customer_id=customer.id, product=None, channel=row.channel, reasons=[],
                        profile=profile, now=now).template_context
    values = {"change": {"told": told}}
    planned = []
    for contact, channel, address in recipients(session, row, customer):
        live = library.live_versions(session=session, template_id=templates[channel]) if channel in templates else []
        if not live:  # no approved confirmation template for this channel: nothing is sent unreviewed instead
            continue
        spec = live[0]
        subject, body = compose.split_subject(render(spec.body, {**context, **values}))
        planned.append(PlannedConfirmation(contact, channel, address, values=values, draft=PreparedDraft(
            customer_id=customer.id, decision_id=None, channel=channel, template_id=spec.id,
            template_version=spec.version, prompt_version=None, profile_version=profile.version,
            mode=DraftMode.TEMPLATE_ONLY, author="template", model=None, subject=subject, body=body,
            cache_key=hashlib.sha256(f"change-confirmation:{row.id}:{contact}:{channel}".encode()).hexdigest())))
    return planned


def record(*, session: Session, request_id: str, planned: list[tuple[PlannedConfirmation, Assessment]],
           now: datetime) -> int:
    """Store each confirmation's draft and review, and release the ones the review lets go; once per request
    (a second run finds it confirmed and writes nothing). Returns how many were stored."""
    row = session.get(ChangeRequestRow, request_id)
    if row is None or row.status != "applied" or row.confirmed_at is not None:
        return 0
    row.confirmed_at = now
    if not planned:
        audit.record(session=session, actor=ACTOR, action="change_not_confirmed", subject_type="change_request",
                     subject_id=request_id, now=now, details={"why": "no contact point on file, or no approved "
                                                                     "confirmation template for its channel"})
    for confirmation, assessment in planned:
        saved = drafting.save(session=session, prepared=confirmation.draft, now=now)
        result = review.record(session=session, draft=saved, assessment=assessment, actor=ACTOR, now=now)
        if result.status in RELEASABLE:
            review.release(session=session, draft_id=saved.id, by=ACTOR, channel=confirmation.channel, now=now,
                           subject_ref=release_ref(request_id))
        session.add(ChangeConfirmation(request_id=request_id, draft_id=saved.id, channel=confirmation.channel,
                                       contact=confirmation.contact, to_address=confirmation.to, created_at=now))
    return len(planned)
