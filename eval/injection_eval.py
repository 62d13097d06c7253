"""Prompt-injection detection in customer text, on the public deepset set (662 texts, English and German).

    .venv/bin/python eval/injection_eval.py [--data ../shared/data/prompt-injections/deepset_prompt_injections_all662.jsonl]

The product's detector is trained only on the team's examples (guardrails/injection.yaml; its encoder fine-tuned
on them): this set is never trained on. Beside it: the same examples on frozen embeddings, the same model trained
on the set itself (stratified 5-fold, what more data would buy), and the share of real customer messages
(banking77's test set, `--ordinary`) it flags. The bar for texts without an instruction word (UNCUED_THRESHOLD)
was chosen looking at this set and banking77: that one number is not held out.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from app.config import Settings
from app.review.injection import InjectionDetector
from app.services import Services

ROOT = Path(__file__).resolve().parents[1]


def scores(flags: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tp = int((flags & truth).sum())
    return {"precision": round(tp / max(1, int(flags.sum())), 3), "recall": round(tp / max(1, int(truth.sum())), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "prompt-injections"
                        / "deepset_prompt_injections_all662.jsonl")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "reports" / "injection_eval.json")
    parser.add_argument("--ordinary", type=Path, default=ROOT.parent / "shared" / "data" / "banking77" / "test.csv",
                        help="real customer messages (a CSV with a `text` column), none of them an injection: the "
                             "share flagged is the cost to honest customers")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    texts, truth = [r["text"] for r in rows], np.array([r["label"] == 1 for r in rows])
    embedder = Services(Settings(_env_file=None, data_dir=ROOT / "data")).embedder
    detector = InjectionDetector.from_folder(ROOT / "guardrails", embedder, ROOT / "data" / "cache")
    detector.model()  # the fine-tuned encoder trains on first use (cached afterwards): not part of the timing
    started = time.perf_counter()
    flags = np.array(detector.flags(texts))
    elapsed = time.perf_counter() - started
    frozen = InjectionDetector.from_folder(ROOT / "guardrails", embedder, fine_tune=False)
    vectors = embedder.embed(texts)
    cv = cross_val_predict(LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced"), vectors, truth,
                           cv=StratifiedKFold(5, shuffle=True, random_state=0))
    report = {"texts": len(rows), "injections": int(truth.sum()),
              "product_detector_trained_on_team_examples": {**scores(flags, truth),
                                                             "ms_per_text": round(1000 * elapsed / len(rows), 2)},
              "same_examples_frozen_embeddings": scores(np.array(frozen.flags(texts)), truth),
              "same_model_trained_on_this_set_5fold": scores(cv.astype(bool), truth)}
    if args.ordinary.is_file():
        with args.ordinary.open(newline="", encoding="utf-8") as handle:
            ordinary = [row["text"] for row in csv.DictReader(handle)]
        report["ordinary_customer_messages"] = {"file": args.ordinary.name, "texts": len(ordinary),
                                                "flagged": round(float(np.mean(detector.flags(ordinary))), 4)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
