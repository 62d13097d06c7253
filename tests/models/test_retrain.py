"""`outreach retrain`: like-for-like comparison with the champion, challenger only when better, business hold."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.models import registry
from app.models.retrain import current_hold, hold, retrain
from tests.conftest import NOW, read, write


@pytest.mark.slow
def test_retrain_compares_on_the_same_slice_and_respects_a_hold(trained) -> None:
    factory, models, first = trained
    later = NOW + timedelta(hours=1)
    report = retrain(factory, models_dir=models, now=later, actor="test", min_gain=-1.0)  # any new version qualifies
    same = report.metrics["champion_on_same_holdout"]
    assert same["version"] == read(factory, registry.champion).id and 0.5 < same["roc_auc"] <= 1.0
    assert "on the same slice" in report.offline
    assert read(factory, registry.challenger).id == report.version
    assert any("fewer than 200 outcomes" in a for a in report.actions)  # no live evidence: champion kept
    assert read(factory, registry.champion).id == first.version

    write(factory, hold, actor="head-of-sales", reason="quarter-end freeze", now=later)
    assert read(factory, current_hold).actor == "head-of-sales"
    held = retrain(factory, models_dir=models, now=later + timedelta(minutes=1), actor="test", min_gain=-1.0)
    assert held.actions == [f"no change: held by head-of-sales since {later:%Y-%m-%d} (quarter-end freeze)"]
    assert read(factory, registry.challenger).id == report.version  # the held run changed nothing
    write(factory, hold, actor="head-of-sales", reason="freeze over", now=later, release=True)
    assert read(factory, current_hold) is None
    strict = retrain(factory, models_dir=models, now=later + timedelta(minutes=2), actor="test", min_gain=1.0)
    assert any("stays a candidate" in a for a in strict.actions)
