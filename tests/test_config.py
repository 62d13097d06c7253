"""Settings: one place, embedded defaults, every setting documented in .env.example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Settings
from tests.conftest import ROOT


def test_env_example_documents_every_setting_and_nothing_else() -> None:
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z_]+)=", text, flags=re.M))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_the_example_file_itself_loads_as_the_embedded_defaults(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    from_file, defaults = Settings(), Settings(_env_file=None)
    assert from_file.model_dump() == defaults.model_dump()
    assert from_file.resolved_database_url == "sqlite:///data/outreach.db"
    assert from_file.contact_policy_file is None


def test_production_refuses_the_placeholder_secret(monkeypatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(_env_file=None)
    monkeypatch.setenv("SECRET_KEY", "a-real-secret")
    assert Settings(_env_file=None).environment == "production"
