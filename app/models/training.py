"""`outreach train`: featurise the history, fit propensity and timing models, test them on the most
recent slice of time, save the bundle and register it as a version."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sqlalchemy.orm import Session, sessionmaker

from app.features.build import TIME_FEATURES, History, load_history, training_frame
from app.models import drift, registry
from app.models.objectives import ObjectiveUplift, ObjectivesError, load_objectives, train_objective_uplift
from app.store.db import reading, unit_of_work
from app.models.propensity import (PropensityModel, TrainingDataError, check_target, evaluate, quality_curves,
                                   train_propensity_shaped)
from app.models.timing import TimingModel, cross_fitted_logit, train_timing

# Features a business may want to force monotone (+1: more never lowers the score; -1: more never raises it).
# Risk signals are -1: more unresolved blockers, complaints or renewal worries never make a customer look better.
DEFAULT_MONOTONE: dict[str, int] = {"pricing_question_14d": 1, "upsell_interest_14d": 1, "complaint_14d": -1,
                                    "renewal_risk_14d": -1, "implementation_blocker_14d": -1,
                                    "unresolved_conversations_30d": -1}


@dataclass
class ModelBundle:
    """What scoring needs from one registered version."""

    version: str
    propensity: PropensityModel
    timing: TimingModel
    uplift: ObjectiveUplift | None = None
    reference: dict | None = None  # the training rows' feature bins, for drift (drift.reference)

    @classmethod
    def load(cls, version: str, folder: Path) -> ModelBundle:
        return cls(version, PropensityModel.load(folder), TimingModel.load(folder), ObjectiveUplift.load(folder / "uplift"),
                   drift.load(folder))


@dataclass
class TrainResult:
    version: str
    status: str
    metrics: dict[str, Any]
    artifact_path: str


def snapshot(history: History) -> dict[str, Any]:
    """What the model was trained on: counts, time range and a fingerprint of the labelled history."""
    attempts = history.attempts.sort_values("id")
    digest = hashlib.sha256("\n".join(attempts["id"] + ":" + attempts["outcome"]).encode()).hexdigest()
    times = pd.to_datetime(attempts["attempted_at"], utc=True)
    return {"customers": len(history.customers), "events": len(history.events), "attempts": len(attempts),
            "from": times.min().isoformat() if len(times) else None,
            "to": times.max().isoformat() if len(times) else None, "sha256": digest}


def time_split(times: pd.Series, holdout_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Train on the past, test on the most recent `holdout_share` of attempts: how the model will be used."""
    cutoff = times.quantile(1 - holdout_share)
    train = (times < cutoff).to_numpy()
    return train, ~train


