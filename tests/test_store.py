"""The store works the same on SQLite and PostgreSQL: schema, UTC times, upserts, foreign keys."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError

from app.store.db import alembic_config, make_engine, migrate, unit_of_work, upsert
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
    with unit_of_work(store) as session:
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
        with unit_of_work(store) as session:
            upsert(session, Customer.__table__, [{**row, "age": age}])
    with store() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 1
        assert session.get(Customer, "c1").age == 41


def test_history_must_belong_to_a_known_customer(store) -> None:
    with pytest.raises(IntegrityError):
        with unit_of_work(store) as session:
            session.add(OutreachAttempt(id="a1", customer_id="nobody", attempted_at=datetime.now(timezone.utc),
                                        channel="call", outcome="replied", attributes={}))
    with store() as session:
        assert session.scalar(select(func.count()).select_from(OutreachAttempt)) == 0


def test_a_failed_unit_of_work_leaves_nothing_behind(store) -> None:
    with pytest.raises(RuntimeError):
        with unit_of_work(store) as session:
            session.add(Customer(id="c1", attributes={}))
            session.flush()
            session.add(Event(id="e1", customer_id="c1", occurred_at=datetime.now(timezone.utc), type="page_view",
                              attributes={}))
            session.flush()
            raise RuntimeError("crash in the middle of an action")
    with store() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 0


def test_migration_0007_carries_reviews_queue_items_sends_and_outcomes_over(empty_db_url: str) -> None:
    """A store written before the release gate (drafts holding their own review, a queue table, sent_at)
    upgrades without losing anything: each draft becomes a lineage of one version with its review, a sent
    draft gets a release with the hash of its text, an outcome becomes a label."""
    import hashlib

    from alembic import command
    from sqlalchemy import text

    from app.drafting.tables import Draft
    from app.review.tables import Release, Review
    from app.store.db import session_factory

    engine = make_engine(empty_db_url)
    config = alembic_config(empty_db_url)
    # As text, the way SQLAlchemy itself stores times on SQLite (a driver-level datetime adapter registered by
    # another library could otherwise decide the format).
    at = "2026-11-01 10:00:00.000000"
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        run = connection.execute
        run(text("INSERT INTO customers (id, lifecycle_stage, timezone, sensitive, do_not_contact, attributes, segment) "
                 "VALUES ('c1', 'active', 'UTC', false, false, '{}', 'smb')"))
        run(text("INSERT INTO score_runs (id, started_at, finished_at, as_of, policy_version, stats) "
                 "VALUES ('live-20261101', :at, :at, :at, 'p', '{}')"), {"at": at})
        run(text("INSERT INTO decisions (id, run_id, customer_id, as_of, status, method, arm, model_version, "
                 "policy_version, reasons, suppressed_by, requires_confirmation) VALUES (1, 'live-20261101', 'c1', :at, "
                 "'recommended', 'model', 'challenger', 'm1', 'p', '[]', '[]', false)"), {"at": at})
        for draft_id, status, sent, mode, drafting in (
                ("d-sent", "ready", at, "template_only", None), ("d-queued", "needs_approval", None, "template_only", None),
                ("d-edit", "approved", None, "edited", "edited by rep1")):
            run(text("INSERT INTO drafts (id, customer_id, decision_id, channel, template_id, template_version, mode, "
                     "drafting, body, facts_used, latency_ms, prompt_tokens, completion_tokens, cache_key, created_at, "
                     "review_status, policy_version, findings, sent_at) VALUES (:id, 'c1', 1, 'email', 't1', 1, :mode, "
                     ":drafting, :body, '[]', 0, 0, 0, :key, :at, :status, 'rp1', '[]', :sent)"),
                {"id": draft_id, "mode": mode, "drafting": drafting, "body": f"Hello {draft_id}", "key": f"k-{draft_id}",
                 "at": at, "status": status, "sent": sent})
        for item, draft_id, status in (("i-queued", "d-queued", "pending"), ("i-edit", "d-edit", "approved")):
            run(text("INSERT INTO review_items (id, draft_id, customer_id, template_id, status, verdict, routing, "
                     "findings, sources, policy_version, created_at, version) VALUES (:item, :draft, 'c1', 't1', :status, "
                     "'needs_approval', '[\"why\"]', '[]', '{}', 'rp1', :at, 1)"),
                {"item": item, "draft": draft_id, "status": status, "at": at})
        run(text("INSERT INTO cards (id, customer_id, decision_id, draft_id, status, priority, source, day, created_at, "
                 "updated_at, due_at, executed_at, executed_channel, outcome, outcome_value) VALUES ('card1', 'c1', 1, "
                 "'d-sent', 'executed', 0.5, 'batch', '2026-11-01', :at, :at, :at, :at, 'email', 'converted', 120.0)"),
            {"at": at})
    migrate(engine)
    with session_factory(engine)() as session:
        reviews = {r.draft_id: r for r in session.scalars(select(Review))}
        assert {k: v.status for k, v in reviews.items()} == {"d-sent": "ready", "d-queued": "needs_approval",
                                                               "d-edit": "approved"}
        assert reviews["d-queued"].id == "i-queued" and reviews["d-queued"].routing == ["why"]
        [release] = session.scalars(select(Release)).all()
        assert release.draft_id == "d-sent" and release.body_sha256 == hashlib.sha256(b"Hello d-sent").hexdigest()
        assert release.subject_ref == "card1"
        drafts = {d.id: d for d in session.scalars(select(Draft))}
        assert all(d.lineage_id == d.id and d.revision == 1 for d in drafts.values())
        assert (drafts["d-edit"].mode, drafts["d-edit"].author) == ("rep_edit", "edited by rep1")
        card = session.execute(text("SELECT release_id, adopted_draft_id FROM cards WHERE id = 'card1'")).one()
        assert tuple(card) == (release.id, "d-sent")
        label = session.execute(text("SELECT kind, outcome, value, arm FROM feedback")).one()
        assert tuple(label) == ("outcome", "converted", 120.0, "challenger")
        assert session.execute(text("SELECT kind FROM score_runs")).scalar() == "live"
    engine.dispose()


def test_a_scoring_run_stores_the_longest_zone_names(store) -> None:
    """PostgreSQL enforces column lengths (SQLite does not): a customer in a long IANA zone must still get a
    decision whose local slot names the zone in full."""
    from app.data.synthetic import generate, load_into_store
    from app.models.reasons import load_reason_table
    from app.models.scoring import score_all
    from app.policy.rules import load_policy
    from app.models.tables import Decision
    from app.data.tables import Customer
    from sqlalchemy import select, update

    from tests.conftest import NOW

    load_into_store(generate(customers=200, now=NOW, seed=3), store)
    zone = "America/Argentina/ComodRivadavia"  # 32 characters, the longest in the IANA database
    with unit_of_work(store) as session:
        session.execute(update(Customer).values(timezone=zone))
    summary = score_all(store, now=NOW, policy=load_policy(), reasons=load_reason_table(), challenger_share=0.0)
    with store() as session:
        slots = session.scalars(select(Decision.slot_local).where(Decision.run_id == summary.run_id,
                                                                  Decision.slot_local.is_not(None))).all()
    assert slots and all(slot.endswith(zone) for slot in slots)
