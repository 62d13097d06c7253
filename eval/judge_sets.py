"""The learned judge on the labelled sentences of the category sets, sentence by sentence, fine-tuned vs frozen.

    .venv/bin/python eval/judge_sets.py [--out eval/reports/judge_sets.json] [eval/guardrail_categories_fresh5.yaml ...]

The judge is trained on all of guardrails/judge.yaml (the product's judge, fine-tuned encoder from the model cache)
and, for comparison, on the same sentences with frozen embeddings (the judge before fine-tuning). For each set
(`[label, category, sentence]` rows, none of them in judge.yaml): ROC AUC of the risk score, and the share of
risky and of clean sentences reaching the file's review and block thresholds. Whole messages through every
validator are eval/guardrail_eval.py's job; this isolates the judge.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml
from sklearn.metrics import roc_auc_score

from app.config import Settings
from app.review.judge import Judge, JudgeData
from app.services import Services

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", type=Path,
                        default=sorted((ROOT / "eval").glob("guardrail_categories_fresh*.yaml")))
    parser.add_argument("--judge", type=Path, default=ROOT / "guardrails" / "judge.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "reports" / "judge_sets.json")
    args = parser.parse_args()
    data = JudgeData.load(args.judge)
    base = Services(Settings(_env_file=None, data_dir=ROOT / "data")).embedder
    judges = {"fine_tuned": Judge(data, base, ROOT / "data" / "cache"), "frozen": Judge(data, base, fine_tune=False)}
    report: dict = {"thresholds": {"review": data.review, "block": data.block}, "sets": {}}
    for path in args.sets:
        rows = yaml.safe_load(path.read_text())
        risky = np.array([label != "clean" for label, _, _ in rows])
        sentences = [sentence for _, _, sentence in rows]
        report["sets"][path.name] = {"risky": int(risky.sum()), "clean": int((~risky).sum())}
        for name, judge in judges.items():
            risk = np.array([j.risk for j in judge.scores(judge.embed(sentences))])
            share = lambda mask, at: round(float((risk[mask] >= at).mean()), 3)  # noqa: E731
            report["sets"][path.name][name] = {
                "roc_auc": round(float(roc_auc_score(risky, risk)), 3),
                "risky_held": share(risky, data.review), "risky_blocked": share(risky, data.block),
                "clean_held": share(~risky, data.review), "clean_blocked": share(~risky, data.block)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
