"""The job queue's table (owned by `app.jobs`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.store.base import Base


class Job(Base):
    """One piece of background work, claimed by one worker at a time.

    `(kind, key)` is unique, so finding the same work twice (every worker scans for it) enqueues it once. A
    claim sets a lease; a worker that dies holding it loses the job when the lease runs out, and the next
    claim counts another attempt. A recurring job (an SLA sweep) goes back to `queued` after each run."""

    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("kind", "key", name="uq_jobs_kind_key"),
                      Index("ix_jobs_claimable", "status", "priority", "run_after"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(160))
    priority: Mapped[int] = mapped_column(Integer)  # lower runs first
    status: Mapped[str] = mapped_column(String(16))  # queued | running | done | failed
    recurring: Mapped[bool] = mapped_column(default=False)
    run_after: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(96))
    # Claims of the current run: 1 for a job that ran once; more only when a lease ran out or a run failed.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    runs: Mapped[int] = mapped_column(Integer, default=0)  # finished runs (a recurring job counts each)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    result: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
