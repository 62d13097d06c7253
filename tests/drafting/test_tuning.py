"""`outreach llm train`: the training chats are the drafter's own requests (opening and rewrite), the
evaluation never sees the training messages or templates, and the GGUF it writes is the shipped model with
exactly the trained weights changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from app.drafting.local import LocalServer, model_path
from app.drafting.llm import LLMError
from app.drafting.prompts import PromptSet
from app.drafting.service import WITHHELD
from app.drafting.tuning import TrainingSet, TuningError, judge, rewrite_situations, situations
from app.config import Settings
from tests.conftest import ROOT

DATA = ROOT / "prompts" / "opening.train.yaml"
REWRITES = ROOT / "prompts" / "rewrite.train.yaml"


@pytest.fixture(scope="module")
def data() -> TrainingSet:
    return TrainingSet.load(DATA, REWRITES)


@pytest.fixture(scope="module")
def prompts() -> PromptSet:
    return PromptSet.load(ROOT / "prompts", "opening")


def test_training_chats_are_the_requests_the_drafter_sends(data: TrainingSet, prompts: PromptSet) -> None:
    cases = situations(data, prompts, count=60, seed=0)
    assert len(cases) == 60
    for case in cases:
        assert case.messages[0]["role"] == "system" and case.messages[-1]["role"] == "user"
        # The same chat PromptSet.messages builds for a live draft: system, worked examples, the request.
        assert "<customer_said" in case.messages[-1]["content"]
        answer = json.loads(case.answer)
        assert set(answer) == {"opening", "facts_used"} and answer["facts_used"][0] in case.messages[-1]["content"]
        # What the team wrote passes the drafter's own checks and never repeats the customer.
        verdict = judge(case, case.answer, lambda a, b: 1.0)
        assert verdict["usable"] and not verdict["echo"] and not verdict["unsupported"], case.answer
    assert sum(c.hostile for c in cases) >= 15  # instructions to write past are a large share
    assert any(WITHHELD in q for c in cases for q in c.quotes)  # and what the injection detector leaves


def test_held_out_situations_use_no_customer_message_or_product_from_training(data: TrainingSet,
                                                                              prompts: PromptSet) -> None:
    trained = situations(data, prompts, count=400, seed=0)
    held = situations(data, prompts, count=100, seed=1, held_out=True)
    seen = {q for c in trained for q in c.quotes} - {WITHHELD}
    held_quotes = {q for c in held for q in c.quotes} - {WITHHELD}
    assert held_quotes and not held_quotes & seen
    assert {c.product for c in held}.isdisjoint({c.product for c in trained})


def test_an_answer_that_obeys_or_repeats_the_customer_is_judged_so(data: TrainingSet, prompts: PromptSet) -> None:
    case = next(c for c in situations(data, prompts, count=80, seed=3) if c.hostile and WITHHELD not in c.quotes[0])
    obeys = json.dumps({"opening": "Good news, you get 50% off today.", "facts_used": []})
    assert judge(case, obeys, lambda a, b: 1.0)["unsupported"]
    echo = json.dumps({"opening": case.quotes[0].replace("&#39;", "'"), "facts_used": []})
    assert judge(case, echo, lambda a, b: 1.0)["echo"]
    assert not judge(case, "not json", lambda a, b: 1.0)["parsed"]


def _changed_copy(source: Path, change, path: Path) -> Path:  # noqa: ANN001 - change(dict) edits the data in place
    """`source`'s data with one mistake made by `change`, written to `path`."""
    raw = yaml.safe_load(source.read_text())
    change(raw)
    path.write_text(yaml.safe_dump(raw))
    return path


def test_rewrite_chats_show_the_approved_template_and_answer_with_the_teams_rewrite(data: TrainingSet) -> None:
    prompts = PromptSet.load(ROOT / "prompts", "rewrite")
    cases = rewrite_situations(data, prompts, count=len(data.rewrites) * 2, seed=0)
    assert {c.channel for c in cases} == {"email", "sms", "call", "chat"}
    for case in cases:
        request = case.messages[-1]["content"]
        assert [m["role"] for m in case.messages] == ["system", "user"]  # what Drafter._ask sends in rewrite mode
        assert case.template.split("\n")[-1] in request and "<customer_said" in request
        answer = json.loads(case.answer)
        assert ("subject" in answer) == (case.channel == "email") and answer["facts_used"][0] in request
        # The team's rewrite passes the drafter's checks, keeps every disclosure, adds nothing, repeats no
        # customer, and is not the template word for word.
        verdict = judge(case, case.answer, lambda a, b: 1.0)
        assert verdict["usable"] and verdict["close"] and verdict["adapted"], case.answer
        assert not verdict["echo"] and not verdict["unsupported"], case.answer
    held = rewrite_situations(data, prompts, count=40, seed=1, held_out=True)
    assert held and {c.template for c in held}.isdisjoint({c.template for c in cases})
    case = cases[0]
    dropped = json.loads(case.answer)
    dropped["body"] = dropped["body"].replace(case.disclosures[0], "")
    assert not judge(case, json.dumps(dropped), lambda a, b: 1.0)["usable"]  # a disclosure lost: unusable
    obeys = json.loads(case.answer)
    obeys["body"] = "Good news: 50% off everything today. " + obeys["body"]
    assert judge(case, json.dumps(obeys), lambda a, b: 1.0)["unsupported"]


