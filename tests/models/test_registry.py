"""The registry: versions, champion and challenger, guarded promotion, one-step rollback, stable A/B arms."""

from __future__ import annotations

import pytest

from app.models import registry
from app.models.registry import RegistryError, assign_arm
from tests.conftest import NOW


def add(factory, version: str, auc: float):
    return registry.register(factory, version_id=version, now=NOW, actor="test", artifact_path=f"/nowhere/{version}",
                             data_snapshot={}, features={}, params={}, metrics={"roc_auc": auc})


def test_first_version_is_champion_later_ones_wait(store) -> None:
    assert add(store, "v1", 0.70).status == "champion"
    assert add(store, "v2", 0.72).status == "candidate"
    assert registry.champion(store).id == "v1"


def test_promotion_of_a_worse_model_needs_force_and_rollback_restores(store) -> None:
    add(store, "v1", 0.70)
    add(store, "v2", 0.65)
    add(store, "v3", 0.75)
    with pytest.raises(RegistryError, match="worse than champion v1.*--force"):
        registry.promote(store, "v2", now=NOW, actor="ds")
    registry.promote(store, "v3", now=NOW, actor="ds")
    registry.promote(store, "v2", now=NOW, actor="ds", force=True, reason="business override")
    assert registry.champion(store).id == "v2"
    assert registry.rollback(store, now=NOW, actor="ds").id == "v3"
    assert registry.rollback(store, now=NOW, actor="ds").id == "v1"
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback(store, now=NOW, actor="ds")
    statuses = {v.id: v.status for v in registry.list_versions(store)}
    assert statuses == {"v1": "champion", "v2": "retired", "v3": "retired"}


def test_challenger_is_one_other_version(store) -> None:
    add(store, "v1", 0.70)
    add(store, "v2", 0.71)
    add(store, "v3", 0.72)
    with pytest.raises(RegistryError, match="champion"):
        registry.set_challenger(store, "v1", now=NOW, actor="ds")
    registry.set_challenger(store, "v2", now=NOW, actor="ds")
    registry.set_challenger(store, "v3", now=NOW, actor="ds")
    assert registry.challenger(store).id == "v3"
    with pytest.raises(RegistryError, match="no model version 'v9'"):
        registry.promote(store, "v9", now=NOW, actor="ds")


def test_ab_assignment_is_stable_and_matches_the_split() -> None:
    ids = [f"cus-{i:06d}" for i in range(20_000)]
    first = [assign_arm(c, 0.2) for c in ids]
    assert first == [assign_arm(c, 0.2) for c in ids]
    share = first.count("challenger") / len(ids)
    assert 0.19 < share < 0.21
    # Growing the challenger's share only moves customers from champion to challenger, never back.
    wider = [assign_arm(c, 0.3) for c in ids]
    assert all(w == "challenger" for f, w in zip(first, wider) if f == "challenger")
    assert all(assign_arm(c, 0.0) == "champion" for c in ids[:100])
