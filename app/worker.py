"""The background worker: an edge like the API and the CLI. Each job is one unit of work; its slow part
(a fresh decision, the model writing a draft, the validators) is prepared before the write.

Jobs: routing posted events, drafts for open cards, SLA reminders and reassignment, change requests whose
cooling-off period ended, and confirmations of applied changes. `Worker.start`
runs them every WORKER_INTERVAL_S seconds in a thread of each served process, through the job queue
(`app.jobs`): on PostgreSQL any number of processes share the work, none runs a job another holds.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from pydantic import BaseModel

from app.cards import events
from app.changes import confirm
from app.changes import service as change_requests
from app.changes.service import ChangeSubmission, ChangeView
from app.changes.taxonomy import NOT_A_CHANGE
from app.errors import OutreachError
from app.cards import service as cards
from app.intents import service as intents
from app.jobs import queue as jobs
from app.cards.service import SlaReport
from app.models.scoring import decide_fresh, store_fresh
from app.review import service as review
from app.services import Services

log = logging.getLogger(__name__)


class Round(BaseModel):
    events: list[str]
    drafted: int
    sla: SlaReport
    changes: list[str] = []


def handle_event(services: Services, event_id: str) -> str:
    """Route one queued event: read its intent (an event with text but no intent is classified first, and the
    reading stored), then the routing policy decides; a route that fires gets a fresh decision (the lead score
    after the event) and makes or refreshes a card, and the event keeps the lineage."""
    now = services.now()
    with services.read() as session:
        text = events.text_to_classify(session=session, event_id=event_id)
        labelled = events.labelled_examples(session=session) if text is not None else []
    if text is not None:  # posted without an intent: read it (slow, outside any transaction), then store it
        try:
            services.intents.learn(labelled)  # people's corrections since the last round retrain it first
            services.intents.model()  # (re)training is not the reading's time
            started = time.perf_counter()
            classification = services.intents.classify(text)
            took_ms = (time.perf_counter() - started) * 1000
        except Exception as exc:  # noqa: BLE001 - fail closed: nothing is routed on a guess
            log.exception("classifying event %s failed", event_id)
            with services.unit_of_work() as session:
                return events.finish_event(session=session, event_id=event_id, now=now,
                                           result=f"failed: the message could not be classified ({type(exc).__name__}: {exc})")
        budget = services.settings.classify_budget_ms
        if took_ms > budget:  # fail closed: a reading this slow is not trusted to route on
            with services.unit_of_work() as session:
                return events.finish_event(session=session, event_id=event_id, now=now,
                                           result=f"failed: classifying took {took_ms:.0f} ms, over the "
                                                  f"{budget:.0f} ms budget (CLASSIFY_BUDGET_MS); nothing routed")
        with services.unit_of_work() as session:
            events.record_reading(session=session, event_id=event_id, classification=classification, now=now,
                                  product=intents.product_mentioned(text, services.profile.products))
    change_from_event(services, event_id)
    taxonomy, routing = services.intents.taxonomy, services.routing
    with services.read() as session:
        check = events.check_route(session=session, event_id=event_id, taxonomy=taxonomy, routing=routing, now=now)
        score_before = events.last_score(session=session, customer_id=check.customer_id) if check.fires else None
    if not check.fires:
        with services.unit_of_work() as session:
            return events.finish_event(session=session, event_id=event_id, result=check.why, now=now,
                                       route=check.route, suppressed=check.suppressed)
    try:
        fresh = decide_fresh(services.store, check.customer_id, now=now, policy=services.contact_policy,
                             reasons=services.reason_table, challenger_share=services.settings.challenger_share,
                             objectives=services.objectives)
        with services.unit_of_work() as session:
            decision = store_fresh(session=session, fresh=fresh, now=now)
            return events.card_from_route(session=session, event_id=event_id, route=routing.routes[check.route],
                                          decision=decision, score_before=score_before, taxonomy=taxonomy,
                                          routing=routing, now=now)
    except Exception as exc:  # noqa: BLE001 - one bad event must not stop the worker
        log.exception("routing event %s failed", event_id)
        with services.unit_of_work() as session:
            return events.finish_event(session=session, event_id=event_id, now=now,
                                       result=f"failed: {type(exc).__name__}: {exc}")


def change_from_event(services: Services, event_id: str) -> str | None:
    """A conversation read as a change request becomes one (under the event's id, so a retried event makes no
    second request): triaged with the account's own history, stored, applied when nothing more is needed and
    confirmed. Returns what became of it, or None when the message asks for no change."""
    triage, now = services.changes, services.now()
    with services.read() as session:
        ask = events.change_asked(session=session, event_id=event_id, intents_of_changes=triage.taxonomy.event_intents)
        if ask is None:
            return None
        past = change_requests.history(session=session, customer_id=ask.customer_id, now=now, leave_out=ask.event_id,
                                       window_days=triage.taxonomy.risk.window_days)
    submission = ChangeSubmission(id=ask.event_id, customer_id=ask.customer_id, channel=ask.channel, text=ask.text)
    triaged = triage.triage(submission, past)
    if triaged.change_type == NOT_A_CHANGE:
        return None
    try:
        with services.unit_of_work() as session:
            view = change_requests.submit_from_event(session=session, submission=submission, triaged=triaged,
                                                     identity=ask.identity, now=now)
    except OutreachError as exc:  # an invalid new value: the agent in the conversation asks again
        log.info("event %s asks for a change that cannot be taken: %s", event_id, exc)
        return f"not taken: {exc}"
    if view is None:
        return None
    return confirm_if_applied(services, view).status


def draft_card(services: Services, card_id: str) -> bool:
    """Draft and review one open card: plan (reads), the model writes, the validators check, then one write
    stores the draft, its review and the card's link to it (or nothing, if the card moved on meanwhile)."""
    now = services.now()
    with services.read() as session:
        plan = cards.plan_draft(session=session, card_id=card_id, drafter=services.drafter, index=services.index,
                                now=now)
    if plan is None:
        return False
    prepared = services.drafter.compose(plan.inputs)
    with services.read() as session:
        assessment = review.assess(session=session, reviewer=services.reviewer, profile=services.profile,
                                   draft=prepared, now=now)
    with services.unit_of_work() as session:
        return cards.attach_draft(session=session, plan=plan, prepared=prepared, assessment=assessment, now=now)


