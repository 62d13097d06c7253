"""The taxonomy's classifier (script_library/intents.yaml) on customer messages it never saw.

    .venv/bin/python eval/intents_taxonomy_eval.py [--out eval/reports/intents_taxonomy_eval.json]

`eval/intents_taxonomy_set.yaml` was written after the taxonomy and is not trained on. Reported: accuracy,
accuracy per intent, recall of `other` (messages about something else), in-scope messages wrongly `other`,
how many of the taxonomy's own counter-examples are given the intent they are a counter-example of, and the
latency of one classification (embedding included).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

from app.config import Settings
from app.services import Services

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=ROOT / "eval" / "intents_taxonomy_set.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "reports" / "intents_taxonomy_eval.json")
    args = parser.parse_args()
    service = Services(Settings(_env_file=None, data_dir=ROOT / "data")).intents
    service.model()
    other = service.taxonomy.other
    rows = yaml.safe_load(args.set.read_text())
    by_intent, timings, wrong = defaultdict(list), [], []
    for intent, text in rows:
        started = time.perf_counter()
        found = service.classify(text)
        timings.append((time.perf_counter() - started) * 1000)
        by_intent[intent].append(found.intent == intent)
        if found.intent != intent:
            wrong.append({"expected": intent, "got": found.intent, "confidence": round(found.confidence, 2), "text": text})
    in_scope = [ok for intent, oks in by_intent.items() if intent != other for ok in oks]
    counter = [(spec.name, c) for spec in service.taxonomy.intents.values() for c in spec.counter_examples]
    crossed = [{"intent": name, "text": c} for name, c in counter if service.classify(c).intent == name]
    report = {
        "messages": len(rows), "taxonomy_version": service.taxonomy.version,
        "accuracy": round(float(np.mean([ok for oks in by_intent.values() for ok in oks])), 3),
        "in_scope_accuracy": round(float(np.mean(in_scope)), 3),
        "other_recall": round(float(np.mean(by_intent[other])), 3) if by_intent.get(other) else None,
        "in_scope_wrongly_other": sum(1 for w in wrong if w["got"] == other and w["expected"] != other),
        "by_intent": {k: round(float(np.mean(v)), 3) for k, v in sorted(by_intent.items())},
        "counter_examples_given_their_intent": f"{len(crossed)} of {len(counter)}", "crossed": crossed,
        "p50_ms": round(float(np.percentile(timings, 50)), 1), "p95_ms": round(float(np.percentile(timings, 95)), 1),
        "wrong": wrong,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
