"""Library fixtures: the real embedding model (loaded once) and a fresh embedded Chroma per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.library.index import TemplateIndex, default_embedder
from tests.conftest import ROOT

LIBRARY = ROOT / "script_library"


@pytest.fixture(scope="session")
def embedder():
    return default_embedder()


@pytest.fixture
def index(tmp_path: Path, embedder) -> TemplateIndex:
    return TemplateIndex.open(path=tmp_path / "chroma", embedder=embedder)


def template_text(id: str = "email-test-template", *, channel: str = "email", status: str = "approved",
                  body: str = "Hi {{ customer.first_name }}, about {{ product.name }}.", products: str = "[pro]",
                  stage: str = "follow_up", intents: str = "[pricing_question]", extra: str = "") -> str:
    return (f"---\nid: {id}\ntitle: A test template\nchannel: {channel}\nproducts: {products}\nstage: {stage}\n"
            f"intents: {intents}\nlanguage: en\nstatus: {status}\nsensitive: false\nowner: content-team\nversion: 1\n"
            f"{extra}---\n{body}\n")
