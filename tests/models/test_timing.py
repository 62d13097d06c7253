"""The timing model finds when and on which channel each kind of customer answers, as planted in the history."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from app.data.synthetic import SEGMENTS, generate, load_into_store
from app.features.build import load_history, training_frame
from app.models import registry
from app.models.propensity import TrainingDataError
from app.models.scoring import load_models
from app.models.timing import (CHANNELS, HOURS_OF_WEEK, TimingModel, _fitted, _roughness_basis, _unfitted, best_plans,
                               train_timing)
from app.models.training import train_and_register
from app.store.db import open_store
from tests.conftest import NOW, read


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[TimingModel, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("timing")
    factory = open_store(f"sqlite:///{folder / 'outreach.db'}")
    load_into_store(generate(customers=12_000, now=NOW, seed=3), factory)
    features, target, _ = training_frame(load_history(factory))
    return train_timing(features, target), features


def test_best_channel_and_hour_are_the_planted_ones_for_the_large_segments(fitted) -> None:
    model, features = fitted
    every_hour = np.ones(HOURS_OF_WEEK, dtype=bool)
    for segment, truth in SEGMENTS.items():
        if truth["share"] < 0.15:
            continue  # a few hundred contacts are too few to pin an hour down in a test-sized history
        members = features.loc[features["segment"] == segment, model.groups].drop_duplicates()
        weighted = model.grid(members.reset_index(drop=True)).mean(axis=0, keepdims=True)
        channel, how, _ = best_plans(weighted, np.ones((1, len(CHANNELS)), dtype=bool), every_hour)
        planted = truth["best_slot"][0] * 24 + truth["best_slot"][1]
        distance = abs(int(how[0]) - planted) % HOURS_OF_WEEK
        assert CHANNELS[channel[0]] == truth["best_channel"], segment
        assert min(distance, HOURS_OF_WEEK - distance) <= 2, (segment, int(how[0]), planted)


def test_only_groups_whose_curves_predict_held_out_rows_get_their_own(fitted) -> None:
    """The planted truth gives each segment its own channel effects and hours; industry and lifecycle stage
    change nothing, and curves for them would only add noise, so cross-validation on the training rows drops them."""
    model, _ = fitted
    assert model.groups == ["segment"]


def test_the_roughness_penalty_charges_a_curve_for_its_wiggles_and_only_a_little_for_its_height() -> None:
    """Plain L2 on the fitted coefficients of the reparametrised basis is the P-spline penalty: a curve held high
    everywhere (up to the edge of the hours with data) costs only the small ridge part, a jagged one far more."""
    width, ridge = 12, 1.0  # an even width: the jagged curve below closes around the circle
    basis = _roughness_basis(width, ridge)

    def penalty(coefficients: np.ndarray) -> float:
        return float(np.sum(np.linalg.solve(basis, coefficients) ** 2))

    level = np.ones(width)
    jagged = np.resize([1.0, -1.0], width)  # every second difference is +-4
    assert penalty(level) == pytest.approx(ridge * width)
    assert penalty(jagged) == pytest.approx((16 + ridge) * width)


def test_fitting_on_distinct_cells_is_fitting_on_the_rows(fitted) -> None:
    """Rows with the same group, channel and hour are folded into one weighted cell (training costs the number of
    cells, not of rows): the coefficients are those of a fit on every row, and scoring through the cells gives each
    row its own design's score, a missing hour or segment included."""
    model, features = fitted
    rows = features.sample(4000, random_state=1).reset_index(drop=True)
    rows.loc[:9, "hour_of_week"] = np.nan
    rows.loc[10:19, "segment"] = None
    y = (np.random.default_rng(0).random(len(rows)) < 0.2).astype(int)
    for smoothing in (None, 1.0):
        on_cells = _fitted(_unfitted(rows, ["segment"], smoothing), rows, y, 0.1)
        on_rows = LogisticRegression(C=0.1, max_iter=3000).fit(on_cells.design(rows), y)
        assert np.allclose(on_cells.coef, on_rows.coef_.ravel(), atol=2e-3)
        assert on_cells.intercept == pytest.approx(on_rows.intercept_[0], abs=2e-3)
        assert np.allclose(on_cells.logit(rows), on_cells.design(rows) @ on_cells.coef + on_cells.intercept)


def test_the_penalty_chosen_is_kept_with_the_model_and_an_older_model_file_still_loads(fitted, tmp_path: Path) -> None:
    model, _ = fitted
    model.save(tmp_path)
    meta = json.loads((tmp_path / "timing.json").read_text())
    assert meta["smoothing"] == model.smoothing and meta["penalty"] == model.penalty
    del meta["smoothing"]  # a model saved before the penalty's kind was chosen: plain ridge
    (tmp_path / "timing.json").write_text(json.dumps(meta))
    assert TimingModel.load(tmp_path).smoothing is None


