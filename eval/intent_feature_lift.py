"""Does what customers say in service conversations improve the lead score? A pre/post comparison on one split.

The same propensity model (LightGBM, the product's monotone constraints, Platt-calibrated) is trained twice on the
same time-ordered split of a synthetic history: once without the intent group (intent counts in the last 14
days, conversation counts and recency: app/features/build.py INTENT_FEATURES), once with it. Printed: held-out
ROC AUC and top-decile precision of each, and the lift; and the AUC on the attempts that followed a conversation
within 14 days (the only rows the intent group can tell apart). The synthetic generator plants intent effects
(pricing +0.8, upsell +0.6, complaint -0.6 on the log-odds of a response, app/data/synthetic.py), so this
measures whether the pipeline carries that signal from events to score; it says nothing about how strong such
effects are in a real business.

    python eval/intent_feature_lift.py [--customers 6000] [--seed 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.data.synthetic import generate, load_into_store  # noqa: E402
from app.features.build import INTENT_FEATURES, load_history, training_frame  # noqa: E402
from app.models.propensity import evaluate, train_propensity  # noqa: E402
from app.models.training import DEFAULT_MONOTONE, time_split  # noqa: E402
from app.store.db import open_store  # noqa: E402

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def run(customers: int, seed: int) -> dict:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        factory = open_store(f"sqlite:///{Path(folder) / 'outreach.db'}")
        load_into_store(generate(customers=customers, now=NOW, seed=seed), factory)
        history = load_history(factory)
        factory.kw["bind"].dispose()
    features, target, times = training_frame(history)
    train, test = time_split(times, 0.2)
    y = target[test].astype(int).to_numpy()
    # Few attempts follow a conversation closely: the lift lives there, so it is also shown on those rows alone.
    intent_counts = [c for c in INTENT_FEATURES if c.endswith("_14d") and c in features.columns]
    spoke = (features.loc[test, intent_counts].sum(axis=1) > 0).to_numpy()
    results = {}
    for name, columns in (("without_intents", [c for c in features.columns if c not in INTENT_FEATURES]),
                          ("with_intents", list(features.columns))):
        monotone = {k: v for k, v in DEFAULT_MONOTONE.items() if k in columns}
        model, _ = train_propensity(features.loc[train, columns], target[train], seed=seed, monotone=monotone)
        probability = model.predict(features.loc[test, columns])
        top = np.argsort(-probability, kind="stable")[: max(1, len(y) // 10)]
        metrics = evaluate(probability, y)
        results[name] = {"roc_auc": round(metrics["roc_auc"], 4), "top_decile_precision": round(float(y[top].mean()), 4),
                         "features": len(columns),
                         "roc_auc_after_a_conversation": round(float(roc_auc_score(y[spoke], probability[spoke])), 4)
                         if 0 < y[spoke].sum() < spoke.sum() else None}
    before, after = results["without_intents"], results["with_intents"]
    return {
        "data": f"synthetic history, {customers} customers, seed {seed}", "attempts_train": int(train.sum()),
        "attempts_test": int((~train).sum()), "base_rate_test": round(float(y.mean()), 4),
        "test_attempts_after_a_conversation": int(spoke.sum()),
        "intent_features": [c for c in INTENT_FEATURES if c in features.columns], **results,
        "auc_lift": round(after["roc_auc"] - before["roc_auc"], 4),
        "top_decile_precision_ratio": round(after["top_decile_precision"] / max(before["top_decile_precision"], 1e-9), 3),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.customers, args.seed)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>28}: {value}")


if __name__ == "__main__":
    main()
