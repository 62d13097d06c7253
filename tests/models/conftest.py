"""A small synthetic store with a trained champion, shared by the model tests of one module."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing

import pytest
from sqlalchemy import func, update

from app.data.synthetic import generate, load_into_store
from app.models.tables import ModelVersion
from app.models.training import train_and_register
from app.store.db import open_store
from tests.conftest import NOW


@pytest.fixture(scope="session")
def trained_once(tmp_path_factory: pytest.TempPathFactory):
    """The store and first training result on 4,000 synthetic customers, built once per test session (about
    12 seconds on 2 cores); modules get their own copy of it."""
    folder = tmp_path_factory.mktemp("trained-once")
    factory = open_store(f"sqlite:///{folder / 'outreach.db'}")
    load_into_store(generate(customers=4000, now=NOW, seed=5), factory)
    result = train_and_register(factory, models_dir=folder / "models", now=NOW, actor="test")
    factory.kw["bind"].dispose()
    return folder, result


@pytest.fixture(scope="module")
def trained(trained_once, tmp_path_factory: pytest.TempPathFactory):
    """(session factory, models folder, first training result): a copy of the session's store and models, so
    what one module writes (versions, score runs, holds, its model files) never reaches another."""
    source, result = trained_once
    folder = tmp_path_factory.mktemp("trained")
    with closing(sqlite3.connect(source / "outreach.db")) as original, \
            closing(sqlite3.connect(folder / "outreach.db")) as copy:
        original.backup(copy)  # whole, WAL included
    shutil.copytree(source / "models", folder / "models")
    factory = open_store(f"sqlite:///{folder / 'outreach.db'}")
    with factory() as session, session.begin():  # the copy's versions name the copy's model files
        session.execute(update(ModelVersion).values(artifact_path=func.replace(
            ModelVersion.artifact_path, str(source / "models"), str(folder / "models"))))
    return factory, folder / "models", result
