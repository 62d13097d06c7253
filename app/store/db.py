"""Engines, sessions and migrations: SQLite by default, PostgreSQL when DATABASE_URL points at one."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine for `url`; for a SQLite file, its folder is created and foreign keys are enforced."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Connections to a SQLite file are cheap; a pool as deep as the server's thread pool means a burst of
        # requests waits for the write lock (busy timeout), never for a connection.
        pool = {"pool_size": 20, "max_overflow": 40} if path and path != ":memory:" else {}
        engine = create_engine(url, connect_args={"timeout": 30}, **pool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent).

    On SQLite, foreign keys are off while migrating: SQLite alters a table by copying it to a new one and
    dropping the old, and with keys on that drop would cascade into (or null out) every row pointing at it."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        with connection.begin():
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back everything on any error. Edges (a request, a CLI
    command, a worker job) open it; services write inside the session they are given.

    On SQLite the write lock is taken at the start (BEGIN IMMEDIATE): a transaction that reads and then
    writes would otherwise fail with "database is locked" when another writer commits in between, since
    SQLite cannot upgrade a stale read snapshot. Concurrent writers now wait (busy timeout) instead."""
    with factory() as session, session.begin():
        if session.get_bind().dialect.name == "sqlite":
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        yield session


@contextmanager
def reading(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for reads only (a prepare step, a page): nothing it does is committed. Closing it (not rolling
    back) keeps what was loaded readable after it ends."""
    with factory() as session:
        yield session


def upsert(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows, replacing those whose primary key already exists: re-imports never duplicate."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": pg_insert, "sqlite": sqlite_insert}.get(dialect)
    if insert is None:
        raise RuntimeError(f"upsert is not supported on {dialect}")
    keys = [column.name for column in table.primary_key.columns]
    statement = insert(table)
    updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    session.execute(statement.on_conflict_do_update(index_elements=keys, set_=updates), list(rows))


def open_store(url: str) -> sessionmaker[Session]:
    """A session factory on a migrated database: the one way services get at the store."""
    engine = make_engine(url)
    migrate(engine)
    return session_factory(engine)
