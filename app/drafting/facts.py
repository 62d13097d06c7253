"""What the model may use: the customer's facts, the product, the rep and the company, plus quoted customer text.

Trusted facts come from our own records (names, product, reasons computed by the model). Customer free
text (service conversations) is untrusted: it is passed as quoted data and never counts as a source of
claims, so "offer 90% off" written by a customer cannot become an offer.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.data.tables import Customer, Event

CONVERSATION_WINDOW = timedelta(days=30)
MAX_CONVERSATIONS = 3
MAX_QUOTE_CHARS = 500


class CompanyProfile(BaseModel):
    company: dict[str, str]
    products: dict[str, str]
    reps: dict[str, dict[str, str]] = Field(default_factory=dict)
    version: str = ""

    def rep(self, rep_id: str | None) -> dict[str, str]:
        return self.reps.get(rep_id or "", self.reps.get("default", {"name": self.company["name"],
                                                                     "first_name": self.company["name"]}))

    @property
    def domains(self) -> list[str]:
        """The hosts our links and addresses live on: the website's and every company or rep email's domain."""
        from urllib.parse import urlsplit

        website = self.company.get("website", "")
        hosts = {urlsplit(website if "//" in website else f"//{website}").hostname or ""}
        addresses = [self.company.get("support_email", ""), *(r.get("email", "") for r in self.reps.values())]
        hosts |= {a.rsplit("@", 1)[1] for a in addresses if "@" in a}
        return sorted(h.lower().removeprefix("www.") for h in hosts if h)

    def product(self, key: str | None) -> dict[str, str]:
        if not key:  # a decision without a product: the scripts speak of the range
            return {"key": "", "name": "our products"}
        return {"key": key, "name": self.products.get(key, key.replace("_", " ").title())}


@lru_cache(maxsize=8)
def _load_profile(path: Path, mtime: float) -> CompanyProfile:
    raw = path.read_bytes()
    data = yaml.safe_load(raw) or {}
    return CompanyProfile(**data, version=hashlib.sha256(raw).hexdigest()[:8])


def load_profile(path: Path) -> CompanyProfile:
    """The company profile file, re-read when it changes; its hash is its version."""
    if not path.is_file():
        raise FileNotFoundError(f"company profile {path} not found (set COMPANY_PROFILE_FILE)")
    return _load_profile(path, path.stat().st_mtime)


class Quote(BaseModel):
    """Something the customer wrote: data to understand, never instructions to follow."""

    when: str
    intent: str | None
    text: str


class DraftFacts(BaseModel):
    """Everything the draft may be built from. `template_context` fills the template's placeholders."""

    customer: dict[str, str]
    product: dict[str, str]
    rep: dict[str, str]
    company: dict[str, str]
    channel: str
    reasons: list[str]
    quotes: list[Quote] = Field(default_factory=list)
    # Identifiers that must never reach the model: masked before the call, restored after.
    private: dict[str, str] = Field(default_factory=dict)

    @property
    def template_context(self) -> dict[str, dict[str, str]]:
        return {"customer": self.customer, "product": self.product, "rep": self.rep, "company": self.company}

    def fingerprint(self) -> str:
        """Stable hash of everything that shapes the draft (the cache key's customer part)."""
        payload = self.model_dump(mode="json")
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def customer_fields(*, first_name: Any, last_name: Any, company: Any = None, segment: Any = None,
                    industry: Any = None) -> dict[str, str]:
    """The values behind `{{ customer.* }}`: every field a string, "there" when the first name is unknown."""
    return {"first_name": _text(first_name) or "there", "last_name": _text(last_name), "company": _text(company),
            "segment": _text(segment), "industry": _text(industry)}


def facts_for(*, session: Session, customer_id: str, product: str | None, channel: str, reasons: list[str],
              profile: CompanyProfile, now: datetime) -> DraftFacts:
    """The facts for one customer as of `now`: record fields, the rep, and recent conversations quoted."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise LookupError(f"customer {customer_id!r} not found")
    attributes = customer.attributes or {}
    rows = session.scalars(
        select(Event).where(Event.customer_id == customer_id, Event.type == "service_conversation",
                            Event.occurred_at <= now, Event.occurred_at >= now - CONVERSATION_WINDOW,
                            Event.text.is_not(None))
        .order_by(Event.occurred_at.desc()).limit(MAX_CONVERSATIONS))
    quotes = [Quote(when=f"{max(0, (now - e.occurred_at).days)} days ago", intent=e.intent,
                    text=e.text[:MAX_QUOTE_CHARS]) for e in rows]
    private = {"email": _text(customer.email), "phone": _text(customer.phone),
               "last_name": _text(customer.last_name)}
    for key in ("account_number", "account_id", "iban", "card_number"):
        if attributes.get(key):
            private[key] = _text(attributes[key])
    return DraftFacts(
        customer=customer_fields(first_name=customer.first_name, last_name=customer.last_name,
                                 company=attributes.get("company"), segment=customer.segment, industry=customer.industry),
        product=profile.product(product), rep=profile.rep(customer.owner_rep), company=dict(profile.company),
        channel=channel, reasons=list(reasons), quotes=quotes, private={k: v for k, v in private.items() if v})
