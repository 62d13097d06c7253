"""`outreach review check`: past or proposed messages through the current policy, one verdict per line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from app.domain import Channel, first_problem
from app.drafting.facts import CompanyProfile, customer_fields
from app.library import service as library
from app.review.checks import Reviewer
from app.review.service import review_context
from app.review.validators import ReviewContext


class MessageCustomer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    industry: str | None = None
    sensitive: bool = False
    owner_rep: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore", use_enum_values=True)

    id: str = Field(min_length=1, max_length=200)
    channel: Channel
    text: str = Field(min_length=1, max_length=20_000)
    subject: str | None = None
    customer: MessageCustomer = Field(default_factory=MessageCustomer)
    template_id: str | None = None
    product: str | None = None
    facts: list[str] = Field(default_factory=list)


def context_for_message(message: Message, profile: CompanyProfile, session: Session | None
                        ) -> tuple[ReviewContext, bool]:
    """The validators' context for a message: its template (when named and known) rendered for the customer."""
    spec = None
    if message.template_id:
        specs = library.live_versions(session=session, template_id=message.template_id) if session is not None else []
        if not specs:
            raise LookupError(f"template_id: {message.template_id!r} has no approved version in the store")
        spec = specs[0]
    c = message.customer
    context = review_context(
        profile, channel=message.channel, subject=message.subject,
        names=customer_fields(first_name=c.first_name, last_name=c.last_name, industry=c.industry),
        email=c.email, phone=c.phone, owner_rep=c.owner_rep,
        product_key=message.product or (spec.products[0] if spec else None),
        template_body=spec.body if spec else None, disclosures=spec.disclosures if spec else [], facts=message.facts)
    return context, bool(spec and spec.sensitive)


def check_lines(lines: Iterable[str], reviewer: Reviewer, *, session: Session | None,
                profile: CompanyProfile) -> Iterator[dict[str, Any]]:
    """One result per non-empty line: the verdict and failed findings, or the error naming the field."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if line.startswith("\u0000"):
            yield {"line": number, "error": "not UTF-8 text (binary data?)"}
            continue
        try:
            message = Message.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            yield {"line": number, "error": f"not valid JSON ({exc.msg} at character {exc.pos})"}
            continue
        except ValidationError as exc:
            raw_id = None
            try:
                raw_id = json.loads(line).get("id")
            except (AttributeError, json.JSONDecodeError):
                pass
            yield {"line": number, "id": raw_id, "error": first_problem(exc)}
            continue
        try:
            context, template_sensitive = context_for_message(message, profile, session)
        except LookupError as exc:
            yield {"line": number, "id": message.id, "error": str(exc)}
            continue
        sensitive = reviewer.sensitivity(customer_sensitive=message.customer.sensitive,
                                         industry=message.customer.industry, template_sensitive=template_sensitive)
        review = reviewer.check(message.text, context, sensitive=sensitive)
        yield {"id": message.id, "verdict": review.verdict.value, "routing": review.routing,
               "findings": [f.model_dump(exclude={"passed"}) for f in review.failed],
               "policy_version": review.policy_version, "latency_ms": review.latency_ms}
