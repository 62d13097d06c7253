"""Batch scoring cost: the whole `outreach score` path against LightGBM's raw `predict` on the same matrix.

    .venv/bin/python eval/bench_score.py --customers 100000

Builds a seeded synthetic store, trains as `outreach train` does, then times, in one run:
  * the whole score path (read the store chunk by chunk, features, policy, timing grid, propensity,
    TreeSHAP reasons, writes to the store and Parquet), with reasons for everyone and for the top 10%;
  * LightGBM alone on the exact matrix the path scored: raw `predict`, and `pred_contrib` (TreeSHAP);
  * peak memory of a scoring process at two store sizes, to show it stays flat as customers grow.
Prints every figure and the ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from app.data.synthetic import generate, load_into_store
from app.features.build import FeatureBuilder, load_history
from app.models.scoring import load_models
from app.models.training import train_and_register
from app.config import Settings
from app.services import Services

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def best_of(runs: int, action) -> float:  # noqa: ANN001
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def score_in_subprocess(url: str, explain_top: float) -> dict:
    """Score in a fresh process and report its wall time and peak resident memory."""
    code = ("import json,resource,time,sys;from datetime import datetime,timezone;"
            "from app.config import Settings;from app.services import Services;from app.models.scoring import score_all;"
            f"v=Services(Settings(_env_file=None,database_url={url!r}));t=time.perf_counter();"
            f"s=score_all(v.store,now=datetime(2026,11,1,tzinfo=timezone.utc),policy=v.contact_policy,"
            f"reasons=v.reason_table,challenger_share=0.0,chunk_size=20000,explain_top={explain_top});"
            "print(json.dumps({'seconds':time.perf_counter()-t,'peak_rss_mb':resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024,"
            "'run_id':s.run_id,'customers':s.stats['customers']}))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    args = parser.parse_args()
    result: dict = {"customers": args.customers}
    with tempfile.TemporaryDirectory() as folder:
        sizes = {}
        for n in (args.customers // 2, args.customers):
            url = f"sqlite:///{folder}/n{n}.db"
            factory = Services(Settings(_env_file=None, database_url=url, data_dir=Path(folder))).store
            load_into_store(generate(customers=n, now=NOW, seed=0), factory)
            train_and_register(factory, models_dir=Path(folder) / f"models{n}", now=NOW, actor="bench")
            sizes[n] = (url, factory)
        url, factory = sizes[args.customers]
        full = score_in_subprocess(url, 1.0)
        top = score_in_subprocess(url, 0.1)
        half = score_in_subprocess(sizes[args.customers // 2][0], 1.0)

        # The same matrix the path scored: each customer at its chosen channel, slot and product.
        from sqlalchemy import select

        from app.models.tables import Decision
        with factory() as session:
            rows = session.execute(select(Decision.customer_id, Decision.channel, Decision.slot_at, Decision.product)
                                   .where(Decision.run_id == full["run_id"], Decision.method == "model")).all()
        decisions = pd.DataFrame(rows, columns=["customer_id", "channel", "slot_at", "product"])
        model = load_models(factory, 0.0).champion.propensity
        features = FeatureBuilder(load_history(factory)).rows(decisions["customer_id"], decisions["slot_at"],
                                                              decisions["channel"], decisions["product"])
        matrix = model.prepare(features)
        raw_s = best_of(3, lambda: model.booster.predict(matrix, raw_score=True))
        contrib_s = best_of(1, lambda: model.booster.predict(matrix, pred_contrib=True))
        result.update({
            "scored_rows": len(matrix), "trees": model.booster.num_trees(),
            "score_path_seconds_all_explained": round(full["seconds"], 1),
            "score_path_seconds_top10_explained": round(top["seconds"], 1),
            "customers_per_second_all_explained": round(full["customers"] / full["seconds"]),
            "raw_predict_seconds": round(raw_s, 3), "raw_pred_contrib_seconds": round(contrib_s, 2),
            "ratio_path_all_explained_vs_raw_predict": round(full["seconds"] / raw_s, 1),
            "ratio_path_top10_explained_vs_raw_predict": round(top["seconds"] / raw_s, 1),
            "ratio_path_all_explained_vs_raw_predict_plus_contrib": round(full["seconds"] / (raw_s + contrib_s), 2),
            "ratio_path_top10_vs_raw_predict_plus_contrib_of_top10": round(top["seconds"] / (raw_s + contrib_s / 10), 2),
            f"peak_rss_mb_scoring_{args.customers // 2}": round(half["peak_rss_mb"]),
            f"peak_rss_mb_scoring_{args.customers}": round(full["peak_rss_mb"]),
        })
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
