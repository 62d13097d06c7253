"""The dashboard's figures: adoption, execution, conversion, reasons shown, approvals, feedback coverage,
champion vs challenger with confidence intervals, and alerts (missing feedback, drift, conversion drop)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cards.tables import Card
from app.feedback import service as feedback
from app.feedback.service import LiveSplit
from app.models import drift, registry
from app.models.objectives import Objectives, RealisedUplift, RealisedUpliftTables, realised_uplift
from app.models.registry import ModelQuality
from app.models.tables import Decision, ScoreRun
from app.review import service as review
from app.review.tables import Review

FEEDBACK_DAYS = 3
DRIFT_PSI = 0.2
DROP_SHARE = 0.5
STUCK_QUEUE_HOURS = 24.0  # a draft waiting longer than this for compliance is "stuck"


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of two samples of scores, on the expected sample's deciles."""
    if len(expected) < 20 or len(actual) < 20:
        return 0.0
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:
        return 0.0
    e = np.histogram(np.clip(expected, edges[0], edges[-1]), edges)[0] / len(expected)
    a = np.histogram(np.clip(actual, edges[0], edges[-1]), edges)[0] / len(actual)
    return drift.stability_index(e, a)


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


class Alert(BaseModel):
    kind: str
    message: str


class Metrics(BaseModel):
    cards: int
    shown: int
    adoption_rate: float | None
    execution_rate: float | None
    conversion_rate: float | None
    reason_display_rate: float | None
    compliance_approval_rate: float | None
    feedback_coverage: float | None
    acted_on: int
    compliance_pending: int
    ab: LiveSplit
    psi_last_two_runs: float
    alerts: list[Alert]
    # What contact really changed, per objective, from the live holdout (decisions whose KPI window is over).
    realised_uplift: list[RealisedUplift] = []
    # The same for decisions whose window is still open, measured so far: a direction before the first window closes.
    realised_uplift_so_far: list[RealisedUplift] = []
    uplift_window_days: int | None = None
    # For data scientists: each version's held-out quality over time, the champion's calibration and gain.
    model_quality: ModelQuality | None = None


def rep_alerts(*, session: Session, rep_id: str | None, now: datetime) -> list[Alert]:
    """What a rep can fix: cards they sent more than FEEDBACK_DAYS ago with no outcome recorded."""
    if rep_id is None:
        return []
    waiting = session.scalars(select(Card.id).where(Card.rep_id == rep_id, Card.status == "executed",
                                                    Card.outcome.is_(None),
                                                    Card.executed_at < now - timedelta(days=FEEDBACK_DAYS))).all()
    if not waiting:
        return []
    return [Alert(kind="feedback_missing", message=f"{len(waiting)} card{'s' if len(waiting) > 1 else ''} you sent over "
                                                   f"{FEEDBACK_DAYS} days ago {'have' if len(waiting) > 1 else 'has'} no "
                                                   "outcome: record what happened, the model learns from it")]


def queue_alerts(*, session: Session, now: datetime) -> list[Alert]:
    """What compliance can fix: drafts waiting for a decision longer than STUCK_QUEUE_HOURS."""
    waiting = session.scalars(select(Review.created_at).where(
        Review.status == review.ReviewStatus.NEEDS_APPROVAL,
        Review.created_at < now - timedelta(hours=STUCK_QUEUE_HOURS)).order_by(Review.created_at)).all()
    if not waiting:
        return []
    oldest = (now - waiting[0]).total_seconds() / 3600
    return [Alert(kind="queue_stuck", message=f"{len(waiting)} draft{'s' if len(waiting) > 1 else ''} waited over "
                                              f"{STUCK_QUEUE_HOURS:.0f} h for a decision (the oldest {oldest:.0f} h): "
                                              "reps cannot send them until you decide")]


class DriftPoint(BaseModel):
    """How far a scoring run's confidences moved from the run before it (population stability index)."""

    run_id: str
    as_of: datetime
    psi: float


