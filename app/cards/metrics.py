"""The dashboard's figures: adoption, execution, conversion, reasons shown, approvals, feedback coverage,
champion vs challenger with confidence intervals, and alerts (missing feedback, drift, conversion drop)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.store.tables import Card, Decision, ReviewItem, ScoreRun

FEEDBACK_DAYS = 3
DRIFT_PSI = 0.2
DROP_SHARE = 0.5


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson interval of a rate: honest at small n, unlike the normal approximation."""
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of two samples of scores, on the expected sample's deciles."""
    if len(expected) < 20 or len(actual) < 20:
        return 0.0
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:
        return 0.0
    e = np.histogram(np.clip(expected, edges[0], edges[-1]), edges)[0] / len(expected)
    a = np.histogram(np.clip(actual, edges[0], edges[-1]), edges)[0] / len(actual)
    e, a = np.clip(e, 1e-4, None), np.clip(a, 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def compute(factory: sessionmaker[Session], *, now: datetime) -> dict[str, Any]:
    with factory() as session:
        cards = session.execute(select(Card.status, Card.executed_at, Card.outcome, Card.reject_reason, Card.draft_id,
                                       Decision.reasons, Decision.arm, Card.updated_at)
                                .join(Decision, Decision.id == Card.decision_id, isouter=True)).all()
        reviews = session.execute(select(ReviewItem.status)).scalars().all()
        runs = session.scalars(select(ScoreRun).where(ScoreRun.finished_at.is_not(None), ScoreRun.id.like("run-%"))
                               .order_by(ScoreRun.started_at.desc()).limit(2)).all()
        scores = [np.array(session.scalars(select(Decision.confidence).where(Decision.run_id == r.id,
                                                                            Decision.confidence.is_not(None))).all(),
                           dtype=float) for r in runs]
    shown = [c for c in cards if c.status != "queued"]
    acted = [c for c in shown if c.status in ("adopted", "executed", "rejected")]
    adopted = [c for c in shown if c.status in ("adopted", "executed")]
    executed = [c for c in shown if c.status == "executed"]
    converted = [c for c in executed if c.outcome == "converted"]
    with_outcome = [c for c in executed if c.outcome]
    decided = [r for r in reviews if r in ("approved", "rejected")]
    arms = {}
    for arm in ("champion", "challenger"):
        rows = [c for c in executed if c.arm == arm and c.outcome]
        wins = sum(c.outcome == "converted" for c in rows)
        arms[arm] = {"executed_with_outcome": len(rows), "converted": wins, "rate": _rate(wins, len(rows)),
                     "ci95": wilson(wins, len(rows))}
    alerts = []
    stale = [c for c in executed if not c.outcome and c.executed_at and c.executed_at < now - timedelta(days=FEEDBACK_DAYS)]
    if stale:
        alerts.append({"kind": "feedback_missing", "message": f"{len(stale)} executed cards have no outcome after "
                                                              f"{FEEDBACK_DAYS} days"})
    drift = psi(scores[1], scores[0]) if len(scores) == 2 else 0.0
    if drift > DRIFT_PSI:
        alerts.append({"kind": "model_drift", "message": f"confidence distribution moved: PSI {drift:.2f} between the "
                                                         f"last two runs (alert above {DRIFT_PSI})"})
    week = [c for c in with_outcome if c.executed_at and c.executed_at >= now - timedelta(days=7)]
    before = [c for c in with_outcome if c.executed_at and now - timedelta(days=14) <= c.executed_at < now - timedelta(days=7)]
    recent_rate, before_rate = _rate(sum(c.outcome == "converted" for c in week), len(week)), \
        _rate(sum(c.outcome == "converted" for c in before), len(before))
    if recent_rate is not None and before_rate and len(week) >= 20 and recent_rate < before_rate * DROP_SHARE:
        alerts.append({"kind": "conversion_drop", "message": f"conversion {recent_rate:.0%} this week vs {before_rate:.0%} "
                                                             "the week before"})
    return {
        "cards": len(cards), "shown": len(shown),
        "adoption_rate": _rate(len(adopted), len(shown)), "execution_rate": _rate(len(executed), len(adopted)),
        "conversion_rate": _rate(len(converted), len(with_outcome)),
        "reason_display_rate": _rate(sum(bool(c.reasons) for c in shown), len(shown)),
        "compliance_approval_rate": _rate(sum(r == "approved" for r in decided), len(decided)),
        "feedback_coverage": _rate(len(with_outcome) + sum(c.status == "rejected" for c in shown),
                                   len(executed) + sum(c.status == "rejected" for c in shown)),
        "acted_on": len(acted), "compliance_pending": sum(r == "pending" for r in reviews),
        "ab": arms, "psi_last_two_runs": round(drift, 4), "alerts": alerts,
    }
