"""`outreach demo` lives its last weeks before today: reps, customers, compliance and a retrain, all through
the services a person's action goes through, seeded and reproducible."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.audit import service as audit
from app.audit.tables import AuditEntry
from app.cards import metrics as card_metrics
from app.cards.tables import Card, CardAction
from app.config import get_settings
from app.data.tables import OutreachAttempt
from app.feedback.tables import Feedback
from app.models import registry
from app.models.objectives import load_objectives
from app.models.tables import Decision
from app.reports import service as reports
from app.review.tables import Review
from app.store.db import open_store, reading
from tests.test_cli import invoke

pytestmark = pytest.mark.slow


def prepare(folder: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATA_DIR", str(folder))
    monkeypatch.setenv("DEMO_WEEKS", "2")
    monkeypatch.setenv("CHALLENGER_SHARE", "0.3")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        result = invoke("demo", "--prepare-only", "--customers", "500")
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_the_demo_has_lived_two_weeks_through_the_real_services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    output = prepare(tmp_path / "one", monkeypatch)
    lived = re.search(r"simulated 2 weeks of use: .*?\(\d+ s\)", output)
    assert lived, output
    factory = open_store(f"sqlite:///{tmp_path / 'one' / 'outreach.db'}")
    with reading(factory) as session:
        actions = dict(session.execute(select(CardAction.kind, func.count()).group_by(CardAction.kind)).all())
        # Reps adopted, edited, rejected, sent and recorded outcomes, each an audited card action.
        assert {"adopt", "adopt_edited", "reject", "send", "outcome"} <= set(actions)
        assert actions["send"] == session.scalar(select(func.count()).select_from(AuditEntry)
                                                 .where(AuditEntry.action == "release"))
        # Outcomes became outreach attempts for the next training run; rejections feedback with a reason.
        assert session.scalar(select(func.count()).select_from(OutreachAttempt)
                              .where(OutreachAttempt.id.like("card-%"))) == actions["outcome"]
        assert session.scalar(select(func.count()).select_from(Feedback).where(Feedback.kind == "rep_rejection")) \
            == actions["reject"]
        # Compliance decided its queue, and said why when it rejected.
        decided = session.execute(select(Review.status, Review.decided_by, Review.reason_code)
                                  .where(Review.decided_by.is_not(None))).all()
        assert {s for s, _, _ in decided} == {"approved", "rejected"} and {b for _, b, _ in decided} == {"sim-compliance"}
        assert all(code for s, _, code in decided if s == "rejected")
        # A retrain put a challenger on the live split; cards of both arms were sent with outcomes.
        challenger = registry.challenger(session=session)
        assert challenger is not None and challenger.created_by == "sim-ds" and challenger.id in output
        split = card_metrics.compute(session=session, now=session.scalar(select(func.max(Card.updated_at))),
                                     objectives=load_objectives()[0])
        assert split.ab.champion.n > 0 and split.ab.challenger.n > 0
        # No 30-day window is over after two weeks, but the metrics page already compares contacted with held-out
        # customers over the days observed so far.
        assert split.realised_uplift == [] and split.realised_uplift_so_far
        assert sum(u.held_out for u in split.realised_uplift_so_far) > 0
        assert all(u.interim and 0 < u.days_observed < 30 for u in split.realised_uplift_so_far)
        assert split.adoption_rate and split.conversion_rate is not None and split.compliance_approval_rate
        assert session.scalar(select(func.count()).select_from(Card).join(Decision, Decision.id == Card.decision_id)
                              .where(Decision.arm == "challenger", Card.outcome.is_not(None))) > 0
        assert audit.verify(session=session).ok
        # The report over the weeks: funnels by week, reasons, template rows, the queue, drift run by run.
        lived_report = reports.build(session=session, since=session.scalar(select(func.min(Card.created_at))),
                                     now=session.scalar(select(func.max(Card.updated_at))))
        assert len(lived_report.by_week) >= 2 and lived_report.rejection_reasons and lived_report.templates
        assert lived_report.compliance.approved > 0 and len(lived_report.drift) == 2  # 2 simulated runs + today's
        page = reports.render_html(lived_report)
        for chart in ("calibration", "gain", "auc-over-time", "drift", "feature-drift", "adoption_rate", "conversion_rate",
                      "rejection-reasons"):
            assert f'data-chart="{chart}"' in page, chart
        assert page.split('data-chart="drift"')[1].split("</svg>")[0].count("<circle") == 2
    # Today's cards come from today's run, after the simulated weeks.
    assert "built" in output and "open cards" in output

    again = prepare(tmp_path / "two", monkeypatch)
    counts = lambda text: re.sub(r"m\d{8}-\d{6}-[0-9a-f]{6}|\(\d+ s\)", "", re.search(r"simulated 2 weeks.*?s\)", text)[0])  # noqa: E731
    assert counts(again) == counts(output)  # same seed, same weeks
