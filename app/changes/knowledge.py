"""Knowledge-based verification: questions generated from the customer's own history, which someone who only
took over their email or phone would not know, each with a few plausible wrong options.

Questions come only from facts the store holds (the product bought most recently, how they last reached
support, the year the account was opened, the seats on the subscription); a customer whose history supports
fewer than MIN_QUESTIONS gets none, and a person verifies instead. The right answers are kept only as salted
hashes, so the stored challenge does not tell whoever reads it what to answer.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import desc, select
from sqlalchemy.orm import Session

from app.data.tables import Customer, Event
from app.domain import EventType

MIN_QUESTIONS = 2
MAX_QUESTIONS = 3
CHANNEL_WORDS = {"chat": "Chat", "email": "Email", "call": "Phone call", "sms": "Text message"}


def _hash(salt: str, answer: str) -> str:
    return hashlib.sha256(f"{salt}:{' '.join(answer.lower().split())}".encode()).hexdigest()


def _options(right: str, wrong: list[str], rng: random.Random, count: int = 4) -> list[str]:
    others = [w for w in dict.fromkeys(wrong) if w != right]
    options = [right, *rng.sample(others, min(count - 1, len(others)))]
    rng.shuffle(options)
    return options


def _facts(session: Session, customer: Customer, products: dict[str, str], now: datetime,
           rng: random.Random) -> list[tuple[str, str, list[str]]]:
    """(question, right answer, options) for every fact the history holds, in a fixed order."""
    found = []
    bought = session.scalar(select(Event.product).where(
        Event.customer_id == customer.id, Event.type == EventType.PURCHASE, Event.product.is_not(None),
        Event.occurred_at <= now).order_by(desc(Event.occurred_at)).limit(1))
    if bought and len(products) >= 3:
        right = products.get(bought, bought)
        found.append(("Which of our products did you buy most recently?", right,
                      _options(right, list(products.values()), rng)))
    channel = session.scalar(select(Event.channel).where(
        Event.customer_id == customer.id, Event.type == EventType.SERVICE_CONVERSATION, Event.channel.is_not(None),
        Event.occurred_at <= now).order_by(desc(Event.occurred_at)).limit(1))
    if channel in CHANNEL_WORDS:
        right = CHANNEL_WORDS[channel]
        found.append(("How did you last get in touch with our support team?", right,
                      _options(right, list(CHANNEL_WORDS.values()), rng)))
    if customer.created_at is not None:
        year = customer.created_at.year
        found.append(("In which year did you open your account with us?", str(year),
                      _options(str(year), [str(year + d) for d in (-2, -1, 1, 2) if year + d <= now.year], rng)))
    seats = (customer.attributes or {}).get("seats")
    if isinstance(seats, int) and seats > 0:
        found.append(("How many seats does your subscription have?", str(seats),
                      _options(str(seats), [str(max(1, seats + d)) for d in (-5, -2, 2, 5, 10)], rng)))
    return found


def challenge(*, session: Session, customer: Customer, products: dict[str, str], now: datetime,
              seed: int | None = None) -> dict[str, Any] | None:
    """A stored challenge (questions with options, salted answer hashes), or None when the customer's history
    holds too little to ask about."""
    rng = random.Random(seed if seed is not None else secrets.randbits(64))
    facts = _facts(session, customer, products, now, rng)
    if len(facts) < MIN_QUESTIONS:
        return None
    asked = rng.sample(facts, min(MAX_QUESTIONS, len(facts)))
    salt = secrets.token_hex(8)
    return {"salt": salt, "issued_at": now.isoformat(),
            "questions": [{"id": f"q{n}", "text": text, "options": options, "answer": _hash(salt, right)}
                          for n, (text, right, options) in enumerate(asked, start=1)]}


def shown(stored: dict[str, Any]) -> list[dict[str, Any]]:
    """The questions as the customer sees them: no answers."""
    return [{"id": q["id"], "text": q["text"], "options": q["options"]} for q in stored["questions"]]


def unanswered(stored: dict[str, Any], answers: dict[str, str]) -> list[str]:
    return [q["id"] for q in stored["questions"] if not str(answers.get(q["id"], "")).strip()]


def passed(stored: dict[str, Any], answers: dict[str, str]) -> bool:
    """Every question answered right (case and spacing aside)."""
    return all(_hash(stored["salt"], str(answers.get(q["id"], ""))) == q["answer"] for q in stored["questions"])