def drift_over_time(session: Session, runs: int = 8) -> list[DriftPoint]:
    """PSI of each of the last `runs` finished batch runs against the one before it, oldest first."""
    latest = session.scalars(select(ScoreRun).where(ScoreRun.finished_at.is_not(None), ScoreRun.kind == "batch")
                             .order_by(ScoreRun.started_at.desc()).limit(runs + 1)).all()[::-1]
    scores = [np.array(session.scalars(select(Decision.confidence).where(Decision.run_id == r.id,
                                                                        Decision.confidence.is_not(None))).all(),
                       dtype=float) for r in latest]
    return [DriftPoint(run_id=run.id, as_of=run.as_of, psi=round(psi(before, now), 4))
            for run, before, now in zip(latest[1:], scores, scores[1:])]


def drift_between_last_runs(session: Session) -> float:
    """PSI of the confidences of the last two finished batch runs (0 until there are two)."""
    last = drift_over_time(session, runs=1)
    return last[-1].psi if last else 0.0


def compute(*, session: Session, now: datetime, objectives: Objectives | None = None) -> Metrics:
    cards = session.execute(select(Card.status, Card.executed_at, Card.outcome, Card.reject_reason, Card.draft_id,
                                   Decision.reasons, Decision.arm, Card.updated_at)
                            .join(Decision, Decision.id == Card.decision_id, isouter=True)).all()
    reviews = review.queue_counts(session=session)
    shown = [c for c in cards if c.status != "queued"]
    acted = [c for c in shown if c.status in ("adopted", "executed", "rejected")]
    adopted = [c for c in shown if c.status in ("adopted", "executed")]
    executed = [c for c in shown if c.status == "executed"]
    converted = [c for c in executed if c.outcome == "converted"]
    with_outcome = [c for c in executed if c.outcome]
    decided = reviews.get("approved", 0) + reviews.get("rejected", 0)
    alerts = []
    stale = [c for c in executed if not c.outcome and c.executed_at and c.executed_at < now - timedelta(days=FEEDBACK_DAYS)]
    if stale:
        alerts.append(Alert(kind="feedback_missing",
                            message=f"{len(stale)} executed cards have no outcome after {FEEDBACK_DAYS} days"))
    drift = drift_between_last_runs(session)
    if drift > DRIFT_PSI:
        alerts.append(Alert(kind="model_drift", message=f"confidence distribution moved: PSI {drift:.2f} between the "
                                                        f"last two runs (alert above {DRIFT_PSI})"))
    week = [c for c in with_outcome if c.executed_at and c.executed_at >= now - timedelta(days=7)]
    before = [c for c in with_outcome if c.executed_at and now - timedelta(days=14) <= c.executed_at < now - timedelta(days=7)]
    recent_rate, before_rate = _rate(sum(c.outcome == "converted" for c in week), len(week)), \
        _rate(sum(c.outcome == "converted" for c in before), len(before))
    if recent_rate is not None and before_rate and len(week) >= 20 and recent_rate < before_rate * DROP_SHARE:
        alerts.append(Alert(kind="conversion_drop", message=f"conversion {recent_rate:.0%} this week vs "
                                                            f"{before_rate:.0%} the week before"))
    alerts += queue_alerts(session=session, now=now)
    rejected = sum(c.status == "rejected" for c in shown)
    uplift = realised_uplift(session=session, objectives=objectives, now=now) if objectives else RealisedUpliftTables()
    return Metrics(
        cards=len(cards), shown=len(shown),
        adoption_rate=_rate(len(adopted), len(shown)), execution_rate=_rate(len(executed), len(adopted)),
        conversion_rate=_rate(len(converted), len(with_outcome)),
        reason_display_rate=_rate(sum(bool(c.reasons) for c in shown), len(shown)),
        compliance_approval_rate=_rate(reviews.get("approved", 0), decided),
        feedback_coverage=_rate(len(with_outcome) + rejected, len(executed) + rejected),
        acted_on=len(acted), compliance_pending=reviews.get("pending", 0),
        ab=feedback.live_split(session=session), psi_last_two_runs=round(drift, 4), alerts=alerts,
        realised_uplift=uplift.closed, realised_uplift_so_far=uplift.so_far,
        uplift_window_days=objectives.window_days if objectives else None,
        model_quality=registry.quality(session=session))
