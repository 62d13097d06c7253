"""Feedback: what people told the system and what happened, kept as labels.

A rep's rejection (with a reason from a list) feeds the contact policy's cooldown; a compliance rejection
lowers the template for similar customers and is kept as a labelled negative; an outcome becomes an
outreach attempt the next training run learns from, and, with the A/B arm that recommended it, the live
champion / challenger split.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum

import pandas as pd
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.data.history import record_attempt
from app.domain import Outcome, OutreachRecord
from app.feedback.tables import Feedback


class FeedbackKind(StrEnum):
    REP_REJECTION = "rep_rejection"
    COMPLIANCE_REJECTION = "compliance_rejection"
    OUTCOME = "outcome"


class ArmResult(BaseModel):
    n: int
    converted: int
    rate: float | None
    ci95: tuple[float, float]


class LiveSplit(BaseModel):
    """Conversion of contacts with a recorded outcome, per A/B arm, with 95 % Wilson intervals."""

    champion: ArmResult
    challenger: ArmResult


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson interval of a rate: honest at small n, unlike the normal approximation."""
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


def record_rep_rejection(*, session: Session, card_id: str, customer_id: str, decision_id: int | None,
                         draft_id: str | None, template_id: str | None, segment: str | None, reason: str,
                         note: str | None, by: str, now: datetime) -> None:
    session.add(Feedback(kind=FeedbackKind.REP_REJECTION, card_id=card_id, customer_id=customer_id,
                         decision_id=decision_id, draft_id=draft_id, template_id=template_id, segment=segment,
                         reason_code=reason, comment=note, created_by=by, created_at=now))


def record_compliance_rejection(*, session: Session, customer_id: str, decision_id: int | None, draft_id: str,
                                template_id: str, segment: str | None, channel: str, reason_code: str,
                                comment: str | None, text: str, by: str, now: datetime) -> None:
    session.add(Feedback(kind=FeedbackKind.COMPLIANCE_REJECTION, customer_id=customer_id, decision_id=decision_id,
                         draft_id=draft_id, template_id=template_id, segment=segment, channel=channel,
                         reason_code=reason_code, comment=comment, text=text, created_by=by, created_at=now))


class OutcomeLabel(BaseModel):
    """The outcome of one executed card, with what recommended it."""

    card_id: str
    customer_id: str
    decision_id: int | None
    draft_id: str | None
    template_id: str | None
    channel: str
    attempted_at: datetime
    outcome: Outcome
    value: float | None
    arm: str | None
    model_version: str | None
    product: str | None
    rep_id: str | None


def record_outcome(*, session: Session, label: OutcomeLabel, by: str, now: datetime) -> None:
    """The label (one per card; a correction replaces it) and the outreach attempt training learns from."""
    row = session.scalars(select(Feedback).where(Feedback.kind == FeedbackKind.OUTCOME,
                                                 Feedback.card_id == label.card_id)).first()
    if row is None:
        row = Feedback(kind=FeedbackKind.OUTCOME, card_id=label.card_id)
        session.add(row)
    row.customer_id, row.decision_id, row.draft_id = label.customer_id, label.decision_id, label.draft_id
    row.template_id, row.channel, row.outcome, row.value = label.template_id, label.channel, label.outcome, label.value
    row.arm, row.model_version, row.created_by, row.created_at = label.arm, label.model_version, by, now
    record_attempt(session=session, record=OutreachRecord(
        id=f"card-{label.card_id}", customer_id=label.customer_id, attempted_at=label.attempted_at,
        channel=label.channel, outcome=label.outcome, template_id=label.template_id, product=label.product,
        rep_id=label.rep_id, value=label.value, attributes={"card": label.card_id, "arm": label.arm}))  # TRACE_ATTRIBUTES


def live_split(*, session: Session) -> LiveSplit:
    rows = session.execute(select(Feedback.arm, Feedback.outcome).where(Feedback.kind == FeedbackKind.OUTCOME)).all()
    arms = {}
    for arm in ("champion", "challenger"):
        outcomes = [o for a, o in rows if a == arm]
        wins = sum(o == Outcome.CONVERTED for o in outcomes)
        arms[arm] = ArmResult(n=len(outcomes), converted=wins, rate=round(wins / len(outcomes), 4) if outcomes else None,
                              ci95=wilson(wins, len(outcomes)))
    return LiveSplit(**arms)


def rep_rejections(*, session: Session, customer_ids: list[str]) -> pd.DataFrame:
    """Reps' rejections of recommendations (customer_id, rejected_at): the contact policy's cooldown input."""
    rows = session.execute(select(Feedback.customer_id, Feedback.created_at)
                           .where(Feedback.kind == FeedbackKind.REP_REJECTION,
                                  Feedback.customer_id.in_(customer_ids))).all()
    return pd.DataFrame({"customer_id": [r[0] for r in rows],
                         "rejected_at": pd.to_datetime([r[1] for r in rows], utc=True)})


def compliance_rejections_by_template(*, session: Session, template_ids: list[str], segment: str | None
                                      ) -> dict[str, int]:
    statement = (select(Feedback.template_id, func.count())
                 .where(Feedback.kind == FeedbackKind.COMPLIANCE_REJECTION, Feedback.template_id.in_(template_ids))
                 .group_by(Feedback.template_id))
    if segment is not None:
        statement = statement.where(Feedback.segment == segment)
    return {tid: int(n) for tid, n in session.execute(statement)}