def draft_cards(services: Services, *, limit: int = 20, rep_id: str | None = None,
                stopping: Callable[[], bool] = lambda: False) -> int:
    """Draft open cards without a draft, best first (until `stopping()` says the process is shutting down).
    Returns how many were drafted."""
    with services.read() as session:
        ids = cards.cards_to_draft(session=session, limit=limit, rep_id=rep_id)
    drafted = 0
    for card_id in ids:
        if stopping():
            break
        drafted += draft_card(services, card_id)
    return drafted


def confirm_change(services: Services, request_id: str) -> int:
    """Confirm one applied change to the customer: render from the approved template (reads), run the
    guardrails on each message, then one write stores, reviews and releases them. Returns how many."""
    now = services.now()
    with services.read() as session:
        planned = confirm.plan(session=session, request_id=request_id, profile=services.profile, now=now,
                               templates=services.changes.taxonomy.confirmations)
        assessed = [(p, review.assess(session=session, reviewer=services.reviewer, profile=services.profile,
                                      draft=p.draft, now=now, template_values=p.values)) for p in planned]
    with services.unit_of_work() as session:
        return confirm.record(session=session, request_id=request_id, planned=assessed, now=now)


def confirm_if_applied(services: Services, answer: ChangeView) -> ChangeView:
    """After a user's action applied a change, confirm it to the customer right away (its own unit of work,
    after the change's; the worker confirms any this missed) and show the request with its confirmations."""
    if answer.status != "applied" or answer.confirmations or answer.replayed:
        return answer
    confirm_change(services, answer.id)
    return services.query(lambda s: change_requests.view(session=s, request_id=answer.id))


def settle_changes(services: Services) -> list[str]:
    """Write the changes whose cooling-off period ended, then confirm every applied change not yet confirmed."""
    with services.unit_of_work() as session:
        due = change_requests.apply_due(session=session, now=services.now())
    with services.read() as session:
        waiting = change_requests.unconfirmed(session=session)
    return [f"{request_id}: written after its cooling-off period" for request_id in due] + [
        f"{request_id}: {confirm_change(services, request_id)} confirmation(s)" for request_id in waiting]


def sweep(services: Services) -> SlaReport:
    with services.unit_of_work() as session:
        return cards.sweep_sla(session=session, now=services.now(), sla_hours=services.settings.card_sla_hours)


