"""Do the product's uplift models recover the effects planted in the synthetic history?

Generates a seeded history (its planted truth: each customer's product of interest, whose recent views raise the
response to an offer of it, and a segment, enterprise IT, that loses purchases after any contact), trains as
`outreach train` does, scores every customer with the objectives file, and reports:

- per segment: the mean predicted value of the best objective net of the contact cost and the share of the
  judged customers it leaves uncontacted (below the cost): the planted segment should stand out;
- among contacted customers who viewed a product in the last 14 days (where the planted view effect makes one
  offer better than the others: the one viewed most recently), the share whose objective is that product,
  against the share a random choice among the objectives would reach;
- the uplift models' own training figures (observed effect per objective on the comparison rows).

    .venv/bin/python eval/objectives_eval.py --customers 20000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from unittest.mock import patch

import pandas as pd

from app.config import Settings
from app.data.synthetic import CONTACT_HURTS, generate, load_into_store
from app.features.build import load_history
from app.models.objectives import load_objectives
from app.models.reasons import load_reason_table
from app.models.scoring import decide, load_models
from app.models.training import train_and_register
from app.policy.rules import load_policy
from app.services import Services

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "reports" / "objectives_eval.json")
    args = parser.parse_args()
    objectives = load_objectives()
    with tempfile.TemporaryDirectory() as folder:
        factory = Services(Settings(_env_file=None, data_dir=Path(folder))).store
        started = time.perf_counter()
        synthetic = generate(customers=args.customers, now=NOW, seed=args.seed)
        load_into_store(synthetic, factory)
        trained = train_and_register(factory, models_dir=Path(folder) / "models", now=NOW, actor="eval", seed=args.seed)
        train_s = time.perf_counter() - started
        history = load_history(factory)
        models = load_models(factory, 0.0)
        run = partial(decide, history, now=NOW, policy=load_policy(), models=models, reasons=load_reason_table(),
                      objectives=objectives)
        started = time.perf_counter()
        frame, stats = run()
        decide_s = time.perf_counter() - started
        # The same decisions without naming the runner-up's customer fact: what that explanation costs.
        with patch("app.models.scoring.name_runner_up_facts", lambda *args, **kwargs: None):
            started = time.perf_counter()
            run()
            decide_without_fact_s = time.perf_counter() - started
    runner_ups = [i["alternatives"][0] for i in frame.loc[frame["status"] == "recommended", "impact"] if i["alternatives"] and i["alternatives"][0]["value"] is not None]
    because = pd.Series([a.get("because") for a in runner_ups]).value_counts(normalize=True).round(3).head(5).to_dict()
    truth = synthetic.customer_truth.set_index("customer_id")
    frame = frame.join(truth, on="customer_id").join(synthetic.customers.set_index("id")[["segment"]], on="customer_id")
    judged = frame[frame["impact"].notna()].copy()
    judged["value"] = judged["impact"].map(lambda i: i["value"])
    by_segment = judged.groupby("segment").agg(customers=("value", "size"), mean_value=("value", "mean"),
                                               below_cost=("value", lambda v: float((v <= 0).mean())))
    contacted = frame[frame["status"] == "recommended"]
    views = synthetic.events[(synthetic.events["type"] == "product_view")
                             & (synthetic.events["occurred_at"] >= pd.Timestamp(NOW) - pd.Timedelta(days=14))]
    latest = views.sort_values("occurred_at").drop_duplicates("customer_id", keep="last").set_index("customer_id")["product"]
    viewed = contacted[contacted["customer_id"].isin(latest.index)]
    hits = (viewed["objective"].to_numpy() == latest.reindex(viewed["customer_id"]).to_numpy()).mean()
    chance = 1 / len(objectives[0].objectives)
    report = {
        "customers": args.customers, "objectives_version": objectives[1],
        "planted": {"interest_product": "views of the product of interest raise the response to an offer of it",
                    "contact_hurts": CONTACT_HURTS},
        "by_segment": by_segment.round(4).reset_index().to_dict("records"),
        "planted_hurt_segment_below_cost": float(by_segment.loc[CONTACT_HURTS["segment"], "below_cost"]),
        "other_segments_below_cost": float((judged[judged["segment"] != CONTACT_HURTS["segment"]]["value"] <= 0).mean()),
        "contacted": int(len(contacted)), "holdout": int((frame["status"] == "holdout").sum()),
        "contacted_with_a_view_in_14_days": int(len(viewed)),
        "objective_is_the_product_viewed_last": float(hits), "random_objective_would_be": chance,
        "uplift_training": trained.metrics.get("uplift"),
        "decision_counts": {k: v for k, v in stats.items() if k.startswith("rule:") or k in ("holdout", "recommended")},
        "seconds_generate_and_train": round(train_s, 1),
        "runner_up_fact_named": because,
        "seconds_decide": round(decide_s, 1), "seconds_decide_without_runner_up_fact": round(decide_without_fact_s, 1),
        "runner_up_fact_cost_ratio": round(decide_s / decide_without_fact_s, 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({k: v for k, v in report.items() if k != "uplift_training"}, indent=2, default=str))


if __name__ == "__main__":
    main()
