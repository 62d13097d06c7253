"""The optimisation report (`outreach report`, and the cockpit's download): what the models, the reps, the
templates and compliance did since a date, with the charts of the metrics page and plain-language findings.

Read-only: one pass over the period's cards and reviews, the registry and the last two scoring runs."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from statistics import median

from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cards import metrics as card_metrics
from app.cards.metrics import DriftPoint
from app.cards.tables import Card, CardAction
from app.data.tables import Customer
from app.feedback.service import wilson
from app.models import registry
from app.models.registry import ModelQuality
from app.models.tables import ScoreRun
from app.review.service import ReviewStatus
from app.review.tables import Review

TEMPLATES = Path(__file__).parent / "templates"
# A template is worth retiring once it has had a fair chance: this many sends, and even the top of its
# 95 % interval is below the period's overall conversion.
RETIRE_MIN_SENDS = 20
SHOWN = ("open", "adopted", "rejected", "executed")
FEATURES_SHOWN = 8  # the features that moved most, in the cockpit


class Funnel(BaseModel):
    """Cards shown to reps, and what became of them."""

    name: str
    shown: int
    adopted: int
    executed: int
    converted: int
    adoption_rate: float | None
    execution_rate: float | None = None  # of the adopted cards, the share sent
    conversion_rate: float | None  # of the sent cards with a recorded outcome
    first_touch_hours: float | None = None  # median hours from a card being made to a rep's first action on it


class TemplateRow(BaseModel):
    template_id: str
    segment: str
    sent: int
    converted: int
    conversion_rate: float | None
    ci95: tuple[float, float]


class ComplianceFigures(BaseModel):
    queued: int
    pending: int
    approved: int
    rejected: int
    approval_rate: float | None
    median_hours_to_decision: float | None
    oldest_pending_hours: float | None
    blocked: int
    top_findings: list[tuple[str, int]]


class Report(BaseModel):
    since: datetime
    until: datetime
    overall: Funnel
    by_week: list[Funnel]
    by_team: list[Funnel]
    by_rep: list[Funnel]
    by_team_and_week: dict[str, list[Funnel]] = {}  # team -> its funnel per week (the weeks of `by_week`)
    rejection_reasons: list[tuple[str, int]]
    templates: list[TemplateRow]
    compliance: ComplianceFigures
    model_quality: ModelQuality
    psi_last_two_runs: float
    drift: list[DriftPoint]  # each scoring run's confidences against the run before, oldest first
    drift_alert_at: float = card_metrics.DRIFT_PSI
    # The latest run's features against the champion's training rows, most moved first (PSI).
    feature_drift: list[tuple[str, float]] = []
    findings: list[str]


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _funnel(name: str, cards: list, first_touch: dict[str, datetime] | None = None) -> Funnel:  # noqa: ANN001
    shown = [c for c in cards if c.status in SHOWN]
    touched = [(first_touch[c.id] - c.created_at).total_seconds() / 3600 for c in shown if c.id in (first_touch or {})]
    adopted = [c for c in shown if c.status in ("adopted", "executed")]
    executed = [c for c in shown if c.status == "executed"]
    with_outcome = [c for c in executed if c.outcome]
    converted = sum(c.outcome == "converted" for c in with_outcome)
    return Funnel(name=name, shown=len(shown), adopted=len(adopted), executed=len(executed), converted=converted,
                  adoption_rate=_rate(len(adopted), len(shown)), execution_rate=_rate(len(executed), len(adopted)),
                  conversion_rate=_rate(converted, len(with_outcome)),
                  first_touch_hours=round(median(touched), 1) if touched else None)


def _grouped(cards: list, key, first_touch: dict[str, datetime]) -> list[Funnel]:  # noqa: ANN001
    groups: dict[str, list] = defaultdict(list)
    for card in cards:
        groups[key(card)].append(card)
    return [_funnel(name, rows, first_touch) for name, rows in sorted(groups.items())]


def _compliance(session: Session, since: datetime, now: datetime) -> ComplianceFigures:
    reviews = session.execute(select(Review.verdict, Review.status, Review.created_at, Review.decided_at,
                                     Review.findings).where(Review.created_at >= since)).all()
    queued = [r for r in reviews if r.verdict == ReviewStatus.NEEDS_APPROVAL]
    decided = [r for r in queued if r.status in (ReviewStatus.APPROVED, ReviewStatus.REJECTED) and r.decided_at]
    pending = [r for r in queued if r.status == ReviewStatus.NEEDS_APPROVAL]
    approved = sum(r.status == ReviewStatus.APPROVED for r in decided)
    failed = Counter(f.get("validator", "?") for r in reviews for f in (r.findings or []) if not f.get("passed", True))
    return ComplianceFigures(
        queued=len(queued), pending=len(pending), approved=approved, rejected=len(decided) - approved,
        approval_rate=_rate(approved, len(decided)),
        median_hours_to_decision=round(median((r.decided_at - r.created_at).total_seconds() / 3600 for r in decided), 1)
        if decided else None,
        oldest_pending_hours=round(max((now - r.created_at).total_seconds() / 3600 for r in pending), 1) if pending else None,
        blocked=sum(r.verdict == ReviewStatus.BLOCKED for r in reviews), top_findings=failed.most_common(5))


def _templates(cards: list, segments: dict[str, str]) -> list[TemplateRow]:
    outcomes: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for c in cards:
        if c.status == "executed" and c.outcome and c.template_id:
            outcomes[(c.template_id, segments.get(c.customer_id) or "unknown")].append(c.outcome == "converted")
    rows = [TemplateRow(template_id=t, segment=s, sent=len(v), converted=sum(v), conversion_rate=_rate(sum(v), len(v)),
                        ci95=wilson(sum(v), len(v))) for (t, s), v in outcomes.items()]
    return sorted(rows, key=lambda r: (-r.sent, r.template_id, r.segment))


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _findings(report: Report) -> list[str]:
    """What a sales leader, a content lead, compliance and a data scientist should take from the period."""
    out: list[str] = []
    q = report.model_quality
    if q.champion:
        champion = next((v for v in q.versions if v.version == q.champion), None)
        if champion and champion.roc_auc is not None:
            out.append(f"The champion {q.champion} ranks held-out attempts with ROC AUC {champion.roc_auc:.3f} "
                       f"(PR AUC {champion.pr_auc:.3f} against a base rate of {_percent(champion.base_rate)}).")
        trained = [v for v in q.versions if v.created_at >= report.since and v.roc_auc is not None]
        if len(q.versions) >= 2 and trained:
            newest, before = q.versions[-1], q.versions[-2]
            if newest.roc_auc is not None and before.roc_auc is not None:
                change = newest.roc_auc - before.roc_auc
                word = "improved on" if change > 0.005 else "fell behind" if change < -0.005 else "matched"
                out.append(f"The newest version {newest.version} {word} the one before it "
                           f"(ROC AUC {newest.roc_auc:.3f} against {before.roc_auc:.3f}, each on its own latest slice).")
        if q.calibration:
            # A group is off only when its prediction lies outside the 95 % interval of what it observed: small
            # groups miss by a few points by chance alone.
            misses = [(p, wilson(round(p.observed * p.n), p.n)) for p in q.calibration]
            off = [(p, ci) for p, ci in misses if not ci[0] <= p.predicted <= ci[1]]
            if off:
                p, ci = max(off, key=lambda m: abs(m[0].predicted - m[0].observed))
                out.append(f"Calibration is off where the model predicts {_percent(p.predicted)}: {_percent(p.observed)} "
                           f"of {p.n} responded (95 % interval {_percent(ci[0])}–{_percent(ci[1])}). Retrain, or check "
                           "what changed in the data.")
            else:
                out.append("Confidences are calibrated: in each of the ten score groups the predicted response lies "
                           "within the 95 % interval of the observed one.")
    else:
        out.append("No model is trained yet: decisions come from the contact rules (`outreach train`).")
    if report.psi_last_two_runs > card_metrics.DRIFT_PSI:
        out.append(f"The confidence distribution drifted between the last two scoring runs (PSI "
                   f"{report.psi_last_two_runs:.2f}, alert above {card_metrics.DRIFT_PSI}): check the inputs before trusting the ranking.")
    moved = [(name, value) for name, value in report.feature_drift if value > report.drift_alert_at]
    if moved:
        named = ", ".join(f"{name} (PSI {value:.2f})" for name, value in moved[:3])
        out.append(f"Inputs moved since the champion was trained: {named}. Check those inputs, then retrain.")
    o = report.overall
    if o.shown:
        out.append(f"Reps were shown {o.shown} cards, adopted {_percent(o.adoption_rate)} and sent {o.executed}; "
                   f"{_percent(o.conversion_rate)} of the sent cards with an outcome converted.")
        teams = [t for t in report.by_team if t.shown >= 10 and t.adoption_rate is not None]
        if len(teams) >= 2:
            low, high = min(teams, key=lambda t: t.adoption_rate), max(teams, key=lambda t: t.adoption_rate)
            if high.adoption_rate - low.adoption_rate >= 0.1:
                out.append(f"Adoption ranges from {_percent(low.adoption_rate)} ({low.name}) to "
                           f"{_percent(high.adoption_rate)} ({high.name}): ask {low.name} what the cards miss.")
    else:
        out.append("No card was shown to a rep in the period: nothing to learn from adoption yet.")
    if report.rejection_reasons:
        reason, n = report.rejection_reasons[0]
        total = sum(k for _, k in report.rejection_reasons)
        out.append(f"Reps rejected {total} cards; the most common reason is \"{reason.replace('_', ' ')}\" ({n} of {total}).")
    overall = _rate(sum(t.converted for t in report.templates), sum(t.sent for t in report.templates))
    for row in report.templates:
        if overall and row.sent >= RETIRE_MIN_SENDS and row.ci95[1] < overall:
            out.append(f"Retire or rewrite {row.template_id} for {row.segment}: {row.converted} of {row.sent} sends "
                       f"converted (at most {_percent(row.ci95[1])} at 95 %, against {_percent(overall)} overall).")
    c = report.compliance
    if c.queued:
        out.append(f"Compliance received {c.queued} drafts to approve: {c.approved} approved, {c.rejected} rejected, "
                   f"{c.pending} waiting" + (f"; the median decision took {c.median_hours_to_decision} h."
                                             if c.median_hours_to_decision is not None else "."))
    if c.oldest_pending_hours is not None and c.oldest_pending_hours > card_metrics.STUCK_QUEUE_HOURS:
        out.append(f"The compliance queue is stuck: the oldest draft has waited {c.oldest_pending_hours:.0f} h.")
    if c.top_findings:
        name, n = c.top_findings[0]
        out.append(f"The guardrail that fired most is {name} ({n} drafts).")
    return out


def build(*, session: Session, since: datetime, now: datetime) -> Report:
    in_period = (Card.created_at >= since, Card.created_at <= now)
    cards = session.execute(select(Card.id, Card.status, Card.outcome, Card.reject_reason, Card.template_id, Card.rep_id,
                                   Card.team, Card.customer_id, Card.created_at).where(*in_period)).all()
    first_touch = dict(session.execute(select(CardAction.card_id, func.min(CardAction.created_at))
                                       .join(Card, Card.id == CardAction.card_id).where(*in_period)
                                       .group_by(CardAction.card_id)).all())
    ids = sorted({c.customer_id for c in cards})
    segments = dict(session.execute(select(Customer.id, Customer.segment).where(Customer.id.in_(ids))).all()) if ids else {}
    drift = card_metrics.drift_over_time(session)
    week_of = lambda c: f"week of {(c.created_at - timedelta(days=c.created_at.weekday())):%Y-%m-%d}"  # noqa: E731
    report = Report(
        since=since, until=now, overall=_funnel("all", cards, first_touch),
        by_week=_grouped(cards, week_of, first_touch),
        by_team=_grouped(cards, lambda c: c.team or "no team", first_touch),
        by_rep=_grouped(cards, lambda c: c.rep_id or "team queue", first_touch),
        rejection_reasons=Counter(c.reject_reason for c in cards if c.status == "rejected" and c.reject_reason).most_common(),
        templates=_templates(cards, segments), compliance=_compliance(session, since, now),
        model_quality=registry.quality(session=session),
        psi_last_two_runs=drift[-1].psi if drift else 0.0, drift=drift, findings=[])
    weeks = [w.name for w in report.by_week]
    for team in report.by_team:
        mine = [c for c in cards if (c.team or "no team") == team.name]
        found = {f.name: f for f in _grouped(mine, week_of, first_touch)}
        report.by_team_and_week[team.name] = [found.get(w) or _funnel(w, []) for w in weeks]
    latest = session.scalars(select(ScoreRun).where(ScoreRun.finished_at.is_not(None), ScoreRun.kind == "batch")
                             .order_by(ScoreRun.started_at.desc())).first()
    report.feature_drift = list((latest.stats.get("feature_psi") or {}).items())[:FEATURES_SHOWN] if latest else []
    report.findings = _findings(report)
    return report


_environment = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))


def render_html(report: Report) -> str:
    """A self-contained page (styles inline, charts as SVG): it opens offline and prints as it shows."""
    return _environment.get_template("report.html").render(r=report.model_dump(mode="json"))
