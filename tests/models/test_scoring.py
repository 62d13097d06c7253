"""Scoring end to end on a trained store: ranked decisions with confidence, slot, channel and reasons;
policy respected; rule-based when no model can run; A/B arms applied; store and Parquet agree."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from app.features.build import load_history, training_frame
from app.models import registry
from app.models.reasons import load_reason_table
from app.models.scoring import Models, ScoringEngine, decide, load_models, score_all
from app.models.timing import train_timing
from app.models.training import ModelBundle, train_and_register
from app.policy.rules import load_policy
from app.models.tables import Decision, ScoreRun
from tests.conftest import NOW, read, write

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chunk(trained):
    factory, _, _ = trained
    return load_history(factory)


def test_training_registers_a_measured_champion(trained) -> None:
    factory, _, result = trained
    assert result.status == "champion"
    assert 0.55 < result.metrics["roc_auc"] < 1 and result.metrics["n_test"] > 500
    version = read(factory, registry.champion)
    assert version.data_snapshot["attempts"] > 0 and "days_since_product_view" in version.features["propensity"]
    assert Path(version.artifact_path, "booster.txt").exists()
    assert Path(version.artifact_path).is_absolute()  # found whichever folder a later command runs in


def test_each_version_records_the_curves_the_cockpit_draws(trained) -> None:
    """Calibration in ten equal groups covering the whole held-out slice, whose observed rates average to the
    slice's base rate; the gain curve climbs from nothing to every response, above random at the top."""
    factory, _, result = trained
    quality = read(factory, registry.quality)
    assert quality.champion == result.version and [v.version for v in quality.versions][-1] == result.version
    assert quality.versions[-1].roc_auc == pytest.approx(result.metrics["roc_auc"])
    calibration, gain = quality.calibration, quality.gain
    assert len(calibration) == 10 and sum(p.n for p in calibration) == result.metrics["n_test"]
    observed = sum(p.observed * p.n for p in calibration) / result.metrics["n_test"]
    assert observed == pytest.approx(result.metrics["base_rate"], abs=1e-3)
    assert [p.predicted for p in calibration] == sorted(p.predicted for p in calibration)  # lowest scores first
    assert gain[0] == (0.0, 0.0) and gain[-1] == (1.0, 1.0)
    assert all(a[1] <= b[1] for a, b in zip(gain, gain[1:])) and dict(gain)[0.3] > 0.3


def test_decisions_respect_policy_and_always_carry_reasons(trained, chunk) -> None:
    factory, _, _ = trained
    policy = load_policy()
    frame, stats = decide(chunk, now=NOW, policy=policy, models=load_models(factory, 0.0),
                          reasons=load_reason_table())
    recommended = frame[frame["status"] == "recommended"]
    assert len(recommended) > 0.2 * len(frame)
    assert recommended["reasons"].map(len).ge(1).all()
    assert recommended["confidence"].between(0, 1).all() and (recommended["method"] == "model").all()
    # Slots fall in allowed local hours, after now and inside the horizon.
    zones = chunk.customers.set_index("id")["timezone"]
    for _, row in recommended.head(300).iterrows():
        local = row["slot_at"].tz_convert(zones[row["customer_id"]])
        assert policy.allowed_hours()[local.hour]
        assert pd.Timestamp(NOW) <= row["slot_at"] <= pd.Timestamp(NOW) + pd.Timedelta(days=policy.horizon_days)
    # Channels are consented ones; do-not-contact customers are never recommended.
    consents = chunk.consents.set_index(["customer_id", "channel"])["granted"]
    assert all(consents.get((c, ch), True) for c, ch in zip(recommended["customer_id"], recommended["channel"]))
    dnc = set(chunk.customers.loc[chunk.customers["do_not_contact"], "id"])
    suppressed = frame[frame["status"] == "suppressed"]
    assert dnc and dnc <= set(suppressed["customer_id"])
    assert suppressed["suppressed_by"].map(len).ge(1).all()
    assert stats["suppressed_no_reason"] == int((suppressed["suppressed_by"].map(lambda r: r == ["no_reason"])).sum())
    sensitive = set(chunk.customers.loc[chunk.customers["sensitive"], "id"])
    assert recommended.loc[recommended["customer_id"].isin(sensitive), "requires_confirmation"].all()


