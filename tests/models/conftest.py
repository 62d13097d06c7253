"""A small synthetic store with a trained champion, shared by the model tests of one module."""

from __future__ import annotations


import pytest

from app.data.synthetic import generate, load_into_store
from app.models.training import train_and_register
from app.store.db import open_store
from tests.conftest import NOW


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """(session factory, models folder, first training result) on 4,000 synthetic customers."""
    folder = tmp_path_factory.mktemp("trained")
    factory = open_store(f"sqlite:///{folder / 'outreach.db'}")
    load_into_store(generate(customers=4000, now=NOW, seed=5), factory)
    result = train_and_register(factory, models_dir=folder / "models", now=NOW, actor="test")
    return factory, folder / "models", result
