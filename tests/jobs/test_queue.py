"""The job queue: each piece of work queued once, claimed by one worker at a time, retried after a dead
worker's lease runs out, failed after its last attempt; on SQLite and on PostgreSQL (SKIP LOCKED)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.jobs import queue as jobs
from app.jobs.tables import Job
from app.store.db import open_store, reading, unit_of_work
from tests.conftest import NOW

LEASE = 60.0


@pytest.fixture
def factory(db_url: str):  # noqa: ANN201
    """A migrated store with an empty queue (the PostgreSQL database is shared by the test session)."""
    store = open_store(db_url)
    with unit_of_work(store) as session:
        session.execute(Job.__table__.delete())
    return store


def claim(factory, worker: str, now=NOW, **kw):  # noqa: ANN001, ANN201
    with unit_of_work(factory) as session:
        return jobs.claim(session=session, worker=worker, now=now, lease_s=LEASE, max_attempts=kw.pop("max_attempts", 3),
                          **kw)


def finish(factory, job_id: int, worker: str, now=NOW) -> bool:  # noqa: ANN001
    with unit_of_work(factory) as session:
        return jobs.finish(session=session, job_id=job_id, worker=worker, now=now, result="ok")


def enqueue(factory, kind: str, keys: list[str], **kw) -> int:  # noqa: ANN001
    with unit_of_work(factory) as session:
        return jobs.enqueue(session=session, kind=kind, keys=keys, priority=kw.pop("priority", 0), now=NOW, **kw)


def test_the_same_work_found_twice_is_queued_once(factory) -> None:  # noqa: ANN001
    assert enqueue(factory, "route_event", ["ev-1", "ev-2", "ev-1"]) == 2
    assert enqueue(factory, "route_event", ["ev-2", "ev-3"]) == 1  # another worker found ev-2 too
    with reading(factory) as session:
        assert sorted(session.scalars(select(Job.key))) == ["ev-1", "ev-2", "ev-3"]


def test_a_claimed_job_is_nobody_elses_until_its_lease_runs_out(factory) -> None:  # noqa: ANN001
    enqueue(factory, "draft_card", ["card-1"])
    first = claim(factory, "worker-a")
    assert first is not None and first.attempt == 1
    assert claim(factory, "worker-b", now=NOW + timedelta(seconds=LEASE - 1)) is None
    # worker-a died: after the lease, worker-b takes the job over, as a second attempt
    taken_over = claim(factory, "worker-b", now=NOW + timedelta(seconds=LEASE + 1))
    assert taken_over is not None and (taken_over.id, taken_over.attempt) == (first.id, 2)
    assert not finish(factory, first.id, "worker-a")  # the old holder's late finish writes nothing
    assert finish(factory, first.id, "worker-b")
    with reading(factory) as session:
        job = session.get(Job, first.id)
        assert (job.status, job.claimed_by, job.runs, job.attempts) == ("done", "worker-b", 1, 2)
        assert jobs.counts(session=session) == {"queued": 0, "running": 0, "done": 1, "failed": 0, "retried": 1}


def test_a_job_out_of_attempts_is_failed_and_kept(factory) -> None:  # noqa: ANN001
    enqueue(factory, "draft_card", ["card-1"])
    now = NOW
    for attempt in (1, 2):
        assert claim(factory, f"worker-{attempt}", now=now, max_attempts=2).attempt == attempt
        now += timedelta(seconds=LEASE + 1)
    assert claim(factory, "worker-3", now=now, max_attempts=2) is None
    with reading(factory) as session:
        job = session.scalars(select(Job)).one()
        assert job.status == "failed" and "ran out" in job.last_error


def test_a_failed_run_waits_then_fails_after_the_last_attempt(factory) -> None:  # noqa: ANN001
    enqueue(factory, "route_event", ["ev-1"])
    job = claim(factory, "worker-a")
    with unit_of_work(factory) as session:
        assert jobs.retry_later(session=session, job_id=job.id, worker="worker-a", now=NOW, error="boom",
                                max_attempts=2, backoff_s=30) == "queued"
    assert claim(factory, "worker-a", now=NOW + timedelta(seconds=29)) is None  # backing off
    again = claim(factory, "worker-a", now=NOW + timedelta(seconds=31))
    with unit_of_work(factory) as session:
        assert jobs.retry_later(session=session, job_id=again.id, worker="worker-a", now=NOW, error="boom again",
                                max_attempts=2, backoff_s=30) == "failed"
    with reading(factory) as session:
        assert session.get(Job, job.id).last_error == "boom again"


def test_a_recurring_job_is_due_again_after_each_run(factory) -> None:  # noqa: ANN001
    enqueue(factory, "sla_sweep", ["every-round"], recurring=True)
    for run in (1, 2):
        job = claim(factory, "worker-a")
        assert job is not None and job.attempt == 1
        assert claim(factory, "worker-b") is None  # one sweep at a time
        assert finish(factory, job.id, "worker-a")
    with reading(factory) as session:
        assert session.scalars(select(Job.runs)).one() == 2
    assert claim(factory, "worker-a", skip=frozenset({job.id})) is None  # ran this round already


def test_claims_take_the_most_urgent_first(factory) -> None:  # noqa: ANN001
    enqueue(factory, "sla_sweep", ["every-round"], priority=2, recurring=True)
    enqueue(factory, "draft_card", ["card-1"], priority=1)
    enqueue(factory, "route_event", ["ev-1"], priority=0)
    assert [claim(factory, "w").kind for _ in range(3)] == ["route_event", "draft_card", "sla_sweep"]


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_workers_racing_for_jobs_never_take_the_same_one(factory) -> None:  # noqa: ANN001
    """Eight threads, each its own connection, claim 400 jobs as fast as they can: SKIP LOCKED hands each job
    to exactly one of them, and none waits on another's lock."""
    enqueue(factory, "draft_card", [f"card-{i}" for i in range(400)])
    taken: dict[str, list[int]] = {}

    def work(name: str) -> None:
        mine = taken.setdefault(name, [])
        while (job := claim(factory, name)) is not None:
            mine.append(job.id)
            assert finish(factory, job.id, name)

    threads = [threading.Thread(target=work, args=(f"worker-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [i for mine in taken.values() for i in mine]
    assert len(ids) == len(set(ids)) == 400
    assert sum(bool(mine) for mine in taken.values()) >= 2  # the work was shared
    with reading(factory) as session:
        assert jobs.counts(session=session) == {"queued": 0, "running": 0, "done": 400, "failed": 0, "retried": 0}