def test_no_model_means_rule_based_never_empty(chunk) -> None:
    frame, stats = decide(chunk, now=NOW, policy=load_policy(), models=Models(champion=None),
                          reasons=load_reason_table())
    recommended = frame[frame["status"] == "recommended"]
    assert len(recommended) > 0 and (recommended["method"] == "rule-based").all()
    assert recommended["confidence"].isna().all() and recommended["reasons"].map(len).ge(1).all()
    assert stats["rule_based"] == len(recommended)


def test_a_broken_model_degrades_to_rules(trained, chunk) -> None:
    factory, _, _ = trained
    models = load_models(factory, 0.0)
    broken = ModelBundle(models.champion.version, models.champion.propensity, models.champion.timing)
    broken.propensity = type(broken.propensity)(None, broken.propensity.calibrator, broken.propensity.features,
                                                broken.propensity.categories)
    frame, stats = decide(chunk, now=NOW, policy=load_policy(), models=Models(champion=broken),
                          reasons=load_reason_table())
    assert any(key.startswith("model_error:") for key in stats)
    assert (frame.loc[frame["status"] == "recommended", "method"] == "rule-based").all()


def test_score_all_writes_store_and_parquet_and_splits_arms(trained, tmp_path: Path) -> None:
    factory, models_dir, _ = trained
    second = train_and_register(factory, models_dir=models_dir, now=NOW, actor="test", seed=1)
    write(factory, registry.set_challenger, version_id=second.version, now=NOW, actor="test")
    path = tmp_path / "decisions.parquet"
    summary = score_all(factory, now=NOW, policy=load_policy(), reasons=load_reason_table(), challenger_share=0.3,
                        chunk_size=1500, parquet_path=path)
    parquet = pd.read_parquet(path)
    with factory() as session:
        stored = list(session.scalars(select(Decision).where(Decision.run_id == summary.run_id)))
    assert len(parquet) == len(stored) == summary.stats["customers"] == 4000
    arms = parquet.loc[parquet["method"] == "model", "arm"].value_counts(normalize=True)
    assert 0.25 < arms["challenger"] < 0.35
    assert set(parquet.loc[parquet["arm"] == "challenger", "model_version"]) == {second.version}
    recommended = [d for d in stored if d.status == "recommended"]
    assert all(d.policy_version == load_policy().version and d.slot_at.tzinfo for d in recommended)
    # The run measured its inputs against the champion's training rows, over every chunk (4000 customers in 3).
    with factory() as session:
        moved = session.get(ScoreRun, summary.run_id).stats["feature_psi"]
    assert {"days_since_product_view", "tenure_days"} <= set(moved) and min(moved.values()) >= 0
    assert "hour_of_week" not in moved and "month" not in moved  # the plan's time moves by design
    assert list(moved.values()) == sorted(moved.values(), reverse=True)


def test_a_run_stopped_part_way_leaves_no_decisions_and_no_export(trained, tmp_path: Path) -> None:
    """Ctrl-C (or a crash) after the first chunk was written: nothing of the run looks like a result."""
    factory, _, _ = trained

    class StoppedAfterOneChunk(ScoringEngine):
        def run(self, factory, tasks, models):  # noqa: ANN001, ANN202
            first = super().run(factory, tasks, models)
            yield next(first)
            raise KeyboardInterrupt

    path = tmp_path / "decisions.parquet"
    with factory() as session:
        before = set(session.scalars(select(ScoreRun.id)))
    with pytest.raises(KeyboardInterrupt):
        score_all(factory, now=NOW, policy=load_policy(), reasons=load_reason_table(), challenger_share=0.0,
                  chunk_size=1500, parquet_path=path, engine=StoppedAfterOneChunk())
    with factory() as session:
        (run_id,) = set(session.scalars(select(ScoreRun.id))) - before
        run = session.get(ScoreRun, run_id)
        assert run.finished_at is None and run.stats == {"failed": True}
        assert session.scalar(select(func.count()).select_from(Decision).where(Decision.run_id == run_id)) == 0
    assert not path.exists()


