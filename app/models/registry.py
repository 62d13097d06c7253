"""Model registry: versions with their data snapshot, features, parameters, metrics and artifact;
one champion, at most one challenger, promotion guarded by metrics, rollback in one step,
and a stable hash that assigns each customer to the champion or the challenger arm."""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound
from app.models.tables import ModelVersion, RegistryEvent

# The metric a promotion compares; higher is better.
PROMOTION_METRIC = "roc_auc"


class ModelStatus(StrEnum):
    CANDIDATE = "candidate"
    CHAMPION = "champion"
    CHALLENGER = "challenger"
    RETIRED = "retired"


class RegistryError(Conflict):
    """A registry request that cannot be done as asked (409); the message says why and what to do."""


def register(*, session: Session, version_id: str, now: datetime, actor: str, artifact_path: str,
             data_snapshot: dict[str, Any], features: dict[str, Any], params: dict[str, Any],
             metrics: dict[str, Any]) -> ModelVersion:
    """Record a trained version as a candidate; the first version ever becomes champion."""
    has_champion = _with_status(session, ModelStatus.CHAMPION) is not None
    version = ModelVersion(id=version_id, created_at=now, created_by=actor, artifact_path=artifact_path,
                           data_snapshot=data_snapshot, features=features, params=params, metrics=metrics,
                           status=ModelStatus.CANDIDATE if has_champion else ModelStatus.CHAMPION)
    session.add(version)
    session.flush()
    session.add(RegistryEvent(at=now, action="register", version_id=version_id, actor=actor,
                              previous_champion=None, reason=None))
    if not has_champion:
        session.add(RegistryEvent(at=now, action="promote", version_id=version_id, actor=actor,
                                  previous_champion=None, reason="first model"))
    return version


def _with_status(session: Session, status: ModelStatus) -> ModelVersion | None:
    return session.scalars(select(ModelVersion).where(ModelVersion.status == status)).first()


def _get(session: Session, version_id: str) -> ModelVersion:
    version = session.get(ModelVersion, version_id)
    if version is None:
        known = ", ".join(session.scalars(select(ModelVersion.id).order_by(ModelVersion.created_at.desc()).limit(5)))
        raise NotFound(f"no model version {version_id!r} (latest: {known or 'none'})", field="version")
    return version


def list_versions(*, session: Session) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id)))


class VersionQuality(BaseModel):
    """One version's held-out figures, as the cockpit plots them over time."""

    version: str
    created_at: datetime
    status: str
    roc_auc: float | None
    pr_auc: float | None
    base_rate: float | None
    n_test: int | None


class CalibrationPoint(BaseModel):
    predicted: float
    observed: float
    n: int


class ModelQuality(BaseModel):
    """For data scientists: every version's ROC and PR AUC in the order they were trained, and the
    champion's calibration curve and cumulative gain on its held-out slice (empty for a version trained
    before the curves were recorded: retrain to draw them)."""

    versions: list[VersionQuality]
    champion: str | None
    calibration: list[CalibrationPoint]
    gain: list[tuple[float, float]]


def quality(*, session: Session, limit: int = 30) -> ModelQuality:
    latest = list(session.scalars(select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
                                  .limit(limit)))
    current = champion(session=session)
    curves = (current.metrics.get("curves") or {}) if current is not None else {}

    def figure(version: ModelVersion, name: str) -> float | None:
        value = version.metrics.get(name)
        return float(value) if isinstance(value, (int, float)) else None

    return ModelQuality(
        versions=[VersionQuality(version=v.id, created_at=v.created_at, status=v.status, roc_auc=figure(v, "roc_auc"),
                                 pr_auc=figure(v, "pr_auc"), base_rate=figure(v, "base_rate"),
                                 n_test=v.metrics.get("n_test")) for v in reversed(latest)],
        champion=current.id if current is not None else None,
        calibration=[CalibrationPoint(**point) for point in curves.get("calibration", [])],
        gain=[tuple(point) for point in curves.get("gain", [])])


def champion(*, session: Session) -> ModelVersion | None:
    return _with_status(session, ModelStatus.CHAMPION)


