"""Shared fixtures: real SQLite and PostgreSQL stores, a frozen clock, the bank data file."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

import app.tables  # noqa: F401 - every table, so the metadata below is complete
from app.store.base import Base
from app.store.db import open_store, reading, unit_of_work

ROOT = Path(__file__).resolve().parents[1]
# The guardrail judge's fine-tuned encoder trains once (about two minutes) and is shared by every test's data
# folder, and with `make demo` (the same folder as its default DATA_DIR/cache).
os.environ.setdefault("MODEL_CACHE_DIR", str(ROOT / "data" / "cache"))


def write(factory: sessionmaker[Session], action, /, **kwargs):  # noqa: ANN001, ANN201
    """Call a service in its own unit of work, as an edge would."""
    with unit_of_work(factory) as session:
        return action(session=session, **kwargs)


def read(factory: sessionmaker[Session], action, /, **kwargs):  # noqa: ANN001, ANN201
    """Call a reading service in a read session."""
    with reading(factory) as session:
        return action(session=session, **kwargs)
BANK_FILE = ROOT.parent / "shared" / "data" / "bank-marketing" / "bank-full.csv"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
# The local server named in the project's README; TEST_POSTGRES_URL points elsewhere.
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session, dropped afterwards."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as connection:
            connection.execute(text("select 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "no server here"
        pytest.skip(f"PostgreSQL tests skipped: no server answers at {POSTGRES_ADMIN_URL} ({type(exc).__name__})")
    name = f"outreach_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store URL for each backend the product supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'outreach.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it, not even the schema (for migration tests), on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with own_postgres_database(request.getfixturevalue("postgres_url"), "outreach_empty") as url:
        yield url


@contextmanager
def own_postgres_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards (the session's shared one holds other
    tests' rows)."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def store(db_url: str) -> Iterator[sessionmaker[Session]]:
    """A migrated, empty store on each backend."""
    factory = open_store(db_url)
    yield factory
    with factory() as session, session.begin():
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())
    factory.kw["bind"].dispose()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> sessionmaker[Session]:
    return open_store(f"sqlite:///{tmp_path / 'outreach.db'}")


@pytest.fixture
def bank_file() -> Path:
    if not BANK_FILE.exists():
        pytest.skip(f"the UCI Bank Marketing file is not at {BANK_FILE}")
    return BANK_FILE