# What the worker does, most urgent first: a routed event is what a rep waits for; drafts next; the sweeps last.
ROUTE_EVENT, DRAFT_CARD, SLA_SWEEP, SETTLE_CHANGES = "route_event", "draft_card", "sla_sweep", "settle_changes"
PRIORITY = {ROUTE_EVENT: 0, DRAFT_CARD: 1, SLA_SWEEP: 2, SETTLE_CHANGES: 3}
EVERY_ROUND = "every-round"  # the one key of a recurring job
LOOK_AHEAD = 1000  # candidates read per round before those already queued are left out


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    """Rounds of background work in a thread. Each round finds work and queues it (the job table: every worker
    may find the same work, each piece is queued once), then claims and runs jobs one at a time until none is
    claimable: routed events first (they are what reps wait for), then drafts, then the SLA and change sweeps.
    Any number of workers may share a PostgreSQL store; a claim is `FOR UPDATE SKIP LOCKED`, so no job runs on
    two of them at once, and a dead worker's job is taken over when its lease runs out."""

    def __init__(self, services: Services, *, name: str | None = None) -> None:
        self.services = services
        self.name = name or worker_name()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _queue(self, *, events_limit: int = 100, draft_limit: int = 0, sweeps: bool = False) -> None:
        """Queue the work there is now (one unit of work; a key already queued is left as it is)."""
        now = self.services.now()
        with self.services.read() as session:
            # Work that already has a job is left out before the limits apply: a card no template fits stays
            # without a draft, and an event whose job failed stays pending; neither may crowd out the rest.
            pending = jobs.without_job(session=session, kind=ROUTE_EVENT,
                                       keys=events.pending_events(session=session, limit=LOOK_AHEAD))
            to_draft = [f"{card}@{decision}" for card, decision in
                        cards.cards_to_draft_with_decision(session=session, limit=LOOK_AHEAD)] if draft_limit else []
            to_draft = jobs.without_job(session=session, kind=DRAFT_CARD, keys=to_draft)
        with self.services.unit_of_work() as session:
            jobs.enqueue(session=session, kind=ROUTE_EVENT, keys=pending[:events_limit], priority=PRIORITY[ROUTE_EVENT],
                         now=now)
            jobs.enqueue(session=session, kind=DRAFT_CARD, keys=to_draft[:draft_limit], priority=PRIORITY[DRAFT_CARD],
                         now=now)
            if sweeps:
                for kind in (SLA_SWEEP, SETTLE_CHANGES):
                    jobs.enqueue(session=session, kind=kind, keys=[EVERY_ROUND], priority=PRIORITY[kind], now=now,
                                 recurring=True)

    def _run(self, job: jobs.Claimed) -> object:
        if job.kind == ROUTE_EVENT:
            with self.services.read() as session:
                if not events.is_pending(session=session, event_id=job.key):  # routed by an earlier attempt
                    return "already routed"
            return handle_event(self.services, job.key)
        if job.kind == DRAFT_CARD:
            return draft_card(self.services, job.key.split("@", 1)[0])
        if job.kind == SLA_SWEEP:
            return sweep(self.services)
        if job.kind == SETTLE_CHANGES:
            return settle_changes(self.services)
        raise ValueError(f"unknown job kind {job.kind!r}")

    def run_jobs(self, kinds: tuple[str, ...] | None = None) -> list[tuple[jobs.Claimed, object]]:
        """Claim and run jobs until none is claimable (each at most once in this call); returns what each gave.
        A job that raises is queued again after a pause (or failed after its last attempt); the worker goes on."""
        settings, done, ran = self.services.settings, [], set()
        while not self._stop.is_set():
            with self.services.unit_of_work() as session:
                job = jobs.claim(session=session, worker=self.name, now=self.services.now(), kinds=kinds,
                                 lease_s=settings.job_lease_s, max_attempts=settings.job_max_attempts,
                                 skip=frozenset(ran))
            if job is None:
                break
            ran.add(job.id)
            try:
                result = self._run(job)
            except Exception as exc:  # noqa: BLE001 - one bad job must not stop the worker
                log.exception("job %s %s failed (attempt %d)", job.kind, job.key, job.attempt)
                with self.services.unit_of_work() as session:
                    jobs.retry_later(session=session, job_id=job.id, worker=self.name, now=self.services.now(),
                                     error=f"{type(exc).__name__}: {exc}", max_attempts=settings.job_max_attempts,
                                     backoff_s=settings.job_retry_s)
                continue
            with self.services.unit_of_work() as session:
                jobs.finish(session=session, job_id=job.id, worker=self.name, now=self.services.now(),
                            result=_summary(result))
            done.append((job, result))
        return done

    def route_pending(self) -> list[str]:
        """Route the queued events (a batch of up to 100): one line per event, saying what became of it."""
        self._queue()
        return [f"{job.key}: {result}" for job, result in self.run_jobs(kinds=(ROUTE_EVENT,))]

    def tick(self, *, draft_limit: int = 5) -> Round:
        with self._lock:
            self._queue(draft_limit=draft_limit, sweeps=True)
            ran = self.run_jobs()
            of = lambda kind: [result for job, result in ran if job.kind == kind]  # noqa: E731
            sla = of(SLA_SWEEP)
            return Round(events=[f"{job.key}: {result}" for job, result in ran if job.kind == ROUTE_EVENT],
                         drafted=sum(bool(r) for r in of(DRAFT_CARD)),
                         sla=sla[0] if sla else SlaReport(),
                         changes=[line for lines in of(SETTLE_CHANGES) for line in lines])

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="outreach-worker", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.services.settings.worker_interval_s):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the worker logs and keeps going; requests are unaffected
                log.exception("background work failed; retrying next round")


def _summary(result: object) -> str:
    """What a job gave, as the text its row keeps."""
    if isinstance(result, BaseModel):
        return result.model_dump_json()
    if isinstance(result, list):
        return "\n".join(map(str, result))
    return str(result)