def test_missing_artifact_is_reported_and_scoring_goes_on(trained, tmp_path: Path) -> None:
    factory, _, _ = trained
    champion = read(factory, registry.champion)
    backup = tmp_path / "backup"
    shutil.move(champion.artifact_path, backup)
    try:
        models = load_models(factory, 0.0)
        assert models.champion is None and "FileNotFoundError" in models.load_errors[0]
    finally:
        shutil.move(backup, champion.artifact_path)


def test_channels_the_model_never_saw_are_left_to_rules(trained, chunk) -> None:
    factory, _, _ = trained
    models = load_models(factory, 0.0)
    # A timing model trained on SMS contacts only knows that one channel.
    features, target, _ = training_frame(load_history(factory))
    sms = (features["channel"] == "sms").to_numpy()
    narrow = train_timing(features[sms], target[sms])
    assert narrow.categories["channel"] == ["sms"]
    bundle = ModelBundle(models.champion.version, models.champion.propensity, narrow)
    frame, stats = decide(chunk, now=NOW, policy=load_policy(), models=Models(champion=bundle),
                          reasons=load_reason_table())
    recommended = frame[frame["status"] == "recommended"]
    assert not any(key.startswith("model_error") for key in stats)
    assert set(recommended.loc[recommended["method"] == "model", "channel"]) == {"sms"}
    assert (recommended.loc[recommended["channel"] != "sms", "method"] == "rule-based").all()
    assert (recommended["method"] == "rule-based").any()


def test_campaign_context_unknown_at_scoring_is_missing_not_an_error(tmp_path: Path) -> None:
    from app.data.synthetic import generate, load_into_store
    from app.store.db import open_store

    history = generate(customers=2500, now=NOW, seed=9)
    history.attempts["attributes"] = [{"wave": i % 3, "list": "spring" if i % 2 else "autumn"}
                                      for i in range(len(history.attempts))]
    factory = open_store(f"sqlite:///{tmp_path / 'outreach.db'}")
    load_into_store(history, factory)
    result = train_and_register(factory, models_dir=tmp_path / "models", now=NOW, actor="test")
    assert {"context_wave", "context_list"} <= set(read(factory, registry.champion).features["propensity"])
    frame, stats = decide(load_history(factory), now=NOW, policy=load_policy(), models=load_models(factory, 0.0),
                          reasons=load_reason_table())
    assert result.status == "champion" and not any(key.startswith("model_error") for key in stats)
    assert (frame.loc[frame["status"] == "recommended", "method"] == "model").all()


def test_ranked_but_unexplained_decisions_are_not_marked_suppressed(trained, chunk) -> None:
    factory, _, _ = trained
    frame, stats = decide(chunk, now=NOW, policy=load_policy(), models=load_models(factory, 0.0),
                          reasons=load_reason_table(), explain_top=0.1)
    ranked = frame[frame["status"] == "ranked"]
    assert stats["ranked_unexplained"] == len(ranked) > 0
    assert (ranked["suppressed_by"].map(len) == 0).all() and ranked["confidence"].notna().all()


def test_drafting_uses_the_latest_full_run_not_the_days_trigger_decisions(sqlite_store) -> None:
    from datetime import timedelta

    from app.data.tables import Customer
    from app.models.scoring import latest_batch_run, latest_decision
    from app.models.tables import ScoreRun
    from app.store.db import unit_of_work

    with unit_of_work(sqlite_store) as session:
        session.add(Customer(id="c1", attributes={}))
        for run_id, kind, minutes, score in (("run-full", "batch", 0, 0.2), ("live-today", "live", 30, 0.9)):
            at = NOW + timedelta(minutes=minutes)
            session.add(ScoreRun(id=run_id, kind=kind, started_at=at, finished_at=at, as_of=at, policy_version="p",
                                 stats={}))
            session.flush()
            session.add(Decision(run_id=run_id, customer_id="c1", as_of=at, status="recommended", method="model",
                                 policy_version="p", score=score, reasons=[], suppressed_by=[]))
    assert read(sqlite_store, latest_batch_run).id == "run-full"
    assert read(sqlite_store, latest_decision).run_id == "run-full"
    assert read(sqlite_store, latest_decision, customer_id="c1").run_id == "run-full"
