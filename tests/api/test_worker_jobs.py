"""The background worker on the job queue: posted events are routed once, a failing job is retried after a
pause and failed after its last attempt, and a dead worker's job is taken over when its lease runs out."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app import worker as worker_module
from app.jobs import queue as jobs
from app.jobs.tables import Job
from app.store.db import unit_of_work
from app.worker import ROUTE_EVENT, Worker
from tests.api.conftest import auth


def post_event(product, event_id: str, customer: str = "cus-a4") -> None:  # noqa: ANN001
    now = product.clock.now()
    event = {"id": event_id, "customer_id": customer, "occurred_at": (now - timedelta(minutes=1)).isoformat(),
             "type": "service_conversation", "intent": "upsell_interest", "product": "analytics",
             "text": "Could the Analytics Add-on help our sales team?"}
    assert product.post("/api/events", json=event, headers=auth(product, "crm")).status_code == 202


def job(product, kind: str, key: str) -> Job:  # noqa: ANN001
    with product.factory() as session:
        return session.scalars(select(Job).where(Job.kind == kind, Job.key == key)).one()


def test_a_posted_event_is_routed_by_one_job_that_runs_once(product) -> None:
    post_event(product, "ev-job-1")
    first = product.worker.tick()
    assert [line for line in first.events if line.startswith("ev-job-1")]
    assert first.drafted >= 1  # the batch cards' drafts are jobs of the same round
    routed = job(product, ROUTE_EVENT, "ev-job-1")
    assert (routed.status, routed.attempts, routed.runs) == ("done", 1, 1) and routed.result
    again = product.worker.tick()  # nothing left to do for it: not run twice
    assert not [line for line in again.events if line.startswith("ev-job-1")]
    assert job(product, ROUTE_EVENT, "ev-job-1").runs == 1
    sweeps = job(product, "sla_sweep", "every-round")
    assert sweeps.status == "queued" and sweeps.runs == 2  # the recurring sweep ran in each round


def test_a_failing_job_is_retried_after_a_pause_then_failed_after_its_last_attempt(product, monkeypatch) -> None:
    post_event(product, "ev-job-2")
    real = worker_module.handle_event
    monkeypatch.setattr(worker_module, "handle_event", lambda services, event_id: 1 / 0)
    product.worker.tick(draft_limit=0)
    failed = job(product, ROUTE_EVENT, "ev-job-2")
    assert failed.status == "queued" and failed.attempts == 1 and "ZeroDivisionError" in failed.last_error
    assert not product.worker.tick(draft_limit=0).events  # waiting out the pause (JOB_RETRY_S)
    product.clock.advance(seconds=product.settings.job_retry_s + 1)
    monkeypatch.setattr(worker_module, "handle_event", real)  # fixed: the retry routes it
    assert [line for line in product.worker.tick(draft_limit=0).events if line.startswith("ev-job-2")]
    assert job(product, ROUTE_EVENT, "ev-job-2").attempts == 2
    post_event(product, "ev-job-3")
    monkeypatch.setattr(worker_module, "handle_event", lambda services, event_id: 1 / 0)
    for _ in range(product.settings.job_max_attempts):
        product.worker.tick(draft_limit=0)
        product.clock.advance(hours=1)
    gave_up = job(product, ROUTE_EVENT, "ev-job-3")
    assert gave_up.status == "failed" and gave_up.attempts == product.settings.job_max_attempts


def test_a_dead_workers_job_is_taken_over_when_its_lease_runs_out(product) -> None:
    post_event(product, "ev-job-4")
    product.worker._queue()  # queued, then claimed by a worker that dies before finishing it
    with unit_of_work(product.factory) as session:
        held = jobs.claim(session=session, worker="dead-host:1", now=product.clock.now(), kinds=(ROUTE_EVENT,),
                          lease_s=product.settings.job_lease_s, max_attempts=3)
    assert held.key == "ev-job-4"
    assert not [line for line in product.worker.tick(draft_limit=0).events if "ev-job-4" in line]  # still leased
    product.clock.advance(seconds=product.settings.job_lease_s + 1)
    survivor = Worker(product.services, name="live-host:2")
    assert [line for line in survivor.tick(draft_limit=0).events if line.startswith("ev-job-4")]
    taken = job(product, ROUTE_EVENT, "ev-job-4")
    assert (taken.status, taken.claimed_by, taken.attempts) == ("done", "live-host:2", 2)


def test_work_that_already_has_a_job_does_not_crowd_out_new_work(product, monkeypatch) -> None:
    post_event(product, "ev-stuck")
    monkeypatch.setattr(worker_module, "handle_event", lambda services, event_id: 1 / 0)
    for _ in range(product.settings.job_max_attempts):
        product.worker.tick(draft_limit=0)
        product.clock.advance(hours=1)
    assert job(product, ROUTE_EVENT, "ev-stuck").status == "failed"  # its event stays pending, first in line
    post_event(product, "ev-new")
    product.worker._queue(events_limit=1)  # room for one: the new event, not the one that already has a job
    assert job(product, ROUTE_EVENT, "ev-new").status == "queued"
