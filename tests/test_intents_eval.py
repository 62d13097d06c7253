"""`outreach intents eval` on the user's own files (CSV or JSON Lines): the contract of its output, out-of-scope
messages caught, and bad files refused with the field named."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli import app

runner = CliRunner()
BANKING77 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "banking77"
KNOWN = ["card_arrival", "exchange_rate", "lost_or_stolen_card", "top_up_failed", "cash_withdrawal_charge",
         "pin_blocked", "terminate_account", "edit_personal_details"]
UNSEEN = ["apple_pay_or_google_pay", "wrong_exchange_rate_for_cash_withdrawal"]


@pytest.fixture(scope="module")
def banking_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if not (BANKING77 / "train.csv").exists():
        pytest.skip(f"banking77 is not at {BANKING77}")
    folder = tmp_path_factory.mktemp("intents")
    train = pd.read_csv(BANKING77 / "train.csv")
    test = pd.read_csv(BANKING77 / "test.csv")
    train = train[train.category.isin(KNOWN)].groupby("category").head(40)
    test = test[test.category.isin(KNOWN + UNSEEN)].groupby("category").head(15)
    test = test.assign(category=test.category.where(test.category.isin(KNOWN), "oos"))
    train.rename(columns={"category": "intent"}).to_csv(folder / "train.csv", index=False)
    test.rename(columns={"category": "intent"}).to_json(folder / "test.jsonl", orient="records", lines=True)
    return folder / "train.csv", folder / "test.jsonl"


def invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_intents_eval_keeps_its_contract_and_catches_messages_about_something_else(banking_files) -> None:
    train, test = banking_files
    result = invoke("intents", "eval", "--train", train, "--test", test, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {"accuracy", "in_scope_accuracy", "oos_recall", "macro_f1", "n_train", "n_test", "p95_ms"} <= set(report)
    assert report["n_train"] == 8 * 40 and report["n_test"] == 10 * 15
    assert report["in_scope_accuracy"] > 0.8  # eight distinct banking intents, 40 examples each
    assert report["oos_recall"] > 0.2  # two intents it never saw: at least some are caught as out of scope
    assert report["in_scope_wrongly_oos"] < 0.15
    assert 0 < report["p95_ms"] < 1000


def test_other_column_names_and_an_oos_label_of_your_own(banking_files, tmp_path: Path) -> None:
    train, test = banking_files
    renamed = tmp_path / "train.csv"
    pd.read_csv(train).rename(columns={"text": "message", "intent": "label"}).to_csv(renamed, index=False)
    other_test = tmp_path / "test.csv"
    frame = pd.read_json(test, lines=True).rename(columns={"text": "message", "intent": "label"})
    frame.assign(label=frame.label.replace("oos", "none_of_these")).to_csv(other_test, index=False)
    result = invoke("intents", "eval", "--train", renamed, "--test", other_test, "--text-col", "message",
                    "--label-col", "label", "--oos-label", "none_of_these", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["oos_recall"] is not None


def test_bad_files_name_the_field(banking_files, tmp_path: Path) -> None:
    train, test = banking_files
    result = invoke("intents", "eval", "--train", train, "--test", test, "--label-col", "category", "--json")
    assert result.exit_code == 2 and "--label-col" in result.output and "'category'" in result.output
    empty = tmp_path / "empty.csv"
    empty.write_text("text,intent\nhello,greeting\n,greeting\nbye,farewell\nsee you,farewell\n")
    result = invoke("intents", "eval", "--train", empty, "--test", test, "--json")
    assert result.exit_code == 2 and "row 2" in result.output
    thin = tmp_path / "thin.csv"
    thin.write_text("text,intent\nhello,greeting\nhi there,greeting\nbye,farewell\n")
    result = invoke("intents", "eval", "--train", thin, "--test", test, "--json")
    assert result.exit_code == 2 and "'farewell'" in result.output and "at least 2" in result.output
    result = invoke("intents", "eval", "--train", tmp_path / "missing.csv", "--test", test, "--json")
    assert result.exit_code == 2 and "no such file" in result.output


def test_intents_classify_reads_a_message_with_the_company_taxonomy(tmp_path: Path, monkeypatch) -> None:
    from app.config import get_settings

    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        result = invoke("intents", "classify", "Could you send me a quote for 40 seats on the yearly plan?", "--json")
        assert result.exit_code == 0, result.output
        found = json.loads(result.output)
        assert found["intent"] == "pricing_question" and found["route"] == "handoff_to_owner"
        from app.intents.taxonomy import Taxonomy

        taxonomy = Taxonomy.load(Path(__file__).resolve().parents[1] / "script_library" / "intents.yaml")
        assert found["taxonomy_version"] == taxonomy.version
        off_topic = json.loads(invoke("intents", "classify", "Which bicycle should I buy for my daughter?", "--json").output)
        assert off_topic["intent"] == "other" and off_topic["route"] == "none"
        empty = invoke("intents", "classify", "   ", "--json")
        assert empty.exit_code == 2 and "text: is empty" in empty.output
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("edit, says", [
    (("threshold: 0.45", "threshold: 4.5"), "threshold must be a probability"),
    (("severity: medium", "severity: urgent"), "severity must be one of"),
    (("version: 2026-11-23.3", "version:"), "needs a `version`"),
])
def test_a_broken_taxonomy_names_the_file_and_the_field(tmp_path: Path, edit, says) -> None:
    from app.intents.taxonomy import Taxonomy, TaxonomyError

    source = Path(__file__).resolve().parents[1] / "script_library" / "intents.yaml"
    broken = tmp_path / "intents.yaml"
    broken.write_text(source.read_text().replace(*edit, 1))
    with pytest.raises(TaxonomyError) as error:
        Taxonomy.load(broken)
    assert str(broken) in str(error.value) and says in str(error.value)
    assert Taxonomy.load(source).other == "other" and len(Taxonomy.load(source).intents) >= 12