def test_contributions_add_up_to_the_score_and_a_saved_model_scores_the_same(fitted, tmp_path: Path) -> None:
    model, features = fitted
    rows = features.sample(200, random_state=0)
    parts = model.contributions(rows)
    assert list(parts.columns) == model.groups + ["channel", "hour_of_week"]
    assert np.allclose(parts.sum(axis=1).to_numpy() + model.intercept, model.logit(rows))
    model.save(tmp_path)
    assert np.allclose(TimingModel.load(tmp_path).predict(rows), model.predict(rows))


def test_an_unseen_group_or_a_missing_hour_scores_as_the_average_not_an_error(fitted) -> None:
    model, features = fitted
    row = features.iloc[[0]].copy()
    row["segment"], row["hour_of_week"] = "a segment never seen", np.nan
    parts = model.contributions(row)
    assert parts.loc[row.index[0], "hour_of_week"] == 0 and 0 < model.predict(row)[0] < 1


def test_the_propensity_model_builds_on_the_timing_model_and_its_reasons_add_up_to_its_score(trained) -> None:
    """The trained propensity model starts from the timing model's log-odds; its per-feature contributions
    (trees plus the timing model's parts) still add up exactly to the score it gives."""
    factory, _, _ = trained
    bundle = load_models(factory, 0.0).champion
    propensity = bundle.propensity
    assert propensity.offset is not None and propensity.offset.coef.shape == bundle.timing.coef.shape
    features, _, _ = training_frame(load_history(factory))
    rows = features.sample(300, random_state=1)
    prepared = propensity.prepare(rows)
    bias = propensity.booster.predict(prepared, pred_contrib=True)[:, -1]
    total = propensity.contributions(rows).sum(axis=1).to_numpy() + bias + propensity.offset.intercept
    assert np.allclose(total, propensity.raw_score(rows))
    # The plan's part is not zero: channel and hour carry the timing model's weight into the reasons.
    assert propensity.contributions(rows)[["channel", "hour_of_week"]].abs().sum().min() > 0


def test_training_with_too_few_responses_to_learn_from_says_so_and_registers_nothing(tmp_path: Path) -> None:
    history = generate(customers=800, now=NOW, seed=4)
    attempts = history.attempts
    recent = attempts["attempted_at"] >= attempts["attempted_at"].quantile(0.9)
    attempts.loc[~recent, "outcome"] = "no_answer"  # responses only in the test slice
    factory = open_store(f"sqlite:///{tmp_path / 'outreach.db'}")
    load_into_store(history, factory)
    with pytest.raises(TrainingDataError, match="outcome of the training attempts.*no positives"):
        train_and_register(factory, models_dir=tmp_path / "models", now=NOW, actor="test")
    assert not (tmp_path / "models").exists() and read(factory, registry.list_versions) == []


def test_next_slot_across_daylight_saving_changes_is_never_before_the_earliest_time() -> None:
    """Scoring at 09:00 UTC on 1 Nov 2026 crashed the whole run: 01:00 repeats in Los Angeles that night."""
    from app.models.timing import next_occurrence

    sunday = lambda hour: 6 * 24 + hour  # noqa: E731 - hour of the week, Monday 00:00 = 0
    cases = [  # earliest (UTC), zone, hour of the week wanted, expected slot (UTC)
        ("2026-11-01T09:00Z", "America/Los_Angeles", sunday(1), "2026-11-01T09:00Z"),  # the repeated hour, 2nd time
        ("2026-11-01T08:30Z", "America/Los_Angeles", sunday(2), "2026-11-01T10:00Z"),  # from inside the 1st 01:xx
        ("2026-03-08T09:00Z", "America/Los_Angeles", sunday(2), "2026-03-08T10:00Z"),  # 02:00 never happens: 03:00
        ("2026-11-01T09:10Z", "Asia/Kolkata", sunday(15), "2026-11-01T09:30Z"),  # half-hour offset: 15:00 IST
    ]
    earliest = np.array([pd.Timestamp(c[0]).timestamp() for c in cases])
    slots = next_occurrence(np.array([c[2] for c in cases]), earliest, np.array([c[1] for c in cases]))
    for (start, zone, _how, expected), slot in zip(cases, slots):
        assert slot == pd.Timestamp(expected), (start, zone, slot)
        assert slot >= pd.Timestamp(start)
