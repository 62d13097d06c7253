"""`outreach eval uplift` and `outreach eval policy` on files a user brings: the contract of their output, the
planted effects they must recover, and bad input refused with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli import app
from app.data.uplift_history import kpi_history, uplift_history
from app.models.uplift import qini, qini_curve, uplift_at

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def uplift_files(tmp_path: Path) -> tuple[Path, Path]:
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    uplift_history(5000, 1).to_csv(train, index=False)
    uplift_history(3000, 2).to_csv(test, index=False)
    return train, test


def uplift_args(train: Path, test: Path, out: Path, *extra: str) -> list[str]:
    return ["eval", "uplift", "--train", train, "--test", test, "--treatment-col", "arm", "--treatment", "email",
            "--control", "none", "--outcome", "converted", "--drop", "true_effect", "--scores-out", out, "--json", *extra]


def test_uplift_recovers_the_planted_effects_and_keeps_the_contract(uplift_files, tmp_path: Path) -> None:
    train, test = uplift_files
    out = tmp_path / "scores.csv"
    result = invoke(*uplift_args(train, test, out))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {"uplift_at_30", "qini", "n_train", "n_test", "model"} <= set(report)
    assert report["n_train"] == 5000 and report["n_test"] == 3000
    scores, original = pd.read_csv(out), pd.read_csv(test)
    assert len(scores) == len(original) and "uplift" in scores.columns
    assert (scores["tenure"] == original["tenure"]).all()  # the test file's order
    by_segment = scores.groupby("segment")["uplift"].mean()
    assert by_segment["helps"] > 0.08 and by_segment["hurts"] < -0.03 and abs(by_segment["neutral"]) < 0.04
    assert np.corrcoef(scores["uplift"], scores["true_effect"])[0, 1] > 0.8
    # Targeting the top 30 % by predicted uplift beats contacting everyone.
    assert report["uplift_at_30"] > 2 * report["observed_uplift_test"] > 0
    assert report["qini"] > 0


def test_logged_history_is_weighted_so_the_segments_still_come_out_right(tmp_path: Path) -> None:
    train, test, out = tmp_path / "train.csv", tmp_path / "test.csv", tmp_path / "scores.csv"
    uplift_history(6000, 3, randomised=False).to_csv(train, index=False)
    uplift_history(3000, 4, randomised=False).to_csv(test, index=False)
    result = invoke(*uplift_args(train, test, out, "--model", "t"))
    assert result.exit_code == 0, result.output
    by_segment = pd.read_csv(out).groupby("segment")["uplift"].mean()
    assert by_segment["helps"] > 0.08 and by_segment["hurts"] < -0.02


def test_metrics_on_a_hand_made_ranking() -> None:
    # Four treated and four controls; the ranking puts the treated converters first.
    score = np.array([8, 7, 6, 5, 4, 3, 2, 1], dtype=float)
    treated = np.array([1, 1, 0, 0, 1, 1, 0, 0])
    y = np.array([1, 1, 0, 0, 0, 0, 1, 1], dtype=float)
    assert uplift_at(score, treated, y, 0.5) == 1.0  # top half: treated 2/2 converted, controls 0/2
    curve = qini_curve(score, treated, y)
    assert curve[2] == 2.0 and curve[-1] == 0.0  # overall, treatment and control convert alike
    assert qini(score, treated, y) > 0
    assert qini(-score, treated, y) < 0  # the reverse ranking is worse than random


def test_policy_contacts_by_predicted_impact_within_the_budget(tmp_path: Path) -> None:
    train, test, out = tmp_path / "train.csv", tmp_path / "test.csv", tmp_path / "choices.csv"
    kpi_history(9000, 5).to_csv(train, index=False)
    kpi_history(6000, 6).to_csv(test, index=False)
    result = invoke("eval", "policy", "--train", train, "--test", test, "--treatment-col", "arm", "--control", "none",
                    "--objective", "visit + 10*conversion + 0.05*spend", "--budget", "0.3", "--contact-cost", "0.1",
                    "--choices-out", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    choices = pd.read_csv(out)
    assert len(choices) == 6000 and report["contacted"] <= 0.3 * 6000
    share = pd.crosstab(choices["segment"], choices["choice"], normalize="index")
    assert share.loc["loyal"].get("none", 0) > 0.95  # contact hurts them: nobody is contacted
    assert share.loc["lapsed"].get("call", 0) > share.loc["lapsed"].get("email", 0)
    assert share.loc["young"].get("email", 0) > share.loc["young"].get("call", 0)
    assert report["policy_value"] > report["propensity_ranking_value"]
    assert report["policy_value"] > report["no_contact_value"]
    assert set(report) >= {"all_best_treatment_value", "best_treatment", "n_train", "n_test"}


def test_a_contact_cost_above_every_impact_contacts_nobody(tmp_path: Path) -> None:
    train, test, out = tmp_path / "train.csv", tmp_path / "test.csv", tmp_path / "choices.csv"
    kpi_history(3000, 7).to_csv(train, index=False)
    kpi_history(1000, 8).to_csv(test, index=False)
    result = invoke("eval", "policy", "--train", train, "--test", test, "--treatment-col", "arm", "--control", "none",
                    "--objective", "conversion", "--contact-cost", "5", "--choices-out", out, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["contacted"] == 0
    assert set(pd.read_csv(out)["choice"]) == {"none"}


@pytest.mark.parametrize("change, field", [
    (["--treatment", "sms"], "--treatment"),
    (["--outcome", "revenue"], "--outcome"),
    (["--drop", "nope"], "--drop"),
])
def test_bad_uplift_input_names_the_field_and_writes_nothing(uplift_files, tmp_path: Path, change, field) -> None:
    train, test = uplift_files
    out = tmp_path / "scores.csv"
    args = uplift_args(train, test, out)
    if change[0] in args:
        args[args.index(change[0]) + 1] = change[1]
    else:
        args += change
    result = invoke(*args)
    assert result.exit_code == 2 and change[1] in result.output
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_other_columns_and_thin_arms_are_refused(uplift_files, tmp_path: Path) -> None:
    train, test = uplift_files
    out = tmp_path / "scores.csv"
    other = tmp_path / "other.csv"
    pd.read_csv(test).drop(columns=["tenure"]).to_csv(other, index=False)
    result = invoke(*uplift_args(train, other, out))
    assert result.exit_code == 2 and "tenure" in result.output and "columns" in result.output
    thin = tmp_path / "thin.csv"
    frame = pd.read_csv(train)
    pd.concat([frame[frame.arm == "none"], frame[frame.arm == "email"].head(20)]).to_csv(thin, index=False)
    result = invoke(*uplift_args(thin, test, out))
    assert result.exit_code == 2 and "only 20 rows" in result.output and "50" in result.output
    assert not out.exists()


def test_a_formula_naming_an_unknown_column_or_code_is_refused(tmp_path: Path) -> None:
    train, test, out = tmp_path / "train.csv", tmp_path / "test.csv", tmp_path / "choices.csv"
    kpi_history(600, 9).to_csv(train, index=False)
    kpi_history(300, 10).to_csv(test, index=False)
    for formula, says in (("visit + 10*revenue", "'revenue'"), ("__import__('os').system('true')", "only columns")):
        result = invoke("eval", "policy", "--train", train, "--test", test, "--treatment-col", "arm", "--control", "none",
                        "--objective", formula, "--choices-out", out, "--json")
        assert result.exit_code == 2 and "--objective" in result.output and says in result.output
    assert not out.exists()


@pytest.mark.slow
def test_uplift_on_a_real_file(bank_file: Path, tmp_path: Path) -> None:
    """Bank Marketing's logged channel (cellular against telephone) as the treatment: runs on real, messy data."""
    frame = pd.read_csv(bank_file, sep=";").sample(12000, random_state=0)
    frame = frame[frame["contact"].isin(["cellular", "telephone"])]
    train, test, out = tmp_path / "train.csv", tmp_path / "test.csv", tmp_path / "scores.csv"
    frame.iloc[: len(frame) * 2 // 3].to_csv(train, index=False)
    frame.iloc[len(frame) * 2 // 3:].to_csv(test, index=False)
    result = invoke("eval", "uplift", "--train", train, "--test", test, "--treatment-col", "contact",
                    "--treatment", "cellular", "--control", "telephone", "--outcome", "y", "--drop", "duration",
                    "--scores-out", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n_test"] == len(pd.read_csv(out)) and np.isfinite(report["qini"])
