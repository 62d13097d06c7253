"""How well the learned judge (guardrails/judge.yaml) does on wording it was not trained on.

    .venv/bin/python eval/judge_eval.py [--out eval/reports/judge_eval.json] [--frozen] [--no-held-out]

The judge is trained the product's way in every fold (the encoder fine-tuned on the fold's sentences, then the
heads; about three minutes a fold on two cores, 18 folds); `--frozen` skips the fine-tuning (the judge before it);
`--no-held-out` runs the 5 cross-validation folds only (what the thresholds are set on).
Two views, both on the team's own labelled sentences, never on a test set:
- stratified 5-fold cross-validation: per category, the share of its sentences judged risky (held) and judged
  risky at the block threshold (blocked); for the hard negatives, the share wrongly held;
- categories held out in turn: the judge is trained without one category's sentences and asked about them,
  which says how it does on a kind of risk nobody wrote examples for.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from app.config import Settings
from app.review.judge import CLEAN, JudgeData, fit
from app.review.tuned import TunedEncoder
from app.services import Services

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judge", type=Path, default=ROOT / "guardrails" / "judge.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "reports" / "judge_eval.json")
    parser.add_argument("--frozen", action="store_true", help="the judge on frozen embeddings (no fine-tuning)")
    parser.add_argument("--no-held-out", action="store_true", help="skip the categories-held-out-in-turn view")
    args = parser.parse_args()
    data = JudgeData.load(args.judge)
    texts, labels = data.labelled()
    base = Services(Settings(_env_file=None, data_dir=ROOT / "data")).embedder
    y = np.array(labels)

    def trained(train: np.ndarray) -> tuple:
        """The judge trained on the sentences `train` (indices), the product's way: (its heads, every sentence
        through this fold's encoder, fine-tuned in a temporary folder and kept in memory)."""
        encoder = TunedEncoder("judge-fold", base, [texts[i] for i in train], list(y[train]), None,
                               tune=not args.frozen)
        vectors = encoder.embed(texts)
        return fit(vectors[train], list(y[train])), vectors

    risky = np.zeros(len(y))
    watched = [c for c in data.categories if c.review_at is not None]
    own = {c.name: np.zeros(len(y)) for c in watched}  # each watched category's own probability
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(np.zeros(len(y)), y):
        model, vectors = trained(train)
        risky[test] = model.risk(vectors[test])
        probabilities = model.category.predict_proba(vectors[test])
        for c in watched:
            own[c.name][test] = probabilities[:, list(model.category.classes_).index(c.name)]
    report: dict = {"sentences": len(y), "judge": "frozen embeddings" if args.frozen else "fine-tuned encoder",
                    "thresholds": {"block": data.block, "review": data.review},
                    "cross_validated": {}, "category_held_out": {}}
    for name in [c.name for c in data.categories] + [CLEAN]:
        mine = risky[y == name]
        report["cross_validated"][name] = {"sentences": int(len(mine)), "held": round(float((mine >= data.review).mean()), 3),
                                           "blocked": round(float((mine >= data.block).mean()), 3)}
    report["cross_validated_roc_auc"] = round(float(roc_auc_score(y != CLEAN, risky)), 3)
    # Categories held also by their own probability (review_at): what that adds, and what it costs.
    held_any = risky >= data.review
    for c in watched:
        held_any = held_any | (own[c.name] >= c.review_at)
        report["cross_validated"][c.name]["held_with_review_at"] = round(float(held_any[y == c.name].mean()), 3)
    report["cross_validated"][CLEAN]["held_with_review_at"] = round(float(held_any[y == CLEAN].mean()), 3)
    # Where the thresholds would sit for a given share of honest sentences wrongly held or blocked: how the
    # file's thresholds were chosen (review near 5 %, block near 1 %).
    clean_risk = risky[y == CLEAN]
    report["thresholds_for_clean_share"] = {f"{share:.0%}": round(float(np.quantile(clean_risk, 1 - share)), 3)
                                            for share in (0.01, 0.03, 0.05, 0.10)}
    for category in [] if args.no_held_out else data.categories:
        keep = y != category.name
        model, vectors = trained(np.flatnonzero(keep))
        p = model.risk(vectors[~keep])
        report["category_held_out"][category.name] = {"held": round(float((p >= data.review).mean()), 3),
                                                      "blocked": round(float((p >= data.block).mean()), 3)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
