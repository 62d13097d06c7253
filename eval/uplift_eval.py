"""Uplift and policy figures for issue 14, on synthetic histories with planted effects and on a real file.

    .venv/bin/python eval/uplift_eval.py [--out eval/reports/uplift_eval.json]

- synthetic, randomised and logged: `eval uplift` on a fresh test file, beside the planted truth (the same
  metrics with the true effect as the score: the best any model could do on that sample);
- synthetic, three arms and three KPIs: `eval policy` with a 30 % budget and a contact cost, beside its baselines;
- Bank Marketing: the logged channel (cellular against telephone) as the treatment, a stratified 25 % test split.
Each run is the same code path as the commands (`app/models/uplift.py`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from app.data.uplift_history import kpi_history, uplift_history
from app.models.uplift import evaluate_policy, evaluate_uplift, qini, uplift_at

ROOT = Path(__file__).resolve().parents[1]
BANK = ROOT.parent / "shared" / "data" / "bank-marketing" / "bank-full.csv"


def synthetic_uplift(folder: Path, randomised: bool) -> dict:
    train, test, out = folder / "train.csv", folder / "test.csv", folder / "scores.csv"
    uplift_history(20000, 11, randomised).to_csv(train, index=False)
    truth = uplift_history(10000, 12, randomised)
    truth.to_csv(test, index=False)
    report = evaluate_uplift(train, test, treatment_col="arm", treatment="email", control="none", outcome="converted",
                             drop=["true_effect"], scores_out=out)
    scores = pd.read_csv(out)
    treated, y = (truth["arm"] == "email").to_numpy(), truth["converted"].to_numpy(float)
    report["planted_truth"] = {"uplift_at_30": uplift_at(truth["true_effect"].to_numpy(), treated, y),
                               "qini": qini(truth["true_effect"].to_numpy(), treated, y)}
    report["correlation_with_true_effect"] = float(np.corrcoef(scores["uplift"], truth["true_effect"])[0, 1])
    report["mean_uplift_by_segment"] = scores.groupby("segment")["uplift"].mean().round(4).to_dict()
    report["true_effect_by_segment"] = truth.groupby("segment")["true_effect"].mean().round(4).to_dict()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "reports" / "uplift_eval.json")
    args = parser.parse_args()
    report: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        report["synthetic_randomised"] = synthetic_uplift(tmp, True)
        report["synthetic_logged"] = synthetic_uplift(tmp, False)
        kpi_history(20000, 13).to_csv(tmp / "ptrain.csv", index=False)
        kpi_history(10000, 14).to_csv(tmp / "ptest.csv", index=False)
        report["synthetic_policy"] = evaluate_policy(
            tmp / "ptrain.csv", tmp / "ptest.csv", treatment_col="arm", control="none",
            objective="visit + 10*conversion + 0.05*spend", budget=0.3, contact_cost=0.1, choices_out=tmp / "c.csv")
        if BANK.exists():
            bank = pd.read_csv(BANK, sep=";")
            bank = bank[bank["contact"].isin(["cellular", "telephone"])]
            train, test = train_test_split(bank, test_size=0.25, stratify=bank["y"], random_state=0)
            train.to_csv(tmp / "btrain.csv", index=False)
            test.to_csv(tmp / "btest.csv", index=False)
            report["bank_marketing_channel"] = evaluate_uplift(
                tmp / "btrain.csv", tmp / "btest.csv", treatment_col="contact", treatment="cellular",
                control="telephone", outcome="y", drop=["duration"], scores_out=tmp / "bscores.csv")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
