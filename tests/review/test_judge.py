"""The learned judge trains its own encoder once per policy version and keeps it on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.library.index import default_embedder
from app.review import tuned
from app.review.judge import Judge, JudgeData, JudgeFileError

SMALL = {
    "thresholds": {"block": 0.9, "review": 0.6},
    "categories": {
        "guaranteed_results": {"action": "block", "reason": "promises a result", "examples": [
            "Your revenue will double, guaranteed.", "You will certainly earn more with us.",
            "Profits always go up after switching.", "I promise your sales will rise.",
            "Growth is assured from week one.", "Your costs will definitely fall."]},
        "harassment_threats": {"action": "block", "reason": "threatens", "examples": [
            "I will keep calling until you sign.", "You will regret saying no to me.",
            "Ignore me and I will tell your clients.", "Sign or face the consequences.",
            "I know where your office is.", "Stop ignoring me or else."]},
    },
    "clean": ["Results vary from team to team.", "We cannot promise a specific return.",
              "Take your time deciding.", "I'll call next week if that suits you.",
              "Your invoice is attached.", "The trial lasts two weeks.", "Happy to answer any questions.",
              "Reply STOP to opt out.", "Our office is closed on Friday.", "The report is in your account."],
}


def write(folder: Path, data: dict) -> Path:
    path = folder / "judge.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_encoder_is_fine_tuned_once_and_reused_from_the_cache(tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    data = JudgeData.load(write(tmp_path, SMALL))
    first = Judge(data, default_embedder(), cache)
    assert first.encoder.tunes and first.encoder.name.endswith(tuned.RECIPE)
    judged = first.scores(first.embed(["Your revenue will triple, I promise you that."]))
    assert judged[0].category == "guaranteed_results"
    saved = cache / first.encoder.name
    assert (saved / "modules.json").is_file() and not [p for p in cache.iterdir() if p != saved]  # no staging left

    def no_training(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("trained again although a cached encoder exists")

    monkeypatch.setattr(tuned, "fine_tune", no_training)
    again = Judge(JudgeData.load(tmp_path / "judge.yaml"), default_embedder(), cache)
    assert again.version == first.version
    assert again.scores(again.embed(["Your revenue will triple, I promise you that."]))[0].category == "guaranteed_results"


def test_new_sentences_get_their_own_encoder_and_new_thresholds_do_not_retrain(tmp_path: Path) -> None:
    def encoder_of(data: dict) -> str:
        return Judge(JudgeData.load(write(tmp_path, data)), default_embedder()).encoder.name

    more = dict(SMALL, clean=[*SMALL["clean"], "We never ask for your password."])
    stricter = dict(SMALL, thresholds={"block": 0.8, "review": 0.5})
    assert encoder_of(more) != encoder_of(SMALL) == encoder_of(stricter)
    assert Judge(JudgeData.load(write(tmp_path, stricter)), default_embedder()).version != \
        Judge(JudgeData.load(write(tmp_path, SMALL)), default_embedder()).version


def test_a_judge_file_without_enough_examples_names_the_field(tmp_path: Path) -> None:
    thin = dict(SMALL, categories={"bribery": {"action": "block", "examples": ["A gift for you."]}})
    with pytest.raises(JudgeFileError, match=r"categories\.bribery\.examples"):
        JudgeData.load(write(tmp_path, thin))


def test_an_unquoted_sentence_with_a_colon_is_refused_not_learnt_as_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "judge.yaml"
    unquoted = yaml.safe_dump(dict(SMALL, clean=[*SMALL["clean"], "PLACEHOLDER"]))
    path.write_text(unquoted.replace("PLACEHOLDER", "Good news: the bank said yes."))
    with pytest.raises(JudgeFileError, match=r"clean\[\d+\] must be a sentence.*must be quoted"):
        JudgeData.load(path)


def test_a_judge_that_cannot_train_blocks_the_text(tmp_path: Path, monkeypatch) -> None:
    from app.review.checks import Reviewer, Verdict
    from app.review.validators import ReviewContext
    from tests.conftest import ROOT

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003
        raise OSError("No space left on device")

    monkeypatch.setattr(tuned, "fine_tune", broken)
    policy = tmp_path / "guardrails"
    policy.mkdir()
    for source in (ROOT / "guardrails").glob("*.yaml"):
        (policy / source.name).write_text(source.read_text())
    write(policy, SMALL)  # sentences no cached encoder was trained on: the judge must train, and cannot
    reviewer = Reviewer.from_folder(policy, default_embedder(), tmp_path / "cache")
    review = reviewer.check("Hi Ana, Pro Plan is ready for you. Reply STOP to opt out.", ReviewContext(channel="sms"))
    assert review.verdict == Verdict.BLOCKED and review.findings[0].error
    assert "No space left on device" in review.routing[0]
