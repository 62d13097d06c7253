"""Retraining from history plus feedback, and the decision to deploy, guarded by evidence and by people.

Card outcomes are outreach attempts, so a retrain learns from them; rep rejections feed the contact
policy's cooldown and compliance rejections the template ranking. The new version is compared with the
champion on the same held-out slice; if it is better by `min_gain` it becomes the challenger (the live
A/B arm). The previous challenger is promoted only when the live split shows it converting better than
the champion with non-overlapping 95 % intervals. A hold placed by the business (`outreach models hold`)
stops any automatic change and is recorded with who and why.

`retrain` is a batch job: training reads the whole history on its own, then every registry change it
makes is one unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.feedback import service as feedback
from app.models import registry
from app.models.tables import RegistryEvent
from app.models.training import train_and_register
from app.store.db import reading, unit_of_work


@dataclass
class RetrainReport:
    version: str
    metrics: dict[str, Any]
    champion: str | None
    offline: str
    live: dict[str, Any]
    actions: list[str] = field(default_factory=list)


def hold(*, session: Session, actor: str, reason: str, now: datetime, release: bool = False) -> None:
    """Stop (or allow again) automatic promotion and challenger changes; recorded in the registry log."""
    if not reason.strip():
        raise registry.RegistryError("say why (it is recorded)", field="reason")
    current = registry.champion(session=session)
    if current is None:
        raise registry.RegistryError("there is no champion to hold")
    session.add(RegistryEvent(at=now, action="release" if release else "hold", version_id=current.id, actor=actor,
                              previous_champion=None, reason=reason))


def current_hold(*, session: Session) -> RegistryEvent | None:
    last = session.scalars(select(RegistryEvent).where(RegistryEvent.action.in_(("hold", "release")))
                           .order_by(RegistryEvent.id.desc())).first()
    return last if last is not None and last.action == "hold" else None


def retrain(factory: sessionmaker[Session], *, models_dir: Path, now: datetime, actor: str, seed: int = 0,
            min_gain: float = 0.0, min_live: int = 200, objectives_file: Path | None = None) -> RetrainReport:
    with reading(factory) as session:
        before_challenger = registry.challenger(session=session)
    result = train_and_register(factory, models_dir=models_dir, now=now, actor=actor, seed=seed,
                                objectives_file=objectives_file)
    champion_view = result.metrics.get("champion_on_same_holdout") or {}
    with reading(factory) as session:
        live = feedback.live_split(session=session).model_dump()
        held = current_hold(session=session)
    report = RetrainReport(version=result.version, metrics=result.metrics, champion=champion_view.get("version"),
                           offline="", live=live)
    if result.status == registry.ModelStatus.CHAMPION:
        report.offline = "first model: it is the champion"
        return report
    new_auc, old_auc = result.metrics["roc_auc"], champion_view.get("roc_auc")
    report.offline = (f"held-out ROC AUC {new_auc:.4f} vs champion {old_auc:.4f} on the same slice"
                      if old_auc is not None else f"champion could not be measured ({champion_view.get('error')})")
    if held is not None:
        report.actions.append(f"no change: held by {held.actor} since {held.at:%Y-%m-%d} ({held.reason})")
        return report
    if old_auc is not None and new_auc >= old_auc + min_gain:
        with unit_of_work(factory) as session:
            registry.set_challenger(session=session, version_id=result.version, now=now, actor=actor)
        report.actions.append(f"{result.version} is the new challenger (better offline by {new_auc - old_auc:+.4f})")
    else:
        report.actions.append(f"{result.version} stays a candidate (not better offline by {min_gain})")
    if before_challenger is not None and live["challenger"]["n"] >= min_live and live["champion"]["n"] >= min_live:
        if live["challenger"]["ci95"][0] > live["champion"]["ci95"][1]:
            with unit_of_work(factory) as session:
                registry.promote(session=session, version_id=before_challenger.id, now=now, actor=actor, force=True,
                                 reason="won the live A/B split: " + f"{live}")
            report.actions.append(f"{before_challenger.id} promoted: it beat the champion in the live split")
        else:
            report.actions.append("live split: no significant difference yet; champion kept")
    else:
        report.actions.append(f"live split: fewer than {min_live} outcomes per arm; champion kept")
    return report
