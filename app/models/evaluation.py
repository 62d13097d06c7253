"""`outreach eval propensity`: train and test the propensity model on any tabular CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from app.models.propensity import TrainingDataError, check_target, evaluate, train_propensity


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


def evaluate_propensity(path: Path, *, sep: str = ",", target: str, positive: str, drop: list[str] | None = None,
                        test_size: float = 0.25, seed: int = 0) -> dict[str, Any]:
    """Stratified split; the model (with its own calibration fold) sees only the training part."""
    if not 0 < test_size < 1:
        raise TrainingDataError(f"--test-size must be between 0 and 1, got {test_size}")
    features, y = load_labelled_csv(path, sep=sep, target=target, positive=positive, drop=drop or [])
    check_target(y, f"{path}: column {target!r}")
    train_x, test_x, train_y, test_y = train_test_split(features, y, test_size=test_size, stratify=y,
                                                        random_state=seed)
    model, info = train_propensity(train_x, train_y, seed=seed)
    metrics = evaluate(model.predict(test_x), test_y)
    return {**metrics, "n_train": len(train_x), "n_test": len(test_x), "features": len(model.features),
            "best_iteration": info["best_iteration"], "seed": seed, "test_size": test_size,
            "dropped": drop or []}
