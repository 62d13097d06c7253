"""`outreach changes triage --file REQUESTS.jsonl --json`: the contract of each output line, several changes in
one message, the values normalised and masked, the account-takeover pattern held for a person, bad lines named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.changes.extract import extract, iban_valid
from app.cli import app
from app.config import get_settings

runner = CliRunner()
KEYS = {"id", "change_type", "changes", "confidence", "verification", "risk", "route"}


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def triage(tmp_path: Path, requests: list[dict]) -> list[dict]:
    file = tmp_path / "requests.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in requests))
    result = runner.invoke(app, ["changes", "triage", "--file", str(file), "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_each_line_keeps_the_contract_and_the_risky_ones_go_to_a_person(cli_env: Path) -> None:
    out = triage(cli_env, [
        {"id": "r1", "channel": "email", "text": "Please change my mobile number to 07700 900123.",
         "context": {"country": "GB"}},
        {"id": "r2", "channel": "chat", "text": "Update my email to ana@fabrikam.example and reduce us to 12 seats."},
        {"id": "r3", "channel": "email", "text": "Send our payouts to IBAN GB33BUKB20201555555555 from today, urgently.",
         "context": {"recent_changes": [{"type": "contact_email", "days_ago": 1}], "new_device": True}},
        {"id": "r4", "channel": "chat", "text": "How do I download last month's invoice?"},
    ])
    assert [o["id"] for o in out] == ["r1", "r2", "r3", "r4"] and all(KEYS <= set(o) for o in out)
    phone, both, payout, question = out
    assert phone["change_type"] == "contact_phone" and phone["verification"] == "code_to_contact_on_file"
    assert phone["changes"][0]["extracted"]["phone"] == "+44****123"  # E.164, masked
    assert {c["type"] for c in both["changes"]} == {"contact_email", "seats_change"}
    assert payout["change_type"] == "payment_method" and payout["route"] == "review"
    assert payout["risk"]["level"] == "high" and "takeover_pattern" in payout["risk"]["signals"]
    assert payout["changes"][0]["extracted"]["iban"] == "GB33 **** 5555"  # never shown whole
    assert question["change_type"] == "not_a_change" and question["changes"] == []


def test_a_bad_line_is_named_and_nothing_is_triaged(cli_env: Path) -> None:
    file = cli_env / "bad.jsonl"
    file.write_text(json.dumps({"id": "a", "channel": "chat", "text": "cancel"}) + "\n"
                    + json.dumps({"id": "b", "channel": "chat", "text": "   "}) + "\n")
    result = runner.invoke(app, ["changes", "triage", "--file", str(file), "--json"])
    assert result.exit_code == 2 and "line 2" in result.output and "text" in result.output
    assert "Traceback" not in result.output and '"change_type"' not in result.output
    missing = runner.invoke(app, ["changes", "triage", "--file", str(cli_env / "nope.jsonl")])
    assert missing.exit_code == 2 and "--file" in missing.output


def test_values_are_normalised_and_checked() -> None:
    values = extract("New number +1 415 555 0132, email J.Doe@Contoso.example, IBAN DE89 3704 0044 0532 0130 00, "
                     "VAT number GB123456789, we need 25 seats.", "US")
    assert values.phones == ["+14155550132"] and values.emails == ["j.doe@contoso.example"]
    assert values.ibans == ["DE89370400440532013000"] and values.vats == ["GB123456789"] and values.seats == 25
    assert iban_valid("GB33BUKB20201555555555") and not iban_valid("GB34BUKB20201555555555")  # one digit off
    assert extract("call me on 07700 9OO123", "GB").phones == []  # letters are not a phone number