def challenger(*, session: Session) -> ModelVersion | None:
    return _with_status(session, ModelStatus.CHALLENGER)


def promote(*, session: Session, version_id: str, now: datetime, actor: str, force: bool = False,
            reason: str | None = None) -> ModelVersion:
    """Make a version champion. The old champion is retired (kept for rollback). A version whose
    held-out metric is worse than the champion's needs `force`."""
    version = _get(session, version_id)
    current = _with_status(session, ModelStatus.CHAMPION)
    if current is not None and current.id == version.id:
        raise RegistryError(f"{version_id} is already the champion")
    if version.status == ModelStatus.RETIRED and not force:
        raise RegistryError(f"{version_id} is retired; use `outreach models rollback` or --force")
    if current is not None and not force:
        new, old = version.metrics.get(PROMOTION_METRIC), current.metrics.get(PROMOTION_METRIC)
        if new is None or (old is not None and new < old):
            raise RegistryError(
                f"{version_id} has {PROMOTION_METRIC} {new} on held-out data, worse than champion {current.id} "
                f"({old}); promote with --force to override")
    if current is not None:
        current.status = ModelStatus.RETIRED
    version.status = ModelStatus.CHAMPION
    session.add(RegistryEvent(at=now, action="promote", version_id=version.id, actor=actor,
                              previous_champion=current.id if current else None,
                              reason=reason or ("forced" if force else None)))
    return version


def set_challenger(*, session: Session, version_id: str, now: datetime, actor: str) -> ModelVersion:
    """Put a version in the challenger arm of the A/B split (replacing any challenger)."""
    version = _get(session, version_id)
    if version.status == ModelStatus.CHAMPION:
        raise RegistryError(f"{version_id} is the champion; a challenger must be another version")
    current = _with_status(session, ModelStatus.CHALLENGER)
    if current is not None and current.id != version.id:
        current.status = ModelStatus.CANDIDATE
    version.status = ModelStatus.CHALLENGER
    session.add(RegistryEvent(at=now, action="challenger", version_id=version.id, actor=actor,
                              previous_champion=None, reason=None))
    return version


def rollback(*, session: Session, now: datetime, actor: str) -> ModelVersion:
    """Give the champion's place back to the version it replaced, in one step."""
    current = _with_status(session, ModelStatus.CHAMPION)
    if current is None:
        raise RegistryError("there is no champion to roll back")
    last_promotion = session.scalars(
        select(RegistryEvent).where(RegistryEvent.action == "promote", RegistryEvent.version_id == current.id)
        .order_by(RegistryEvent.id.desc())).first()
    previous_id = last_promotion.previous_champion if last_promotion else None
    if previous_id is None:
        raise RegistryError(f"{current.id} replaced no earlier champion; nothing to roll back to")
    previous = _get(session, previous_id)
    current.status = ModelStatus.RETIRED
    previous.status = ModelStatus.CHAMPION
    session.add(RegistryEvent(at=now, action="rollback", version_id=previous.id, actor=actor,
                              previous_champion=current.id, reason=f"rolled back from {current.id}"))
    return previous


def in_share(customer_id: str, share: float, salt: str) -> bool:
    """True for a stable `share` of customers: the same customer gets the same answer on every run and every
    machine; a different salt draws an independent share (the A/B arm, the uplift holdout)."""
    digest = hashlib.sha256(f"{salt}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def assign_arm(customer_id: str, challenger_share: float, salt: str = "ab-v1") -> str:
    """'challenger' for a stable `challenger_share` of customers, 'champion' for the rest."""
    return "challenger" if in_share(customer_id, challenger_share, salt) else "champion"


def feature_set_version(*, session: Session, model_version: str | None) -> str:
    """The features a decision was scored on, named by a hash of the model's feature list (the rule-based
    fallback has its own fixed set)."""
    row = session.get(ModelVersion, model_version) if model_version else None
    if row is None:
        return "rules"
    listed = ",".join(map(str, (row.features or {}).get("propensity", [])))
    return f"fs-{hashlib.sha256(listed.encode()).hexdigest()[:10]}"