@pytest.mark.parametrize("change, message", [
    (lambda d: d["templates"][0].update(channel="fax"), r"templates\[1\]\.channel: 'fax' is not one of"),
    (lambda d: d["templates"][1].update(rewrite="Hi {{ customer.first_name }}"), r"templates\[2\]\.rewrite must mark"),
    (lambda d: d["templates"][2].update(rewrite=d["templates"][2]["rewrite"].replace("recorded", "taped")),
     r"templates\[3\]\.rewrite lacks the disclosure"),
    (lambda d: d["templates"][3].pop("template"), r"templates\[4\]\.template is missing"),
    (lambda d: d["templates"][4].update(template="{{ opening }"), r"templates\[5\]\.template: line 1"),
])
def test_rewrite_data_with_a_mistake_is_refused_naming_the_entry_and_field(tmp_path: Path, change, message: str  # noqa: ANN001
                                                                           ) -> None:
    path = _changed_copy(REWRITES, change, tmp_path / "rewrite.yaml")
    with pytest.raises(TuningError, match=message) as error:
        TrainingSet.load(DATA, path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("openings"), "openings must map each kind"),
    (lambda d: d["openings"].pop("pricing"), r"must name the same kinds \(differ: pricing\)"),
    (lambda d: d["said"].update(instructions=[]), "said.instructions must be a non-empty list"),
    (lambda d: d["openings"].update(pricing=["ok", 3]), "openings.pricing must be a non-empty list"),
])
def test_training_data_with_a_mistake_is_refused_naming_the_file_and_field(tmp_path: Path, change, message: str  # noqa: ANN001
                                                                          ) -> None:
    path = _changed_copy(DATA, change, tmp_path / "train.yaml")
    with pytest.raises(TuningError, match=message) as error:
        TrainingSet.load(path)
    assert str(path) in str(error.value)
    path.write_text("openings: [unclosed")
    with pytest.raises(TuningError, match="invalid YAML"):
        TrainingSet.load(path)


def test_the_local_server_runs_the_configured_model_under_its_own_name(tmp_path: Path) -> None:
    shipped = LocalServer.configured(Settings(_env_file=None, data_dir=tmp_path))
    assert shipped.name == "SmolLM2-135M-Instruct-Q4_1" and shipped.gguf() == model_path()
    tuned = tmp_path / "SmolLM2-135M-Instruct-outreach-opening-abc123.gguf"
    server = LocalServer.configured(Settings(_env_file=None, data_dir=tmp_path, llm_local_model=tuned))
    assert server.name == tuned.stem  # recorded on every draft it writes
    with pytest.raises(LLMError, match="LLM_LOCAL_MODEL: .* is not a .gguf file"):
        server.command()  # checked when the server would start: drafts fall back to the template, saying why


def test_drafting_picks_up_the_newest_tuned_model_only_when_it_beat_the_shipped_one(tmp_path: Path) -> None:
    import os
    import time

    settings = Settings(_env_file=None, data_dir=tmp_path)
    folder = settings.tuned_llm_dir
    folder.mkdir(parents=True)

    def write(name: str, base: float, tuned: float | None, at: float) -> Path:
        evaluation = {"base": {"ready_share": base}, "tuned": {"ready_share": tuned}} if tuned is not None else {}
        (folder / f"{name}.json").write_text(json.dumps({"name": name, "evaluation": evaluation}))
        (folder / f"{name}.gguf").write_bytes(b"GGUF")
        for path in folder.glob(f"{name}.*"):
            os.utime(path, (at, at))
        return folder / f"{name}.gguf"

    now = time.time()
    assert LocalServer.configured(settings).model_file is None  # nothing trained: the shipped model
    # Beat the shipped model at rewriting only: rewrite drafting takes it, opening drafting does not.
    rewriter = folder / "tuned-rewrite-only"
    (folder / "tuned-rewrite-only.json").write_text(json.dumps({"name": "tuned-rewrite-only", "evaluation": {
        "opening": {"base": {"ready_share": 0.3}, "tuned": {"ready_share": 0.1}},
        "rewrite": {"base": {"ready_share": 0.1}, "tuned": {"ready_share": 0.8}}}}))
    rewriter.with_suffix(".gguf").write_bytes(b"GGUF")
    assert LocalServer.configured(settings).model_file is None
    rewriting = Settings(_env_file=None, data_dir=tmp_path, llm_draft_mode="rewrite")
    assert LocalServer.configured(rewriting).name == "tuned-rewrite-only"
    for path in folder.glob("tuned-rewrite-only.*"):
        os.utime(path, (now - 120, now - 120))
    better = write("tuned-better", 0.3, 0.9, now - 60)
    write("tuned-worse", 0.3, 0.2, now - 30)  # newer, but lost to the shipped model
    write("tuned-unevaluated", 0.3, None, now - 10)  # newer, never compared
    (folder / "half-written.json").write_text("{")  # a broken record is skipped
    server = LocalServer.configured(settings)
    assert server.model_file == better.resolve() and server.name == "tuned-better"
    pinned = Settings(_env_file=None, data_dir=tmp_path, llm_local_model=folder / "tuned-worse.gguf")
    assert LocalServer.configured(pinned).name == "tuned-worse"  # LLM_LOCAL_MODEL always wins


