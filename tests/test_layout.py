"""The project layout users and tools rely on."""

from __future__ import annotations

import tomllib

from tests.conftest import ROOT


def test_top_level_folders_exist_and_guardrails_is_data_only() -> None:
    for folder in ("app", "prompts", "script_library", "guardrails", "eval", "tests"):
        assert (ROOT / folder).is_dir(), folder
    assert not list((ROOT / "guardrails").rglob("*.py")), "guardrails/ would shadow the guardrails library"


def test_console_script_and_extras() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["outreach"] == "app.cli:app"
    assert {"postgres", "mlflow", "dev"} <= project["optional-dependencies"].keys()
