"""The intent classifier on banking77 (PolyAI): closed set, and with intents held out as out of scope.

    .venv/bin/python eval/intents_eval.py [--out eval/reports/intents_eval.json]

- all 77 intents, the published train/test split (published: fine-tuned BERT 93.7 %, USE+ConveRT 93.4 %);
- 57 intents known, the other 20 (a seeded random choice) never seen in training and labelled out of scope in
  the test file: how many messages about something else are caught, and what that costs in scope.
Both run `outreach intents eval`'s code path (app/intents/classifier.py).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

import pandas as pd

from app.config import Settings
from app.intents.classifier import evaluate
from app.services import Services

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "banking77"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "reports" / "intents_eval.json")
    parser.add_argument("--unseen", type=int, default=20, help="intents held out as out of scope")
    args = parser.parse_args()
    embedder = Services(Settings(_env_file=None, data_dir=ROOT / "data")).embedder
    report = {"closed_set_77": evaluate(DATA / "train.csv", DATA / "test.csv", embedder, label_col="category")}
    train, test = pd.read_csv(DATA / "train.csv"), pd.read_csv(DATA / "test.csv")
    rng = random.Random(0)
    unseen = set(rng.sample(sorted(train.category.unique()), args.unseen))
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        train[~train.category.isin(unseen)].to_csv(tmp / "train.csv", index=False)
        test.assign(category=test.category.where(~test.category.isin(unseen), "oos")).to_csv(tmp / "test.csv", index=False)
        report[f"known_{77 - args.unseen}_unseen_{args.unseen}_as_oos"] = evaluate(
            tmp / "train.csv", tmp / "test.csv", embedder, label_col="category")
    report["unseen_intents"] = sorted(unseen)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
