"""Reading a batch of canonical service events (CSV or JSON Lines) into validated records: all or nothing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from pydantic import ValidationError

from app.data.importer import ImportFileError
from app.domain import ServiceEventRecord, first_problem

MAX_ROWS = 100_000


def read_service_events(path: Path) -> list[ServiceEventRecord]:
    """Every row validated; the first bad one is named by its row number and field, and nothing is returned."""
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            if path.suffix.lower() in (".jsonl", ".ndjson"):
                rows = [_json_row(path, line, number) for number, line in enumerate(handle, start=1) if line.strip()]
            elif path.suffix.lower() == ".csv":
                rows = list(csv.DictReader(handle))
            else:
                raise ImportFileError(f"{path}: use a .csv or .jsonl file")
    except UnicodeDecodeError:
        raise ImportFileError(f"{path}: is not UTF-8 text") from None
    except csv.Error as exc:
        raise ImportFileError(f"{path}: cannot be read as CSV ({exc})") from None
    if not rows:
        raise ImportFileError(f"{path}: has no events")
    if len(rows) > MAX_ROWS:
        raise ImportFileError(f"{path}: has {len(rows):,} events; import at most {MAX_ROWS:,} at a time")
    records: list[ServiceEventRecord] = []
    seen: dict[str, tuple[int, ServiceEventRecord]] = {}
    for number, row in enumerate(rows, start=1):
        # CSV has no null: an empty cell is a missing value.
        cleaned = {key: (None if value == "" else value) for key, value in row.items() if key is not None}
        try:
            record = ServiceEventRecord.model_validate(cleaned)
        except ValidationError as exc:
            raise ImportFileError(f"{path}: row {number}: {first_problem(exc)}") from None
        first = seen.setdefault(record.event_id, (number, record))
        if first[1] != record:
            raise ImportFileError(f"{path}: row {number}: event_id {record.event_id!r} is also row {first[0]} "
                                  "with other content")
        records.append(record)
    return records


def _json_row(path: Path, line: str, number: int) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"{path}: line {number}: not JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise ImportFileError(f"{path}: line {number}: must be a JSON object")
    return row
