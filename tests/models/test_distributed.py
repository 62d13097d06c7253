"""Batch scoring on Ray: a local cluster decides the same chunks as the in-process engine, over Parquet
partitions, and gives the same decisions; without Ray the command names the extra to install."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from app.features.build import load_history
from app.models import registry
from app.models.distributed import RayEngine, read_partition, write_partition
from app.models.objectives import load_objectives
from app.models.reasons import load_reason_table
from app.models.scoring import chunk_rejections, score_all
from app.models.tables import Decision, ScoreRun
from app.models.training import train_and_register
from app.policy.rules import load_policy
from tests.conftest import NOW, write

COMPARED = ["customer_id", "status", "method", "arm", "model_version", "score", "confidence", "channel", "slot_at",
            "slot_local", "product", "reasons", "suppressed_by", "requires_confirmation", "objective",
            "objectives_version", "impact", "policy_version"]


def decisions(factory, run_id: str) -> pd.DataFrame:  # noqa: ANN001
    with factory() as session:
        rows = session.scalars(select(Decision).where(Decision.run_id == run_id).order_by(Decision.customer_id)).all()
        return pd.DataFrame([{c: getattr(d, c) for c in COMPARED} for d in rows])


def test_a_partition_reads_back_as_it_was_written(trained, tmp_path: Path) -> None:
    factory, _, _ = trained
    with factory() as session:
        from app.data.tables import Customer

        ids = list(session.scalars(select(Customer.id).order_by(Customer.id).limit(300)))
    history, rejections = load_history(factory, ids), chunk_rejections(factory, ids)
    back, rejections_back = read_partition(write_partition(tmp_path / "part-00000", history, rejections))
    for name in ("customers", "consents", "events", "attempts"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(history, name), check_dtype=True)
    assert len(rejections_back) == len(rejections)
    assert back.customers["attributes"].map(type).eq(dict).all()  # JSON attributes come back as dicts


@pytest.mark.slow
def test_ray_gives_the_same_decisions_as_the_in_process_engine(trained, tmp_path: Path) -> None:
    factory, models_dir, _ = trained
    second = train_and_register(factory, models_dir=models_dir, now=NOW, actor="test", seed=3)
    write(factory, registry.set_challenger, version_id=second.version, now=NOW, actor="test")
    config, version = load_objectives()
    common = dict(now=NOW, policy=load_policy(), reasons=load_reason_table(), challenger_share=0.3, chunk_size=1500,
                  explain_top=0.5, objectives=(config.model_copy(update={"max_contacts": 900}), version))
    here = score_all(factory, **common)
    seen: list[int] = []
    partitions = tmp_path / "partitions"
    on_ray = score_all(factory, **common, progress=seen.append,
                       engine=RayEngine(partitions_dir=partitions, num_cpus=2))
    assert on_ray.engine == "ray" and seen == [1500, 1500, 1000]  # progress chunk by chunk, in order
    ours, theirs = decisions(factory, here.run_id), decisions(factory, on_ray.run_id)
    assert len(ours) == 4000 and (ours["status"] == "recommended").sum() > 0
    assert set(ours["arm"].dropna()) == {"champion", "challenger"}
    pd.testing.assert_frame_equal(ours, theirs)
    assert {k: v for k, v in on_ray.stats.items()} == {k: v for k, v in here.stats.items()}
    with factory() as session:
        runs = {r.id: r.stats for r in session.scalars(select(ScoreRun).where(ScoreRun.id.in_([here.run_id, on_ray.run_id])))}
    assert runs[on_ray.run_id]["feature_psi"] == runs[here.run_id]["feature_psi"]
    assert runs[on_ray.run_id]["engine"] == "ray" and runs[here.run_id]["engine"] == "in-process"
    assert not partitions.exists()  # the partitions are the run's scratch space, removed afterwards
