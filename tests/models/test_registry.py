"""The registry: versions, champion and challenger, guarded promotion, one-step rollback, stable A/B arms."""

from __future__ import annotations

import pytest

from app.models import registry
from app.models.registry import RegistryError, assign_arm
from app.errors import NotFound
from tests.conftest import NOW, read, write


def add(factory, version: str, auc: float):
    return write(factory, registry.register, version_id=version, now=NOW, actor="test", artifact_path=f"/nowhere/{version}",
                             data_snapshot={}, features={}, params={}, metrics={"roc_auc": auc})


def test_first_version_is_champion_later_ones_wait(store) -> None:
    assert add(store, "v1", 0.70).status == "champion"
    assert add(store, "v2", 0.72).status == "candidate"
    assert read(store, registry.champion).id == "v1"


def test_promotion_of_a_worse_model_needs_force_and_rollback_restores(store) -> None:
    add(store, "v1", 0.70)
    add(store, "v2", 0.65)
    add(store, "v3", 0.75)
    with pytest.raises(RegistryError, match="worse than champion v1.*--force"):
        write(store, registry.promote, version_id="v2", now=NOW, actor="ds")
    write(store, registry.promote, version_id="v3", now=NOW, actor="ds")
    write(store, registry.promote, version_id="v2", now=NOW, actor="ds", force=True, reason="business override")
    assert read(store, registry.champion).id == "v2"
    assert write(store, registry.rollback, now=NOW, actor="ds").id == "v3"
    assert write(store, registry.rollback, now=NOW, actor="ds").id == "v1"
    with pytest.raises(RegistryError, match="nothing to roll back"):
        write(store, registry.rollback, now=NOW, actor="ds")
    statuses = {v.id: v.status for v in read(store, registry.list_versions)}
    assert statuses == {"v1": "champion", "v2": "retired", "v3": "retired"}


def test_challenger_is_one_other_version(store) -> None:
    add(store, "v1", 0.70)
    add(store, "v2", 0.71)
    add(store, "v3", 0.72)
    with pytest.raises(RegistryError, match="champion"):
        write(store, registry.set_challenger, version_id="v1", now=NOW, actor="ds")
    write(store, registry.set_challenger, version_id="v2", now=NOW, actor="ds")
    write(store, registry.set_challenger, version_id="v3", now=NOW, actor="ds")
    assert read(store, registry.challenger).id == "v3"
    with pytest.raises(NotFound, match="no model version 'v9'"):
        write(store, registry.promote, version_id="v9", now=NOW, actor="ds")


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
