"""`outreach eval propensity`: train and test the propensity model on any tabular CSV.

`--tune N` searches the model's settings by cross-validation on the training part only (LightGBM's own
`cv`, stratified folds, early stopping per candidate): the test part is touched once, by the final model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from app.models.propensity import DEFAULT_PARAMS, MAX_ROUNDS, TrainingDataError, check_target, evaluate, train_propensity

# Where the random search looks: tree size and regularisation, the learning rate, and how categories are
# smoothed (Bank Marketing's job / month levels are small groups).
SEARCH_SPACE: dict[str, list[Any]] = {
    "learning_rate": [0.01, 0.02, 0.03, 0.05],
    "num_leaves": [7, 15, 31, 63],
    "min_child_samples": [20, 40, 100, 200],
    "feature_fraction": [0.5, 0.7, 0.8, 0.9],
    "bagging_fraction": [0.7, 0.8, 0.9],
    "lambda_l2": [0.0, 1.0, 10.0],
    "cat_smooth": [10, 30, 100],
    "min_data_per_group": [50, 100, 200],
}
CV_FOLDS = 3


def load_labelled_csv(path: Path, *, sep: str, target: str, positive: str, drop: list[str]
                      ) -> tuple[pd.DataFrame, pd.Series]:
    """Features and a boolean target from a CSV; every problem names the file and the column."""
    if not path.is_file():
        raise TrainingDataError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, sep=sep)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise TrainingDataError(f"{path}: cannot be read as CSV with sep {sep!r}: {exc}") from None
    if target not in frame.columns:
        raise TrainingDataError(f"{path}: no target column {target!r} (columns: {', '.join(frame.columns)})")
    unknown = [c for c in drop if c not in frame.columns]
    if unknown:
        raise TrainingDataError(f"{path}: --drop names unknown column(s) {', '.join(unknown)}")
    raw = frame[target]
    if raw.isna().any():
        raise TrainingDataError(f"{path}: column {target!r} has {int(raw.isna().sum())} empty values")
    labels = raw.astype(str).str.strip()
    if positive not in set(labels):
        raise TrainingDataError(f"{path}: column {target!r} never equals --positive {positive!r} "
                                f"(values: {', '.join(sorted(set(labels))[:10])})")
    features = frame.drop(columns=[target, *drop])
    for column in features.columns:
        if not pd.api.types.is_numeric_dtype(features[column]):
            features[column] = features[column].astype("category")
    return features, labels == positive


def cross_validated_auc(features: pd.DataFrame, target: pd.Series, params: dict[str, Any], seed: int) -> float:
    """Mean ROC AUC over stratified folds of the given rows, each candidate stopped early on its folds."""
    data = lgb.Dataset(features, target.astype(int), free_raw_data=False)
    result = lgb.cv({**params, "metric": "auc", "seed": seed}, data, num_boost_round=MAX_ROUNDS, nfold=CV_FOLDS,
                    stratified=True, seed=seed, callbacks=[lgb.early_stopping(100, verbose=False)])
    return float(max(result["valid auc-mean"]))


def tune(features: pd.DataFrame, target: pd.Series, *, trials: int, seed: int) -> dict[str, Any]:
    """A seeded random search over SEARCH_SPACE, scored by cross-validation on these rows only; the
    defaults are a candidate too, so tuning never picks settings that did worse than them."""
    rng = np.random.default_rng(seed)
    default_auc = cross_validated_auc(features, target, DEFAULT_PARAMS, seed)
    best_params, best_auc, tried = {}, default_auc, []
    for _ in range(trials):
        candidate = {name: values[int(rng.integers(len(values)))] for name, values in SEARCH_SPACE.items()}
        auc = cross_validated_auc(features, target, {**DEFAULT_PARAMS, **candidate}, seed)
        tried.append({"params": candidate, "cv_roc_auc": round(auc, 4)})
        if auc > best_auc:
            best_params, best_auc = candidate, auc
    return {"trials": trials, "folds": CV_FOLDS, "default_cv_roc_auc": round(default_auc, 4),
            "best_cv_roc_auc": round(best_auc, 4), "chosen": best_params or "defaults", "tried": tried}


def evaluate_propensity(path: Path, *, sep: str = ",", target: str, positive: str, drop: list[str] | None = None,
                        test_size: float = 0.25, seed: int = 0, tune_trials: int = 0) -> dict[str, Any]:
    """Stratified split; the model (with its own calibration fold) and any tuning see only the training part."""
    if not 0 < test_size < 1:
        raise TrainingDataError(f"--test-size must be between 0 and 1, got {test_size}")
    if tune_trials < 0:
        raise TrainingDataError(f"--tune must be 0 or more trials, got {tune_trials}")
    features, y = load_labelled_csv(path, sep=sep, target=target, positive=positive, drop=drop or [])
    check_target(y, f"{path}: column {target!r}")
    train_x, test_x, train_y, test_y = train_test_split(features, y, test_size=test_size, stratify=y,
                                                        random_state=seed)
    tuning = tune(train_x, train_y, trials=tune_trials, seed=seed) if tune_trials else None
    params = tuning["chosen"] if tuning and isinstance(tuning["chosen"], dict) else None
    model, info = train_propensity(train_x, train_y, seed=seed, params=params)
    metrics = evaluate(model.predict(test_x), test_y)
    return {**metrics, **({"tuning": tuning} if tuning else {}), "n_train": len(train_x), "n_test": len(test_x), "features": len(model.features),
            "best_iteration": info["best_iteration"], "seed": seed, "test_size": test_size,
            "dropped": drop or []}
