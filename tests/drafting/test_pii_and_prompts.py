"""PII masking and the prompt files: what the model is allowed to see, and how prompts are versioned."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.drafting.pii import Masker
from app.drafting.prompts import PromptError, PromptSet
from tests.conftest import ROOT


def test_masking_replaces_known_and_found_identifiers_and_restores_them() -> None:
    masker = Masker({"FIRST_NAME": "Ana", "LAST_NAME": "Lima", "EMAIL": "ana@x.org", "PHONE": "+351 912 345 678"})
    text = ("Ana Lima wrote from ana@x.org and bob@y.com, call +351 912 345 678 or 020 7946 0958, "
            "card 4111 1111 1111 1111, account 12345678; renewal on 2026-11-01 for 20 seats.")
    masked = masker.mask(text)
    for secret in ("Ana", "Lima", "ana@x.org", "bob@y.com", "912 345 678", "7946", "4111", "12345678"):
        assert secret not in masked
    assert "[FIRST_NAME] [LAST_NAME]" in masked and "[EMAIL_1]" in masked
    assert "2026-11-01" in masked and "20 seats" in masked  # dates and small numbers are not identifiers
    assert masker.unmask(masked) == text


def test_masking_respects_word_boundaries_and_reports_invented_placeholders() -> None:
    masker = Masker({"FIRST_NAME": "Al"})
    assert masker.mask("Al called about Alpha") == "[FIRST_NAME] called about Alpha"
    assert masker.unknown_placeholders("Hi [FIRST_NAME], I am [REP_NAME]") == ["[REP_NAME]"]


def test_prompt_version_has_number_and_content_hash(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "prompts", tmp_path / "prompts")
    before = PromptSet.load(tmp_path / "prompts", "rewrite")
    assert before.version.startswith("rewrite-v1.1.1+")
    path = tmp_path / "prompts" / "rewrite.user.j2"
    path.write_text(path.read_text() + "\nBe brief.")
    after = PromptSet.load(tmp_path / "prompts", "rewrite")
    assert after.version != before.version  # an edit without a version bump still changes the version
    opening = PromptSet.load(tmp_path / "prompts", "opening")
    assert opening.examples and opening.version.startswith("opening-v")


def test_prompt_files_must_declare_a_version_and_every_variable(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "prompts", tmp_path / "prompts")
    (tmp_path / "prompts" / "rewrite.system.j2").write_text("You write {{ channel_name }}.")
    with pytest.raises(PromptError, match="rewrite.system.j2: first line must declare its version"):
        PromptSet.load(tmp_path / "prompts", "rewrite")
    opening = PromptSet.load(tmp_path / "prompts", "opening")
    with pytest.raises(PromptError, match="opening.user"):
        opening.render("user", product={"name": "Pro Plan"})  # `reasons` and `quotes` missing
    with pytest.raises(PromptError, match="cannot be read"):
        PromptSet.load(tmp_path / "nowhere", "opening")


def test_few_shot_puts_the_nearest_example_last() -> None:
    opening = PromptSet.load(ROOT / "prompts", "opening")
    shots = opening.shots(["asked about pricing 2 times in the last 14 days", "browsed Pro Plan 3 days ago"])
    assert len(shots) == 2 and "pricing" in shots[-1]["when"]


def test_a_first_reason_no_example_fits_gets_the_neutral_example_not_a_claim() -> None:
    opening = PromptSet.load(ROOT / "prompts", "opening")
    for context in (["the suggested time is when customers like this answer best"], ["customer for 400 days"], []):
        shots = opening.shots(context)
        # Not "It has been a while" or "Thanks for your recent purchase": nothing says so.
        assert shots[-1].get("default") and "quick note" in shots[-1]["short"], context
        assert sum(bool(s.get("default")) for s in shots) == 1
    assert "service team" in opening.shots(["talked to our service team 2 days ago"])[-1]["short"]
