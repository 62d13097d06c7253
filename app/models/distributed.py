"""Batch scoring on a Ray cluster (`outreach score --engine ray [--address ADDR]`).

The driver cuts the customer base into the same chunks as the in-process engine, writes each chunk's history
(customers, consents, events, attempts, reps' rejections) as a Parquet partition, and hands the partition to
a Ray task that decides it with `scoring.decide_chunk`, the in-process engine's own call: the same chunks, the
same models and the same inputs give the same decisions. The driver keeps a bounded number of partitions in
flight, writes the decisions chunk by chunk in order, and reports progress as chunks come back.

The models travel once, through Ray's object store. The partitions are files: on a cluster of several
machines, DATA_DIR (or `partitions_dir`) must be storage every node reads (NFS, a mounted bucket). Without an
address the command starts a local cluster for its own run and stops it afterwards.
"""

from __future__ import annotations

import json
import shutil
from collections import deque
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.orm import Session, sessionmaker

from app.errors import OutreachError
from app.features.build import History, load_history
from app.models.scoring import ChunkResult, ChunkTask, Models, chunk_rejections, decide_chunk

FRAMES = ("customers", "consents", "events", "attempts", "rejections")
JSON_COLUMNS_KEY = b"outreach.json_columns"
RAY_MISSING = ("--engine ray needs Ray, an optional extra: pip install 'outreach[ray]' (or pip install 'ray>=2.40'), "
               "then run the command again")


class RayMissing(OutreachError):
    """Ray is not installed: the message names the extra to install."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayMissing(RAY_MISSING) from None
    return ray


def _write_frame(frame: pd.DataFrame, path: Path) -> None:
    """A frame as Parquet; columns holding dicts or lists (JSON attributes) are stored as JSON text and named in
    the file's metadata, so reading gives back the same values."""
    frame = frame.copy()
    as_json = [c for c in frame.columns if frame[c].dtype == object
               and frame[c].map(lambda v: isinstance(v, (dict, list))).any()]
    for column in as_json:
        frame[column] = frame[column].map(lambda v: None if v is None else json.dumps(v))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), JSON_COLUMNS_KEY: json.dumps(as_json).encode()})
    pq.write_table(table, path)


def _read_frame(path: Path) -> pd.DataFrame:
    table = pq.read_table(path)
    frame = table.to_pandas()
    for column in json.loads((table.schema.metadata or {}).get(JSON_COLUMNS_KEY, b"[]")):
        frame[column] = frame[column].map(lambda v: json.loads(v) if isinstance(v, str) else v)
    return frame


def write_partition(folder: Path, history: History, rejections: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    frames = {"customers": history.customers, "consents": history.consents, "events": history.events,
              "attempts": history.attempts, "rejections": rejections}
    for name in FRAMES:
        _write_frame(frames[name], folder / f"{name}.parquet")
    return folder


def read_partition(folder: Path) -> tuple[History, pd.DataFrame]:
    frames = {name: _read_frame(folder / f"{name}.parquet") for name in FRAMES}
    return (History(frames["customers"], frames["consents"], frames["events"], frames["attempts"]),
            frames["rejections"])


def decide_partition(task: ChunkTask, folder: str, models: Models) -> ChunkResult:
    """What a Ray task runs: read one partition, decide it."""
    history, rejections = read_partition(Path(folder))
    return decide_chunk(task, history, rejections, models)


class RayEngine:
    """Decides chunks on a Ray cluster: the one at `address` (`ray start --head` on a real cluster, or "auto"),
    or a local one started for this run with `num_cpus` (default: every core)."""

    name = "ray"

    def __init__(self, *, partitions_dir: Path, address: str | None = None, num_cpus: int | None = None,
                 in_flight: int | None = None) -> None:
        self.ray = import_ray()
        self.partitions_dir = partitions_dir
        self.address = address
        self.num_cpus = num_cpus
        self.in_flight = in_flight

    def _start(self) -> bool:
        """Connect (or start a local cluster); True when this run started it and must stop it."""
        if self.ray.is_initialized():
            return False
        options: dict[str, Any] = dict(include_dashboard=False, logging_level="WARNING", log_to_driver=False,
                                       configure_logging=True)
        if self.address:
            self.ray.init(address=self.address, **options)
        else:
            # A local cluster for this command only: a small object store (partitions travel as files).
            self.ray.init(num_cpus=self.num_cpus, object_store_memory=256 * 1024 * 1024, **options)
        return True

    def run(self, factory: sessionmaker[Session], tasks: list[ChunkTask],
            models: Models) -> Generator[ChunkResult, None, None]:
        ray = self.ray
        started = self._start()
        try:
            remote = ray.remote(decide_partition)
            shared_models = ray.put(models)
            window = self.in_flight or max(2, int(ray.cluster_resources().get("CPU", 1)) * 2)
            pending: deque = deque()
            for task in tasks:
                folder = write_partition(self.partitions_dir / f"part-{task.index:05d}",
                                         load_history(factory, task.customer_ids),
                                         chunk_rejections(factory, task.customer_ids))
                pending.append(remote.remote(task, str(folder), shared_models))
                while len(pending) >= window:  # the driver reads ahead only this far: memory stays bounded
                    yield ray.get(pending.popleft())
            while pending:
                yield ray.get(pending.popleft())
        finally:
            shutil.rmtree(self.partitions_dir, ignore_errors=True)
            if started:
                ray.shutdown()
