"""The store works the same on SQLite and PostgreSQL: schema, UTC times, upserts, foreign keys."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError

from app.store.db import alembic_config, make_engine, migrate, transaction, upsert
from app.data.tables import Customer, Event, OutreachAttempt


def test_migrations_are_idempotent_and_reach_head(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    migrate(engine)
    head = ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
    with engine.connect() as connection:
        assert connection.exec_driver_sql("select version_num from alembic_version").scalar() == head
    assert set(inspect(engine).get_table_names()) >= {"customers", "consents", "events", "outreach_attempts"}


def test_times_come_back_as_aware_utc(store) -> None:
    lisbon_noon = datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    with transaction(store) as session:
        session.add(Customer(id="c1", timezone="Europe/Lisbon", created_at=lisbon_noon, attributes={"a": 1}))
    with store() as session:
        customer = session.get(Customer, "c1")
        assert customer.created_at == lisbon_noon
        assert customer.created_at.tzinfo is not None and customer.created_at.utcoffset() == timedelta(0)
        assert customer.attributes == {"a": 1}


def test_upsert_replaces_instead_of_duplicating(store) -> None:
    row = {"id": "c1", "first_name": "Ana", "last_name": None, "email": None, "phone": None, "segment": None,
           "industry": None, "lifecycle_stage": "lead", "timezone": "UTC", "age": 40, "sensitive": False,
           "do_not_contact": False, "owner_rep": None, "team": None, "created_at": None, "attributes": {}}
    for age in (40, 41):
        with transaction(store) as session:
            upsert(session, Customer.__table__, [{**row, "age": age}])
    with store() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 1
        assert session.get(Customer, "c1").age == 41


def test_history_must_belong_to_a_known_customer(store) -> None:
    with pytest.raises(IntegrityError):
        with transaction(store) as session:
            session.add(OutreachAttempt(id="a1", customer_id="nobody", attempted_at=datetime.now(timezone.utc),
                                        channel="call", outcome="replied", attributes={}))
    with store() as session:
        assert session.scalar(select(func.count()).select_from(OutreachAttempt)) == 0


def test_a_failed_unit_of_work_leaves_nothing_behind(store) -> None:
    with pytest.raises(RuntimeError):
        with transaction(store) as session:
            session.add(Customer(id="c1", attributes={}))
            session.flush()
            session.add(Event(id="e1", customer_id="c1", occurred_at=datetime.now(timezone.utc), type="page_view",
                              attributes={}))
            session.flush()
            raise RuntimeError("crash in the middle of an action")
    with store() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 0