def train_and_register(factory: sessionmaker[Session], *, models_dir: Path, now: datetime, actor: str,
                       seed: int = 0, holdout_share: float = 0.2, monotone: dict[str, int] | None = None,
                       mlflow_uri: str | None = None, objectives_file: Path | None = None) -> TrainResult:
    # A broken objectives file stops the training before anything is fitted.
    objectives, objectives_version = load_objectives(objectives_file)
    history = load_history(factory)
    if history.attempts.empty:
        raise TrainingDataError("the store has no outreach history: run `outreach generate` or "
                                "`outreach import` first")
    features, target, times = training_frame(history)
    train, test = time_split(times, holdout_share)
    if target[test].nunique() < 2:
        raise TrainingDataError("the most recent attempts (the test slice) have only one outcome; "
                                "more history is needed to measure a model")
    monotone = {k: v for k, v in (DEFAULT_MONOTONE if monotone is None else monotone).items()}
    unknown = sorted(set(monotone) - set(features.columns))
    if unknown:
        raise TrainingDataError(f"monotone constraint on unknown feature(s): {', '.join(unknown)}")
    # The timing model first: the propensity model boosts from its expected response for the customer's group
    # and plan (cross-fitted on the training rows, so no row's starting point has seen its own outcome).
    check_target(target[train], "outcome of the training attempts")  # enough of each outcome for the CV folds
    timing = train_timing(features[train], target[train], seed=seed)
    start = cross_fitted_logit(features[train], target[train], timing, seed=seed)
    propensity, info = train_propensity_shaped(features[train], target[train], seed=seed, monotone=monotone,
                                               offset=(start, timing), times=times[train])
    held_out = propensity.predict(features[test])
    metrics = evaluate(held_out, target[test])
    metrics["curves"] = quality_curves(held_out, target[test])  # drawn on the metrics page
    metrics["timing_roc_auc"] = float(roc_auc_score(target[test].astype(int), timing.predict(features[test])))
    metrics["timing_penalty"] = timing.penalty
    metrics.update({"n_train": int(train.sum()), "n_test": int(test.sum()),
                    "test_from": times[test].min().isoformat()})
    metrics["champion_on_same_holdout"] = _champion_on(factory, models_dir, features[test], target[test])
    try:
        uplift: ObjectiveUplift | None = train_objective_uplift(history, objectives, objectives_version, seed)
        metrics["uplift"] = uplift.metrics | {"objectives_version": objectives_version}
    except ObjectivesError as exc:
        # Too little history to compare contact with none: the version still ranks by propensity, and says why.
        uplift, metrics["uplift"] = None, {"objectives_version": objectives_version, "not_trained": str(exc)}

    data = snapshot(history)
    version = f"m{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    folder = models_dir / version
    propensity.save(folder)
    timing.save(folder)
    # Drift is watched on the customer's inputs; the plan's time is chosen by scoring, so it moves by design.
    drift.save(folder, drift.reference(features[train][[f for f in propensity.features if f not in TIME_FEATURES]]))
    if uplift is not None:
        uplift.save(folder / "uplift")
    params = {**info["params"], "monotone": monotone, "best_iteration": info["best_iteration"],
              "tree_shape": info["shape"], "timing_groups": timing.groups, "timing_smoothing": timing.smoothing,
              "validation_log_loss_by_shape": info["validation_log_loss_by_shape"],
              "held_out_fold": info["held_out_fold"], "holdout_share": holdout_share}
    (folder / "meta.json").write_text(json.dumps({"version": version, "metrics": metrics, "data": data,
                                                  "params": params}, indent=2, default=str))
    feature_info = {"propensity": propensity.features, "categorical": info["categorical"],
                    "timing": timing.features}
    with unit_of_work(factory) as session:
        registered = registry.register(session=session, version_id=version, now=now, actor=actor,
                                       # absolute: a relative DATA_DIR would tie the model to the folder
                                       # the command ran in (scoring from elsewhere fell back to rules)
                                       artifact_path=str(folder.resolve()), data_snapshot=data, features=feature_info,
                                       params=params, metrics=metrics)
    if mlflow_uri:
        _log_to_mlflow(mlflow_uri, version, params, metrics)
    return TrainResult(version, registered.status, metrics, str(folder))


def _champion_on(factory: sessionmaker[Session], models_dir: Path, features: pd.DataFrame, target: pd.Series
                 ) -> dict[str, Any] | None:
    """The current champion measured on this version's held-out slice: a like-for-like comparison."""
    with reading(factory) as session:
        current = registry.champion(session=session)
    if current is None:
        return None
    try:
        bundle = ModelBundle.load(current.id, Path(current.artifact_path))
        return {"version": current.id, **evaluate(bundle.propensity.predict(features), target)}
    except Exception as exc:  # noqa: BLE001 - an unloadable champion is reported, not fatal
        return {"version": current.id, "error": f"{type(exc).__name__}: {exc}"}


def _log_to_mlflow(uri: str, version: str, params: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Mirror the run into MLflow when the `mlflow` extra is installed; the registry works without it."""
    try:
        import mlflow
    except ImportError as exc:
        raise TrainingDataError("MLFLOW_TRACKING_URI is set but mlflow is not installed: "
                                "pip install 'outreach[mlflow]'") from exc
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(run_name=version):
        mlflow.log_params({k: str(v) for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))})
