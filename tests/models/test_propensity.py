"""The propensity model: calibrated probabilities, native categoricals, monotone constraints, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.models.propensity import PropensityModel, TrainingDataError, evaluate, train_propensity, train_propensity_shaped


def simulated(n: int = 12_000, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """A known logistic truth: the model should recover calibrated probabilities."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "visits": rng.poisson(2, n).astype(float),
        "plan": pd.Categorical(rng.choice(["basic", "pro", "team"], n)),
        "noise": rng.normal(size=n),
    })
    logit = -2.5 + 0.5 * frame["visits"] + frame["plan"].map({"basic": 0.0, "pro": 0.8, "team": -0.5}).astype(float)
    frame.loc[rng.random(n) < 0.05, "visits"] = np.nan  # missing values are allowed
    target = pd.Series(rng.random(n) < 1 / (1 + np.exp(-logit)))
    return frame, target


@pytest.fixture(scope="module")
def model_and_test():
    frame, target = simulated()
    model, info = train_propensity(frame.iloc[:9000], target.iloc[:9000], seed=0, monotone={"visits": 1})
    return model, frame.iloc[9000:], target.iloc[9000:]


def test_confidence_is_a_calibrated_probability(model_and_test) -> None:
    model, test_x, test_y = model_and_test
    probability = model.predict(test_x)
    metrics = evaluate(probability, test_y)
    assert metrics["expected_calibration_error"] < 0.03
    assert abs(probability.mean() - test_y.mean()) < 0.02
    assert metrics["roc_auc"] > 0.7
    assert ((probability > 0) & (probability < 1)).all()


def test_monotone_constraint_holds(model_and_test) -> None:
    model, test_x, _ = model_and_test
    grid = pd.DataFrame({"visits": np.arange(0, 12, dtype=float), "plan": "pro", "noise": 0.0})
    scores = model.predict(grid)
    assert (np.diff(scores) >= -1e-12).all()


def test_unseen_categories_and_missing_values_score_as_missing(model_and_test) -> None:
    model, _, _ = model_and_test
    rows = pd.DataFrame({"visits": [2.0, np.nan], "plan": ["enterprise", None], "noise": [0.0, 0.0]})
    probability = model.predict(rows)
    assert np.isfinite(probability).all()
    prepared = model.prepare(rows)
    assert prepared["plan"].isna().all()


def test_save_and_load_give_the_same_predictions(model_and_test, tmp_path) -> None:
    model, test_x, _ = model_and_test
    model.save(tmp_path / "m")
    again = PropensityModel.load(tmp_path / "m")
    np.testing.assert_allclose(again.predict(test_x), model.predict(test_x))
    assert again.monotone == {"visits": 1}


def test_contributions_add_up_to_the_raw_score(model_and_test) -> None:
    model, test_x, _ = model_and_test
    rows = test_x.iloc[:50]
    contributions = model.contributions(rows)
    raw = model.raw_score(rows)
    bias = raw - contributions.sum(axis=1).to_numpy()
    assert np.allclose(bias, bias[0])  # TreeSHAP: contributions + expected value = raw score


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (pd.Series([False] * 500), "constant"),
        (pd.Series([True] * 500), "constant"),
        (pd.Series([True] * 5 + [False] * 495), "at least 20"),
        (pd.Series([True, None] * 250), "no target value"),
    ],
    ids=["no-positives", "all-positive", "too-few-positives", "missing-target"],
)
def test_bad_training_targets_are_refused(target: pd.Series, message: str) -> None:
    frame = pd.DataFrame({"x": np.arange(len(target), dtype=float)})
    with pytest.raises(TrainingDataError, match=message):
        train_propensity(frame, target)


def test_monotone_constraint_on_an_unknown_feature_is_refused() -> None:
    frame, target = simulated(2000)
    with pytest.raises(TrainingDataError, match="unknown feature"):
        train_propensity(frame, target, monotone={"vists": 1})


def test_the_trees_learn_interactions_only_when_the_training_data_holds_them() -> None:
    """Effects that add up are learnt by stumps, which need fewer rows; an effect that exists only where two
    features meet needs deeper trees. The early-stopping fold of the training rows decides which."""
    rng = np.random.default_rng(1)
    n = 8000
    frame = pd.DataFrame({"a": rng.random(n), "b": rng.random(n), "noise": rng.random(n)})
    additive = -2 + 1.5 * frame["a"] + 1.5 * frame["b"]
    crossed = -2 + 2.5 * ((frame["a"] > 0.5) == (frame["b"] > 0.5))
    chosen = {}
    for name, logit in (("additive", additive), ("crossed", crossed)):
        target = pd.Series(rng.random(n) < 1 / (1 + np.exp(-logit)))
        _, info = train_propensity_shaped(frame, target, seed=0)
        chosen[name] = info["shape"]
        assert set(info["validation_log_loss_by_shape"]) == {"additive", "interactions"}
        assert info["validation_log_loss"] == pytest.approx(min(info["validation_log_loss_by_shape"].values()), abs=1e-5)
    assert chosen == {"additive": "additive", "crossed": "interactions"}


def test_with_attempt_times_the_trees_stop_and_calibrate_on_the_most_recent_rows() -> None:
    """A driver of response that stopped mattering lately: stopping and calibrating on the most recent quarter
    of the training rows predicts the weeks after the data better than a random quarter does."""
    rng = np.random.default_rng(3)
    n = 8000
    times = pd.Series(pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.sort(rng.random(n)) * 100, unit="D"))
    frame = pd.DataFrame({"x": rng.random(n), "noise": rng.random(n)})
    recent = np.arange(n) >= int(n * 0.7)
    logit = np.where(recent, -1.5, -3 + 3 * frame["x"])
    target = pd.Series(rng.random(n) < 1 / (1 + np.exp(-logit)))
    future = pd.DataFrame({"x": rng.random(4000), "noise": rng.random(4000)})
    future_target = pd.Series(rng.random(4000) < 1 / (1 + np.exp(1.5)))
    by_time, info = train_propensity(frame, target, seed=0, times=times)
    at_random, random_info = train_propensity(frame, target, seed=0)
    assert (info["held_out_fold"], random_info["held_out_fold"]) == ("recent", "random")
    assert info["n_fit"] == n and info["n_calibration"] == n // 4  # the trees are refitted on every row
    assert info["best_iteration"] < random_info["best_iteration"]
    future_loss = {name: evaluate(model.predict(future), future_target)["log_loss"]
                   for name, model in (("by_time", by_time), ("at_random", at_random))}
    assert future_loss["by_time"] < future_loss["at_random"]
    # A recent quarter with one outcome only cannot calibrate: the random fold instead.
    quiet = target.copy()
    quiet[np.arange(n) >= int(n * 0.74)] = False
    assert train_propensity(frame, quiet, seed=0, times=times)[1]["held_out_fold"] == "random"
