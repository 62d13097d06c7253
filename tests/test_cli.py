"""The `outreach` command as a user runs it: exit codes, messages naming the problem, no stack traces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.config import get_settings

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


def test_help_lists_the_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("generate", "import", "demo", "train", "score", "models", "eval", "db", "draft", "llm", "review", "report", "worker",
                    "audit", "users", "cards", "retrain", "serve", "library", "intents"):
        assert command in result.output


@pytest.mark.slow
def test_generate_train_score_promote_rollback(data_dir: Path) -> None:
    assert invoke("generate", "--customers", "3000", "--now", "2026-11-01").exit_code == 0
    assert (data_dir / "truth.json").exists() and (data_dir / "outreach.db").exists()
    first = invoke("train", "--now", "2026-11-01T01:00")
    assert first.exit_code == 0 and "as champion" in first.output
    second = invoke("train", "--now", "2026-11-01T02:00", "--seed", "3")
    assert second.exit_code == 0 and "as candidate" in second.output
    versions = json.loads(invoke("models", "list", "--json").output)
    assert [v["status"] for v in versions] == ["candidate", "champion"]
    candidate, champion = versions[0]["id"], versions[1]["id"]
    worse = versions[0]["metrics"]["roc_auc"] < versions[1]["metrics"]["roc_auc"]
    promote = invoke("models", "promote", candidate)
    if worse:
        assert promote.exit_code == 2 and "--force" in promote.output
        promote = invoke("models", "promote", candidate, "--force")
    assert promote.exit_code == 0
    rollback = invoke("models", "rollback")
    assert rollback.exit_code == 0 and champion in rollback.output
    scored = invoke("score", "--now", "2026-11-01T03:00", "--top", "3", "--out", str(data_dir / "d.parquet"))
    assert scored.exit_code == 0, scored.output
    assert "customers scored" in scored.output and (data_dir / "d.parquet").exists()
    # Customers worth less than a contact are counted apart from the contact policy's rules.
    summary = " ".join(scored.output.split())
    policy_part = summary.split("suppressed by policy (", 1)[1].split(")", 1)[0]
    assert "below_contact_cost" not in policy_part and "not contacted by the objectives (below_contact_cost" in summary

    # The optimisation report over the period: both versions' quality, the champion's curves, findings.
    page = data_dir / "report.html"
    made = invoke("report", "--since", "2026-10-01", "--now", "2026-11-01T04:00", "--out", str(page))
    assert made.exit_code == 0, made.output
    html = page.read_text()
    assert html.count('data-chart="calibration"') == 1 and html.count("<circle") >= 10 + 4
    assert f"The champion {champion} ranks held-out attempts with ROC AUC" in " ".join(made.output.split())
    assert "No card was shown to a rep in the period" in html and "No sent card has an outcome yet" in html
    pdf = invoke("report", "--since", "2026-10-01", "--now", "2026-11-01T04:00", "--out", str(data_dir / "report.pdf"))
    assert pdf.exit_code == 0, pdf.output  # printed offline by Debian's headless Chromium
    assert (data_dir / "report.pdf").read_bytes()[:5] == b"%PDF-" and (data_dir / "report.pdf").stat().st_size > 10_000
    for bad, field in ((["--since", "2026-11-02", "--now", "2026-11-01T04:00", "--out", str(data_dir / "r2.html")], "--since"),
                       (["--since", "yesterday", "--out", str(data_dir / "r2.html")], "--since"),
                       (["--since", "2026-10-01", "--out", str(data_dir / "r2.txt")], "--out"),
                       (["--since", "2026-10-01", "--out", str(data_dir / "none" / "r2.html")], "--out")):
        refused = invoke("report", *bad)
        assert refused.exit_code == 2 and field in refused.output, refused.output
    assert sorted(p.name for p in data_dir.glob("r2*")) == [] and not (data_dir / "none").exists()


def test_a_broken_objectives_file_refuses_train_and_score_and_writes_nothing(data_dir: Path, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import func, select

    from app.cli.common import services
    from app.models.tables import ModelVersion, ScoreRun

    assert invoke("generate", "--customers", "600", "--now", "2026-11-01").exit_code == 0
    broken = tmp_path / "objectives.yaml"
    broken.write_text("version: x\nwindow_days: 30\nkpis: {sales: {measure: purchase}}\nformula: 'sales + profit'\n"
                      "contact_cost: 0\nholdout_share: 0\nobjectives: [{id: pro, label: Pro}]\n")
    monkeypatch.setenv("OBJECTIVES_FILE", str(broken))
    get_settings.cache_clear()
    for command in (["train", "--now", "2026-11-01T01:00"], ["score", "--now", "2026-11-01T03:00", "--out", str(tmp_path / "d.parquet")]):
        result = invoke(*command)
        assert result.exit_code == 2 and str(broken) in result.output and "profit" in result.output, result.output
    with services().read() as session:
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == 0
        assert session.scalar(select(func.count()).select_from(ScoreRun)) == 0
    assert not (tmp_path / "d.parquet").exists() and not (data_dir / "models").exists()


def test_unknown_version_and_empty_store_are_clear(data_dir: Path) -> None:
    result = invoke("models", "promote", "nope")
    assert result.exit_code == 2 and "no model version 'nope'" in result.output
    result = invoke("train")
    assert result.exit_code == 2 and "no outreach history" in result.output
    result = invoke("score")
    assert result.exit_code == 2 and "no customers" in result.output
    result = invoke("train", "--monotone", "x=up")
    assert result.exit_code == 2 and "--monotone" in result.output


def test_import_reports_rejects_and_exits_non_zero(data_dir: Path, tmp_path: Path) -> None:
    header = ('"age";"job";"marital";"education";"default";"balance";"housing";"loan";"contact";"day";"month";'
              '"duration";"campaign";"pdays";"previous";"poutcome";"y"\n')
    good = '58;"management";"married";"tertiary";"no";2143;"yes";"no";"unknown";5;"may";261;1;-1;0;"unknown";"no"\n'
    bad = '44;"technician";"single";"secondary";"no";29;"yes";"no";"unknown";5;"may";151;1;-1;0;"unknown";"perhaps"\n'
    path = tmp_path / "bank.csv"
    path.write_text(header + good + bad)
    result = invoke("import", str(path), "--mapping", "bank-marketing")
    assert result.exit_code == 1
    assert "row 2: outreach.outcome (column 'y')" in result.output and "'perhaps'" in result.output
    assert (tmp_path / "bank.rejected.csv").exists()
    result = invoke("import", str(tmp_path / "missing.csv"), "--mapping", "bank-marketing")
    assert result.exit_code == 2 and "no such file" in result.output
    result = invoke("import", str(path), "--mapping", "no-such-mapping")
    assert result.exit_code == 2 and "built-in mappings: bank-marketing" in result.output


def test_bad_settings_are_named(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    get_settings.cache_clear()
    result = invoke("db", "upgrade")
    assert result.exit_code == 2 and "SECRET_KEY" in result.output


@pytest.mark.slow
def test_eval_propensity_on_bank_marketing(bank_file: Path) -> None:
    result = invoke("eval", "propensity", "--data", str(bank_file), "--sep", ";", "--target", "y",
                    "--positive", "yes", "--drop", "duration", "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert {"roc_auc", "pr_auc", "top_decile_lift", "brier", "n_train", "n_test"} <= metrics.keys()
    assert metrics["roc_auc"] > 0.78 and metrics["top_decile_lift"] > 3.5
    assert (metrics["n_train"], metrics["n_test"]) == (33908, 11303)


@pytest.mark.parametrize(("args", "message"), [
    (["--target", "yy", "--positive", "yes"], "no target column 'yy'"),
    (["--target", "y", "--positive", "maybe"], "never equals --positive 'maybe'"),
    (["--target", "y", "--positive", "yes", "--drop", "nope"], "unknown column(s) nope"),
])
def test_eval_propensity_bad_input(bank_file: Path, args: list[str], message: str) -> None:
    result = invoke("eval", "propensity", "--data", str(bank_file), "--sep", ";", *args)
    assert result.exit_code == 2 and message in result.output


def test_eval_propensity_constant_target(tmp_path: Path) -> None:
    path = tmp_path / "flat.csv"
    path.write_text("x,y\n" + "".join(f"{i},no\n" for i in range(100)) + "1,yes\n")
    result = invoke("eval", "propensity", "--data", str(path), "--target", "y", "--positive", "yes")
    assert result.exit_code == 2 and "positives" in result.output


@pytest.mark.slow
def test_library_import_search_approve_retire(data_dir: Path, tmp_path: Path) -> None:
    from tests.library.conftest import LIBRARY, template_text

    result = invoke("library", "import", str(LIBRARY))
    assert result.exit_code == 0 and "39 new" in result.output and "36 added" in result.output
    found = json.loads(invoke("library", "search", "asked about the price", "--channel", "sms", "--stage",
                              "follow_up", "-k", "2", "--json").output)
    assert [f["id"] for f in found][0] == "sms-follow-up-pricing"
    assert {"id", "version", "score", "why"} <= found[0].keys()
    own = invoke("library", "approve", "email-upsell-payments-draft")  # imported by this same user
    assert own.exit_code == 2 and "four eyes" in own.output
    assert invoke("library", "approve", "email-upsell-payments-draft", "--by", "lee").exit_code == 0
    assert invoke("library", "retire", "sms-follow-up-pricing", "--note", "replaced").exit_code == 0
    found = json.loads(invoke("library", "search", "asked about the price", "--channel", "sms", "--stage",
                              "follow_up", "--json").output)
    assert "sms-follow-up-pricing" not in [f["id"] for f in found]
    shown = json.loads(invoke("library", "show", "sms-follow-up-pricing", "--json").output)
    assert shown["status"] == "retired" and shown["history"][-1]["note"] == "replaced"
    listed = json.loads(invoke("library", "list", "--status", "approved", "--json").output)
    assert len(listed) == 36  # one approved, one retired
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "email-broken.md").write_text(template_text("email-broken", body="Hi {{ customer.shoe_size }}"))
    result = invoke("library", "import", str(bad), "--no-sync")
    assert result.exit_code == 1 and "email-broken.md: body: unknown placeholder {{ customer.shoe_size }}" in result.output
    assert invoke("library", "approve", "nope").exit_code == 2


DRAFT_FIELDS = {"customer_id", "template_id", "template_version", "prompt_version", "mode", "model", "body",
                "latency_ms"}


@pytest.mark.slow
def test_draft_with_the_local_model_started_on_demand_and_with_an_endpoint_down(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.drafting.conftest import free_port

    monkeypatch.setenv("DEMO_WEEKS", "0")  # drafting is the point here; tests/test_demo_month.py plays the weeks
    get_settings.cache_clear()
    assert invoke("demo", "--prepare-only", "--customers", "400").exit_code == 0
    monkeypatch.setenv("LLM_LOCAL_PORT", str(free_port()))
    get_settings.cache_clear()
    try:
        result = invoke("draft", "--json")
        assert result.exit_code == 0, result.output
        drafted = json.loads(result.output)
        assert DRAFT_FIELDS <= drafted.keys() and drafted["mode"] in {"llm", "template_only"}
        assert drafted["model"] == "SmolLM2-135M-Instruct-Q4_1" and drafted["timings"]["llm_start_s"] > 0
        assert drafted["decision"]["reasons"] and drafted["body"] and "{{" not in drafted["body"]
        assert drafted["review"]["verdict"] in {"ready", "needs_approval", "blocked"}
        assert drafted["review"]["policy_version"]
        again = json.loads(invoke("draft", "--customer", drafted["customer_id"], "--json").output)
        assert again["customer_id"] == drafted["customer_id"] and again["timings"]["llm_start_s"] == 0
        if drafted["mode"] == "llm":  # the model's text is reused; each draft is its own stored version
            assert again["cached"] and again["body"] == drafted["body"] and again["id"] != drafted["id"]
        assert "answering" in invoke("llm", "status").output
    finally:
        assert "stopped" in invoke("llm", "stop").output
    monkeypatch.setenv("LLM_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    monkeypatch.setenv("LLM_MODEL", "gpt-4o-mini")
    monkeypatch.setenv("LLM_MAX_RETRIES", "0")
    get_settings.cache_clear()
    fallback = json.loads(invoke("draft", "--json").output)
    assert fallback["mode"] == "template_only" and fallback["model"] == "gpt-4o-mini"
    assert fallback["fallback_reason"].startswith("unavailable") and fallback["label"] == "template only"
    result = invoke("draft", "--customer", "nobody")
    assert result.exit_code == 2 and "customer 'nobody' has no decision" in result.output


def test_review_check_batch_reports_one_verdict_per_line(data_dir: Path, tmp_path: Path) -> None:
    messages = tmp_path / "messages.jsonl"
    lines = [
        {"id": "ok", "channel": "sms", "text": "Hi Ana, any questions about Pro Plan? Reply STOP to opt out."},
        {"id": "claim", "channel": "sms", "text": "Hi Ana, you have been pre-approved! Reply STOP to opt out."},
        {"id": "clinic", "channel": "sms", "text": "Hi Ana, any questions about Pro Plan? Reply STOP to opt out.",
         "customer": {"industry": "healthcare"}},
        {"id": "bad", "channel": "fax", "text": "hello"},
    ]
    messages.write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json\n")
    result = invoke("review", "check", "--file", str(messages), "--json")
    assert result.exit_code == 1  # two lines were unreadable; the others are still checked
    out = [json.loads(line) for line in result.output.splitlines()]
    verdicts = {o["id"]: o.get("verdict") for o in out if "verdict" in o}
    assert verdicts == {"ok": "ready", "claim": "blocked", "clinic": "needs_approval"}
    claim = next(o for o in out if o.get("id") == "claim")
    assert claim["findings"][0]["validator"] == "claims" and "pre-approved" in claim["findings"][0]["spans"][0]["text"]
    errors_out = [o for o in out if "error" in o]
    assert errors_out[0]["id"] == "bad" and errors_out[0]["error"].startswith("channel:")
    assert errors_out[1]["line"] == 5 and "not valid JSON" in errors_out[1]["error"]
    assert invoke("review", "check", "--file", str(tmp_path / "missing.jsonl")).exit_code == 2


def test_audit_verify_and_export_on_an_empty_trail(data_dir: Path, tmp_path: Path) -> None:
    assert "audit trail intact: 0 entries" in invoke("audit", "verify").output
    result = invoke("audit", "export", "--out", str(tmp_path / "audit.jsonl"))
    assert result.exit_code == 0 and (tmp_path / "audit.jsonl").read_text() == ""


def test_users_add_list_and_token(data_dir: Path) -> None:
    assert invoke("users", "add", "ana", "--role", "rep", "--rep-id", "rep-01", "--team", "team-a").exit_code == 0
    assert invoke("users", "add", "carol", "--role", "compliance").exit_code == 0
    bad = invoke("users", "add", "x", "--role", "boss")
    assert bad.exit_code == 2 and "role: 'boss' is not one of" in bad.output
    no_rep = invoke("users", "add", "y", "--role", "rep")
    assert no_rep.exit_code == 2 and "rep_id:" in no_rep.output
    assert invoke("users", "add", "ana", "--role", "content").exit_code == 2
    token = invoke("users", "token", "ana", "--expires-in-days", "7").output.strip()
    assert len(token) > 20
    listed = json.loads(invoke("users", "list", "--json").output)
    assert [(u["name"], u["role"], u["has_token"]) for u in listed] == [("ana", "rep", True), ("carol", "compliance", False)]
    assert token not in invoke("users", "list").output and "until" in invoke("users", "list").output
    assert invoke("users", "revoke", "ana").exit_code == 0
    assert json.loads(invoke("users", "list", "--json").output)[0]["has_token"] is False
    assert "revoked" in invoke("users", "list").output
    missing = invoke("users", "revoke", "nobody")
    assert missing.exit_code == 2 and "name: no user 'nobody'" in missing.output


def test_review_check_bad_input_is_named_line_by_line_and_a_broken_policy_by_file(data_dir: Path, tmp_path: Path,
                                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from tests.conftest import ROOT

    messages = tmp_path / "bad.jsonl"
    good = json.dumps({"id": "ok", "channel": "sms", "text": "Hi Ana, any questions about Pro Plan? Reply STOP to opt out."})
    messages.write_bytes("\n".join([
        json.dumps({"id": "empty", "channel": "sms", "text": ""}),
        json.dumps({"id": "huge", "channel": "email", "text": "x" * 1_000_000}),
        json.dumps({"id": "fax", "channel": "fax", "text": "hello"}),
        good]).encode() + b"\n\x00\xff\xfe junk \x89PNG\n")
    result = invoke("review", "check", "--file", str(messages), "--json")
    assert result.exit_code == 1
    out = [json.loads(line) for line in result.output.splitlines()]
    errors_by_id = {o.get("id") or f"line {o['line']}": o["error"] for o in out if "error" in o}
    assert errors_by_id["empty"].startswith("text:") and errors_by_id["huge"].startswith("text:")
    assert errors_by_id["fax"].startswith("channel:") and "not UTF-8" in errors_by_id["line 5"]
    assert [o["verdict"] for o in out if "verdict" in o] == ["ready"]
    broken = tmp_path / "guardrails"
    shutil.copytree(ROOT / "guardrails", broken)
    (broken / "claims.yaml").write_text((broken / "claims.yaml").read_text().replace("categories:", "categories: [", 1))
    monkeypatch.setenv("GUARDRAILS_DIR", str(broken))
    get_settings.cache_clear()
    result = invoke("review", "check", "--file", str(messages))
    assert result.exit_code == 2 and "claims.yaml" in result.output and "line" in result.output


def test_review_train_reports_the_fine_tuned_encoders_and_reuses_them(data_dir: Path) -> None:
    from app.review.tuned import RECIPE

    result = invoke("review", "train", "--json")  # the suite's MODEL_CACHE_DIR holds them: nothing retrains
    assert result.exit_code == 0, result.output
    trained = {row["part"]: row for row in json.loads(result.output)["trained"]}
    assert set(trained) == {"judge", "injection"}
    assert all(row["encoder"].endswith(RECIPE) and row["seconds"] < 60 for row in trained.values())


def test_a_misspelt_validator_in_the_policy_is_refused_with_its_line(data_dir: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from tests.conftest import ROOT

    messages = tmp_path / "m.jsonl"
    messages.write_text(json.dumps({"id": "m1", "channel": "sms", "text": "Hi Ana. Reply STOP to opt out."}) + "\n")
    broken = tmp_path / "guardrails"
    shutil.copytree(ROOT / "guardrails", broken)
    policy = (broken / "policy.yaml").read_text()
    (broken / "policy.yaml").write_text(policy.replace("  claims:", "  claimz:", 1))
    monkeypatch.setenv("GUARDRAILS_DIR", str(broken))
    get_settings.cache_clear()
    result = invoke("review", "check", "--file", str(messages))
    line = next(i for i, row in enumerate(policy.splitlines(), 1) if row.startswith("  claims:"))
    assert result.exit_code == 2 and f"policy.yaml line {line}: validators.claimz is not a validator" in result.output


def test_eval_propensity_tunes_on_the_training_part_only(tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    x = rng.normal(size=(1200, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(
        plan=rng.choice(["basic", "pro"], 1200), y=np.where(rng.random(1200) < 1 / (1 + np.exp(-2 * x[:, 0])), "yes", "no"))
    path = tmp_path / "leads.csv"
    frame.to_csv(path, index=False)
    result = invoke("eval", "propensity", "--data", str(path), "--target", "y", "--positive", "yes", "--tune", "2",
                    "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    tuning = metrics["tuning"]
    assert tuning["trials"] == 2 and len(tuning["tried"]) == 2
    # The defaults are a candidate: what is chosen never cross-validates worse than them.
    assert tuning["best_cv_roc_auc"] >= tuning["default_cv_roc_auc"]
    assert metrics["roc_auc"] > 0.75 and metrics["n_train"] == 900
    result = invoke("eval", "propensity", "--data", str(path), "--target", "y", "--positive", "yes", "--tune", "-1")
    assert result.exit_code == 2


def test_scoring_on_ray_without_ray_names_the_extra_and_writes_nothing(data_dir: Path, monkeypatch) -> None:
    import sys

    from sqlalchemy import func, select

    from app.models.tables import ScoreRun
    from app.store.db import open_store

    assert invoke("generate", "--customers", "200").exit_code == 0
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails, as when the extra is not installed
    result = invoke("score", "--engine", "ray")
    assert result.exit_code == 2 and "outreach[ray]" in result.output, result.output
    assert invoke("score", "--address", "auto").exit_code == 2  # an address only means something to Ray
    with open_store(f"sqlite:///{data_dir / 'outreach.db'}")() as session:
        assert session.scalar(select(func.count()).select_from(ScoreRun)) == 0


def test_serving_on_sqlite_takes_one_worker_and_says_why(data_dir: Path) -> None:
    result = invoke("serve", "--workers", "2")
    assert result.exit_code == 2
    assert "--workers 2" in result.output and "PostgreSQL" in result.output and "DATABASE_URL" in result.output