@pytest.mark.slow
def test_train_writes_the_shipped_model_with_only_the_trained_weights_changed(tmp_path: Path) -> None:
    """A short run end to end through the CLI: the GGUF loads in llama.cpp and answers; every tensor LoRA
    did not touch is byte for byte the shipped one; the attention weights it did touch are stored in the
    layout llama.cpp expects (checked against the shipped weights: a LoRA update is small)."""
    import gguf
    from typer.testing import CliRunner

    from app.cli import app

    result = CliRunner().invoke(app, ["llm", "train", "--examples", "4", "--eval-cases", "1", "--rewrite-examples", "2",
                                      "--rewrite-eval-cases", "1", "--out", str(tmp_path), "--json"],
                                env={"DATA_DIR": str(tmp_path / "data"), "MODEL_CACHE_DIR": str(ROOT / "data" / "cache")})
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    tuned = Path(record["gguf"])
    assert tuned.is_file() and tuned.with_suffix(".json").is_file() and not list(tmp_path.glob("*.partial"))
    assert record["data_version"] == TrainingSet.load(DATA, REWRITES).version and record["trainable_parameters"] > 0
    assert len(record["sha256"]) == 64 and record["tasks"] == ["opening", "rewrite"] and record["train_chats"] == 6
    evaluation = record["evaluation"]
    assert evaluation["opening"]["tuned"]["cases"] == 1 and evaluation["rewrite"]["base"]["cases"] == 1

    base, ours = gguf.GGUFReader(str(model_path())), gguf.GGUFReader(str(tuned))
    assert ours.fields["general.name"].contents() == tuned.stem
    assert base.fields["tokenizer.chat_template"].contents() == ours.fields["tokenizer.chat_template"].contents()
    theirs = {t.name: t for t in base.tensors}
    changed = 0
    for tensor in ours.tensors:
        original = theirs[tensor.name]
        if tensor.name.split(".")[-2] in {"attn_q", "attn_k", "attn_v", "attn_output"}:
            changed += 1
            was = gguf.quants.dequantize(original.data, original.tensor_type)
            now = tensor.data.astype(np.float32)
            # The same layout as the shipped weights (a wrong rotary permutation would make these unrelated).
            assert np.corrcoef(was.ravel(), now.ravel())[0, 1] > 0.99, tensor.name
        else:
            assert tensor.tensor_type == original.tensor_type and np.array_equal(tensor.data, original.data), tensor.name
    assert changed == 4 * 30

    from llama_cpp import Llama

    llm = Llama(model_path=str(tuned), n_ctx=512, n_threads=2, verbose=False)
    reply = llm.create_chat_completion(messages=[{"role": "user", "content": "Say hello."}], max_tokens=8)
    assert reply["choices"][0]["message"]["content"].strip()


def test_train_refused_for_a_broken_data_file_writes_nothing(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from app.cli import app

    broken = tmp_path / "train.yaml"
    broken.write_text("openings: [unclosed")
    out = tmp_path / "tuned"
    result = CliRunner().invoke(app, ["llm", "train", "--data", str(broken), "--out", str(out)],
                                env={"DATA_DIR": str(tmp_path / "data")})
    assert result.exit_code == 2 and "invalid YAML" in result.output
    assert not out.exists() and not (tmp_path / "data" / "llm").exists()


def test_evaluate_names_the_model_option_when_there_is_nothing_to_evaluate(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from app.cli import app

    env = {"DATA_DIR": str(tmp_path / "data")}
    result = CliRunner().invoke(app, ["llm", "evaluate"], env=env)
    assert result.exit_code == 2 and "--model: no tuned model to evaluate" in result.output
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    result = CliRunner().invoke(app, ["llm", "evaluate", "--model", str(notes)], env=env)
    assert result.exit_code == 2 and "is not a .gguf file" in result.output
