"""Batch scoring at scale on both engines: wall time, memory of every process involved, same decisions.

    .venv/bin/python eval/scale_score.py --customers 1000000 --data-dir /tmp/scale1m

Runs the product's own commands, as a user would, in a data folder of their own (DATA_DIR):
  1. `outreach generate --customers N --now AS_OF` and `outreach train --now AS_OF` (skipped when the folder
     already holds a trained store of that size: generating and training 1M customers takes about 20 minutes);
  2. `outreach score --explain-top 0.1 --now AS_OF` in-process, then with `--engine ray` (a local cluster on this
     machine's cores), each timed; a sampler adds up the resident memory of the command's whole process tree
     (Ray's GCS, raylet and workers included) every 0.2 s and keeps the peak, beside the driver's own peak;
  3. compares the two runs' decisions customer by customer (status, channel, slot, product, score, confidence,
     reasons) in the store.
Writes eval/reports/scale_score_N.json and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
OUTREACH = str(Path(sys.executable).parent / "outreach")
AS_OF = "2026-11-01T09:00:00+00:00"
COMPARED = ("status", "method", "arm", "model_version", "channel", "slot_local", "product", "round(score, 9)",
            "round(confidence, 9)", "reasons", "suppressed_by", "requires_confirmation", "objective", "impact")


def run_measured(command: list[str], env: dict[str, str]) -> dict:
    """Run a command; its wall time, its own peak RSS and the peak RSS summed over its whole process tree."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    root = psutil.Process(process.pid)
    peaks = {"tree": 0, "driver": 0, "processes": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                members = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for member in members:
                try:
                    rss = member.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                if member.pid == root.pid:
                    peaks["driver"] = max(peaks["driver"], rss)
            peaks["tree"] = max(peaks["tree"], total)
            peaks["processes"] = max(peaks["processes"], len(members))
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = process.communicate()[0]
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{output[-3000:]}")
    return {"seconds": round(time.perf_counter() - started, 1), "peak_rss_tree_mb": round(peaks["tree"] / 2**20),
            "peak_rss_driver_mb": round(peaks["driver"] / 2**20), "processes_at_peak": peaks["processes"],
            "tail": output.strip().splitlines()[-3:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/outreach-scale"))
    parser.add_argument("--explain-top", type=float, default=0.1)
    parser.add_argument("--as-of", default=AS_OF, help="Generate and score as of this time (ISO).")
    parser.add_argument("--out", type=Path, help="Report file (default: eval/reports/scale_score_N.json).")
    parser.add_argument("--engines", nargs="+", default=["in-process", "ray"], choices=["in-process", "ray"])
    args = parser.parse_args()
    data_dir = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    database = data_dir / "outreach.db"
    env = {**os.environ, "DATA_DIR": str(data_dir), "DATABASE_URL": f"sqlite:///{database}",
           "MODEL_CACHE_DIR": str(ROOT / "data" / "cache")}
    result: dict = {"customers": args.customers, "as_of": args.as_of, "explain_top": args.explain_top,
                    "cpus": os.cpu_count(), "steps": {}}

    def customers_in_store() -> int:
        if not database.exists():
            return 0
        with sqlite3.connect(database) as db:
            try:
                trained = db.execute("select count(*) from model_versions").fetchone()[0]
                return db.execute("select count(*) from customers").fetchone()[0] if trained else 0
            except sqlite3.OperationalError:
                return 0

    if customers_in_store() != args.customers:
        result["steps"]["generate"] = run_measured(
            [OUTREACH, "generate", "--customers", str(args.customers), "--now", args.as_of], env)
        result["steps"]["train"] = run_measured([OUTREACH, "train", "--now", args.as_of], env)
    runs = {}
    for engine in args.engines:
        with sqlite3.connect(database) as db:
            before = {row[0] for row in db.execute("select id from score_runs")}
        step = run_measured([OUTREACH, "score", "--now", args.as_of, "--explain-top", str(args.explain_top),
                             "--engine", engine, "--top", "0"], env)
        with sqlite3.connect(database) as db:
            (run_id,) = {row[0] for row in db.execute("select id from score_runs")} - before
            step["run_id"] = run_id
            step["stats"] = json.loads(db.execute("select stats from score_runs where id = ?", (run_id,)).fetchone()[0])
        step["customers_per_s"] = round(args.customers / step["seconds"])
        result["steps"][f"score_{engine}"] = step
        runs[engine] = run_id
        print(json.dumps({engine: {k: v for k, v in step.items() if k != "stats"}}), flush=True)
    if len(runs) == 2:
        first, second = runs.values()
        columns = ", ".join(COMPARED)
        with sqlite3.connect(database) as db:
            differing = db.execute(
                f"select count(*) from (select customer_id, {columns} from decisions where run_id = ? "
                f"except select customer_id, {columns} from decisions where run_id = ?)", (first, second)).fetchone()[0]
            counts = [db.execute("select count(*) from decisions where run_id = ?", (r,)).fetchone()[0]
                      for r in (first, second)]
        result["decisions"] = {"in_each_run": counts, "differing": differing, "compared": list(COMPARED)}
    out = args.out or ROOT / "eval" / "reports" / f"scale_score_{args.customers}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
