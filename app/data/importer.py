"""Import CSV / Parquet / JSON Lines into the store through a mapping.

The whole file is read and validated before anything is written: a file that cannot be
parsed, or lacks a mapped column, writes nothing. Each row becomes its canonical records
(customer, consent, event, outreach); a row with any invalid record is rejected whole
and reported with its row number, field, column and reason, and copied to a rejected-rows
file that can be fixed and imported again. Valid rows are written in batches, one
transaction per batch, as upserts on their stable ids: importing a file twice adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.data.mapping import Mapping, is_missing, resolve
from app.domain import RECORD_TYPES, TIMESTAMP_FIELDS, Record
from app.store.db import unit_of_work, upsert
from app.data.tables import Customer, TABLE_FOR_RECORD

# Write order respects foreign keys: customers before what refers to them.
WRITE_ORDER = ("customer", "consent", "event", "outreach")
REJECT_COLUMNS = ("_row", "_errors")


class ImportFileError(ValueError):
    """The file as a whole cannot be imported; nothing was written."""


class RowError(BaseModel):
    row: int
    record: str
    field: str
    column: str | None
    reason: str

    def __str__(self) -> str:
        column = f" (column {self.column!r})" if self.column and self.column != self.field else ""
        return f"row {self.row}: {self.record}.{self.field}{column}: {self.reason}"


class ImportReport(BaseModel):
    file: str
    rows_read: int
    rows_imported: int
    rows_rejected: int
    records_written: dict[str, int]
    errors: list[RowError]
    rejected_file: str | None = None
    dry_run: bool = False


def read_table(path: Path, mapping: Mapping) -> pd.DataFrame:
    """The file's rows as a frame of raw values; a parse failure names the file."""
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    fmt = mapping.source.format or {".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(
        path.suffix.lower(), "csv")
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
        elif fmt == "jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        else:
            # Strings only: typing is the schema's job, so a bad value is reported, not coerced.
            frame = pd.read_csv(path, sep=mapping.source.sep, dtype=str, keep_default_na=False,
                                on_bad_lines="error", encoding="utf-8")
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImportFileError(f"{path}: cannot be read as {fmt}: {reason}") from None
    missing = sorted(mapping.source_columns() - set(frame.columns))
    if missing:
        raise ImportFileError(f"{path}: missing column(s) {', '.join(repr(c) for c in missing)} "
                              f"(the file has: {', '.join(map(str, frame.columns))})")
    return frame.astype(object).where(frame.notna(), None)


def _record_key(kind: str, record: Record) -> tuple[Any, ...]:
    if kind == "consent":
        return (record.customer_id, record.channel)  # type: ignore[attr-defined]
    return (record.id,)  # type: ignore[attr-defined]


def _build_row(mapping: Mapping, row: dict[str, Any], row_number: int, now: datetime
               ) -> tuple[dict[str, Record], list[RowError]]:
    records: dict[str, Record] = {}
    errors: list[RowError] = []
    for kind, fields in mapping.records.items():
        values: dict[str, Any] = {}
        for name, spec in fields.items():
            try:
                value = resolve(spec, row)
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                errors.append(RowError(row=row_number, record=kind, field=name,
                                       column=mapping.column_of(kind, name), reason=str(exc)))
                continue
            if not is_missing(value):
                values[name] = value
        try:
            record = RECORD_TYPES[kind].model_validate(values)
        except ValidationError as exc:
            for error in exc.errors():
                name = str(error["loc"][0]) if error["loc"] else kind
                if error["type"] == "missing":
                    reason = "is required but empty or not mapped"
                elif error["type"] == "extra_forbidden":
                    reason = "is not a field of this record"
                else:
                    reason = f"{error['msg']} (got {error['input']!r})"
                errors.append(RowError(row=row_number, record=kind, field=name,
                                       column=mapping.column_of(kind, name), reason=reason))
            continue
        stamp = getattr(record, TIMESTAMP_FIELDS[kind])
        if stamp is not None and stamp > now:
            field = TIMESTAMP_FIELDS[kind]
            errors.append(RowError(row=row_number, record=kind, field=field, column=mapping.column_of(kind, field),
                                   reason=f"{stamp.isoformat()} is in the future"))
            continue
        records[kind] = record
    return records, errors


