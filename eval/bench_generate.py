"""Synthetic history generation speed: 100k customers and ~1M events, in memory and into the store.

    .venv/bin/python eval/bench_generate.py --customers 100000

Prints rows/second for generation alone and for loading into a fresh SQLite store, and the ratio
of our store load (SQLAlchemy Core, typed UTC columns, JSON attributes, chunked transactions) to the
raw library: `sqlite3.executemany` of the same event rows as plain tuples into a bare table.
"""

from __future__ import annotations

from pathlib import Path

import argparse
import json
import sqlite3
import tempfile
import time
from datetime import datetime, timezone

import pandas as pd

from app.data.synthetic import generate, load_into_store
from app.config import Settings
from app.services import Services

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def raw_sqlite_events(events: pd.DataFrame, path: str) -> float:
    """The floor: the same event rows as tuples through the sqlite3 module, no ORM, no types."""
    frame = events.drop(columns=["attributes"]).copy()
    frame["occurred_at"] = frame["occurred_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    rows = list(frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None))
    connection = sqlite3.connect(path)
    connection.execute("create table events (id text primary key, customer_id text, occurred_at text, type text, "
                        "product text, intent text, channel text, text text)")
    started = time.perf_counter()
    with connection:
        connection.executemany("insert into events values (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-store", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    history = generate(customers=args.customers, now=NOW, seed=args.seed)
    generate_s = time.perf_counter() - started
    rows = sum(len(f) for f in (history.customers, history.consents, history.events, history.attempts))
    result = {"customers": len(history.customers), "events": len(history.events), "attempts": len(history.attempts),
              "consents": len(history.consents), "generate_seconds": round(generate_s, 2),
              "generate_rows_per_second": round(rows / generate_s)}
    if not args.skip_store:
        with tempfile.TemporaryDirectory() as folder:
            factory = Services(Settings(_env_file=None, data_dir=Path(folder))).store
            started = time.perf_counter()
            load_into_store(history, factory)
            load_s = time.perf_counter() - started
            events_only = tempfile.NamedTemporaryFile(dir=folder, suffix=".db").name
            raw_events_s = raw_sqlite_events(history.events, events_only)
        event_share = len(history.events) / rows
        result.update(store_load_seconds=round(load_s, 1), store_rows_per_second=round(rows / load_s),
                      generate_and_load_seconds=round(generate_s + load_s, 1),
                      raw_sqlite3_events_seconds=round(raw_events_s, 1),
                      # Our per-row cost against the raw library's, on the same machine in the same run.
                      ratio_store_load_vs_raw_sqlite3_per_row=round((load_s / rows) / (raw_events_s / len(history.events)), 2),
                      events_share_of_rows=round(event_share, 2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
