"""The audit trail: append-only and hash-chained, so any edit, deletion or reordering is detectable.

Each entry's hash is SHA-256 over the previous hash and the entry's canonical JSON (seq, time, actor,
action, subject, details, versions). `verify` recomputes the chain; `export` writes it as JSON Lines.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from app.audit.tables import AuditEntry, AuditHead

GENESIS = "0" * 64


def _canonical(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def _content(seq: int, at: datetime, actor: str, action: str, subject_type: str, subject_id: str,
             details: dict[str, Any], versions: dict[str, Any]) -> dict[str, Any]:
    return {"seq": seq, "at": at.astimezone(timezone.utc).isoformat(timespec="microseconds"), "actor": actor,
            "action": action, "subject_type": subject_type, "subject_id": subject_id, "details": details,
            "versions": versions}


def chain_hash(prev_hash: str, content: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + _canonical(content)).hexdigest()


PENDING = "outreach.audit_pending"


def record(*, session: Session, actor: str, action: str, subject_type: str, subject_id: str, now: datetime,
           details: dict[str, Any] | None = None, versions: dict[str, Any] | None = None) -> None:
    """Append one entry inside the caller's transaction (so it lands exactly when the action does, or not at all).

    The entry is linked into the chain when the transaction commits (`_link_pending`), not here: the chain's
    head row is the one row every writing transaction locks, so it must be the last lock a transaction takes.
    Taken mid-transaction, it deadlocked on PostgreSQL against a transaction that locked a card first and
    the head second (seen under load with two API processes)."""
    session.info.setdefault(PENDING, []).append(dict(
        at=now, actor=actor, action=action, subject_type=subject_type, subject_id=subject_id,
        details=json.loads(_canonical(details or {})), versions=json.loads(_canonical(versions or {}))))


@event.listens_for(Session, "before_commit")
def _link_pending(session: Session) -> None:
    """Chain the transaction's audit entries just before it commits, after every other write of it."""
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    session.flush()  # the transaction's own rows first: the head is the last row it locks
    # Bumping the head takes the write lock on SQLite and a row lock on PostgreSQL, so two writers cannot
    # both extend the chain from the same tip.
    bumped = session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + len(pending)))
    if bumped.rowcount == 0:
        session.add(AuditHead(id=1, seq=len(pending), hash=GENESIS))
        session.flush()
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    session.refresh(head)
    seq, tip = head.seq - len(pending), head.hash
    for item in pending:
        seq += 1
        content = _content(seq, item["at"], item["actor"], item["action"], item["subject_type"], item["subject_id"],
                           item["details"], item["versions"])
        digest = chain_hash(tip, content)
        session.add(AuditEntry(seq=seq, prev_hash=tip, hash=digest, **item))
        tip = digest
    head.hash = tip
    session.flush()


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:  # the whole transaction rolled back: its entries never happened
        session.info.pop(PENDING, None)


@dataclass
class Verification:
    ok: bool
    entries: int
    problem: str | None = None
    seq: int | None = None


def _entries(session: Session, batch: int = 5000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(batch)).all()
        session.expunge_all()  # a long chain is walked in batches without holding every row
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify(*, session: Session) -> Verification:
    """Recompute the chain: the first entry whose content, order or link does not hold is reported."""
    prev, expected_seq, count = GENESIS, 1, 0
    for entry in _entries(session):
        if entry.seq != expected_seq:
            return Verification(False, count, f"entry {expected_seq} is missing (next is {entry.seq})", expected_seq)
        if entry.prev_hash != prev:
            return Verification(False, count, f"entry {entry.seq} does not link to entry {entry.seq - 1}", entry.seq)
        content = _content(entry.seq, entry.at, entry.actor, entry.action, entry.subject_type, entry.subject_id,
                           entry.details, entry.versions)
        if chain_hash(prev, content) != entry.hash:
            return Verification(False, count, f"entry {entry.seq} was changed after it was written", entry.seq)
        prev, expected_seq, count = entry.hash, expected_seq + 1, count + 1
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != count or head.hash != prev):
        return Verification(False, count, f"the chain ends at entry {count} but {head.seq} were written "
                                          "(entries removed from the end)", count + 1)
    return Verification(True, count)


def export(*, session: Session, path: Path) -> int:
    """Every entry as one JSON line, with its hashes, for auditors; written to a temporary file, then moved."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    count = 0
    with partial.open("w", encoding="utf-8") as out:
        for entry in _entries(session):
            content = _content(entry.seq, entry.at, entry.actor, entry.action, entry.subject_type, entry.subject_id,
                               entry.details, entry.versions)
            out.write(json.dumps({**content, "prev_hash": entry.prev_hash, "hash": entry.hash}, ensure_ascii=False) + "\n")
            count += 1
    partial.replace(path)
    return count


class HistoryEntry(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    details: dict[str, Any]
    versions: dict[str, Any]
    hash: str


def history(*, session: Session, subject_id: str) -> list[HistoryEntry]:
    """Every entry about one subject (a card, a draft, a review item...), oldest first."""
    rows = session.scalars(select(AuditEntry).where(AuditEntry.subject_id == subject_id).order_by(AuditEntry.seq)).all()
    return [HistoryEntry(seq=r.seq, at=r.at, actor=r.actor, action=r.action, details=r.details, versions=r.versions,
                         hash=r.hash) for r in rows]
