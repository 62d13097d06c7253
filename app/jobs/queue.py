"""The job queue: enqueue once, claim with `FOR UPDATE SKIP LOCKED`, finish or retry.

Several worker processes (on PostgreSQL) share one queue: a claim locks the row it takes and skips rows other
claims hold, so two workers never take the same job; the claim sets a lease, and a job whose worker died
holding it is claimable again once the lease runs out (another attempt; after `max_attempts` it is failed
and kept for a person to look at). On SQLite the claim's transaction takes the write lock (BEGIN IMMEDIATE),
which serialises claims the same way for the one process SQLite allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.jobs.tables import Job

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str
    key: str
    attempt: int


def enqueue(*, session: Session, kind: str, keys: list[str], priority: int, now: datetime,
            recurring: bool = False) -> int:
    """Queue one job per key unless `(kind, key)` is already known (whatever its state). Returns how many
    were new. Every worker may find the same work; the unique key makes the second find a no-op."""
    if not keys:
        return 0
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    rows = [dict(kind=kind, key=key, priority=priority, status=QUEUED, recurring=recurring, run_after=now,
                 attempts=0, runs=0, created_at=now) for key in dict.fromkeys(keys)]
    statement = insert(Job.__table__).on_conflict_do_nothing(index_elements=["kind", "key"])
    return len(session.execute(statement.returning(Job.__table__.c.id), rows).all())


def without_job(*, session: Session, kind: str, keys: list[str]) -> list[str]:
    """The keys that have no job of this kind yet (in whatever state), in their order."""
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        found.update(session.scalars(select(Job.key).where(Job.kind == kind, Job.key.in_(keys[start:start + 500]))))
    return [key for key in keys if key not in found]


def claim(*, session: Session, worker: str, now: datetime, lease_s: float, max_attempts: int,
          kinds: tuple[str, ...] | None = None, skip: frozenset[int] = frozenset()) -> Claimed | None:
    """Take the most urgent claimable job for `worker`: a queued one that is due, or a running one whose lease
    ran out (its worker is presumed dead). A job out of attempts is failed instead and the next one taken.
    `skip`: jobs this worker already ran in its current round (a recurring job is due again at once)."""
    claimable = or_(and_(Job.status == QUEUED, Job.run_after <= now),
                    and_(Job.status == RUNNING, Job.lease_until < now))
    statement = select(Job).where(claimable)
    if kinds is not None:
        statement = statement.where(Job.kind.in_(kinds))
    if skip:
        statement = statement.where(Job.id.not_in(skip))
    statement = statement.order_by(Job.priority, Job.id).limit(1).with_for_update(skip_locked=True)
    while (job := session.scalars(statement).first()) is not None:
        if job.attempts >= max_attempts and not job.recurring:
            job.status, job.finished_at, job.lease_until = FAILED, now, None
            job.last_error = job.last_error or f"lease of {job.claimed_by} ran out {job.attempts} time(s)"
            session.flush()
            continue
        job.status, job.claimed_by, job.started_at = RUNNING, worker, now
        job.lease_until = now + timedelta(seconds=lease_s)
        job.attempts += 1
        session.flush()
        return Claimed(job.id, job.kind, job.key, job.attempts)
    return None


def finish(*, session: Session, job_id: int, worker: str, now: datetime, result: str) -> bool:
    """Record a finished run. False (and nothing written) when the job is no longer this worker's: its lease
    ran out and another worker took it over."""
    job = session.get(Job, job_id, with_for_update=True)
    if job is None or job.status != RUNNING or job.claimed_by != worker:
        return False
    job.runs += 1
    job.result, job.finished_at, job.lease_until = result[:4000], now, None
    if job.recurring:  # due again at once: the next worker round runs it
        job.status, job.attempts, job.run_after = QUEUED, 0, now
    else:
        job.status = DONE
    return True


def retry_later(*, session: Session, job_id: int, worker: str, now: datetime, error: str, max_attempts: int,
                backoff_s: float) -> str:
    """A run raised: queue the job again after a growing pause, or fail it when out of attempts."""
    job = session.get(Job, job_id, with_for_update=True)
    if job is None or job.status != RUNNING or job.claimed_by != worker:
        return "lost"
    job.last_error, job.lease_until = error[:4000], None
    if job.attempts >= max_attempts and not job.recurring:
        job.status, job.finished_at = FAILED, now
    else:
        job.status = QUEUED
        job.run_after = now + timedelta(seconds=backoff_s * 2 ** (job.attempts - 1))
        if job.recurring:
            job.attempts = 0
    return job.status


def counts(*, session: Session) -> dict[str, int]:
    """Jobs by status, and those that took more than one attempt (a lease ran out or a run failed)."""
    by_status = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
    retried = session.scalar(select(func.count()).select_from(Job).where(Job.attempts > 1, Job.recurring.is_(False)))
    return {**{s: by_status.get(s, 0) for s in (QUEUED, RUNNING, DONE, FAILED)}, "retried": retried or 0}