def _existing_customers(session: Session, ids: Iterable[str]) -> set[str]:
    wanted = list(set(ids))
    found: set[str] = set()
    for start in range(0, len(wanted), 900):
        chunk = wanted[start:start + 900]
        found |= set(session.scalars(select(Customer.id).where(Customer.id.in_(chunk))))
    return found


def import_file(path: Path, mapping: Mapping, *, session_factory: sessionmaker[Session], now: datetime,
                batch_size: int = 5000, rejects_path: Path | None = None, dry_run: bool = False,
                progress: Callable[[int], None] | None = None) -> ImportReport:
    """Validate every row of `path`, write the valid ones, report and save the rejected ones."""
    frame = read_table(path, mapping)
    rows = frame.to_dict("records")
    has_row_column = "_row" in frame.columns

    valid: list[tuple[int, dict[str, Any], dict[str, Record]]] = []
    errors: list[RowError] = []
    rejected_rows: list[dict[str, Any]] = []
    first_seen: dict[tuple[str, tuple[Any, ...]], int] = {}
    for index, row in enumerate(rows, start=1):
        row_number = int(row["_row"]) if has_row_column and not is_missing(row["_row"]) else index
        row["_row"] = row_number
        records, row_errors = _build_row(mapping, row, row_number, now)
        for kind, record in records.items():
            key = (kind, _record_key(kind, record))
            if key in first_seen:
                field = "id" if kind != "consent" else "channel"
                row_errors.append(RowError(row=row_number, record=kind, field=field,
                                           column=mapping.column_of(kind, field),
                                           reason=f"duplicate {kind} {key[1][0]!r} (first at row {first_seen[key]})"))
        if row_errors:
            errors.extend(row_errors)
            rejected_rows.append({**row, "_errors": "; ".join(str(e) for e in row_errors)})
            continue
        for kind, record in records.items():
            first_seen[(kind, _record_key(kind, record))] = row_number
        valid.append((row_number, row, records))

    # References to customers neither in this file nor in the store are rejected up front.
    file_customers = {r["customer"].id for _, _, r in valid if "customer" in r}  # type: ignore[attr-defined]
    referenced = {getattr(rec, "customer_id") for _, _, r in valid for k, rec in r.items() if k != "customer"}
    with session_factory() as session:
        known = file_customers | _existing_customers(session, referenced - file_customers)
    kept: list[tuple[int, dict[str, Record]]] = []
    for row_number, row, records in valid:
        unknown = [(k, rec) for k, rec in records.items() if k != "customer" and getattr(rec, "customer_id") not in known]
        if not unknown:
            kept.append((row_number, records))
            continue
        row_errors = [RowError(row=row_number, record=k, field="customer_id", column=mapping.column_of(k, "customer_id"),
                               reason=f"unknown customer {getattr(rec, 'customer_id')!r}") for k, rec in unknown]
        errors.extend(row_errors)
        rejected_rows.append({**row, "_errors": "; ".join(str(e) for e in row_errors)})

    written = {kind: 0 for kind in mapping.records}
    if not dry_run:
        for start in range(0, len(kept), batch_size):
            batch = kept[start:start + batch_size]
            with unit_of_work(session_factory) as session:
                for kind in (k for k in WRITE_ORDER if k in written):
                    payload = [records[kind].model_dump() for _, records in batch]
                    upsert(session, TABLE_FOR_RECORD[kind].__table__, payload)
                    written[kind] += len(payload)
            if progress:
                progress(len(batch))

    rejected_file = None
    if rejected_rows:
        rejected_file = rejects_path or path.with_name(f"{path.stem}.rejected{path.suffix or '.csv'}")
        _write_rejects(rejected_file, frame.columns, rejected_rows, mapping)
    return ImportReport(file=str(path), rows_read=len(rows), rows_imported=0 if dry_run else len(kept),
                        rows_rejected=len(rejected_rows), records_written=written, errors=errors,
                        rejected_file=str(rejected_file) if rejected_file else None, dry_run=dry_run)


def _write_rejects(path: Path, columns: Iterable[str], rows: list[dict[str, Any]], mapping: Mapping) -> None:
    """The rejected rows as they came in, plus `_row` (kept on re-import) and `_errors` (ignored)."""
    ordered = [c for c in columns if c not in REJECT_COLUMNS] + list(REJECT_COLUMNS)
    frame = pd.DataFrame(rows, columns=ordered)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame.astype(str).to_parquet(path, index=False)
    elif suffix in (".jsonl", ".ndjson"):
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_csv(path, sep=mapping.source.sep, index=False)
