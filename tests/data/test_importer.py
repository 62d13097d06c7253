"""`outreach import`: every row validated, bad rows reported and saved, good rows written once."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from app.data.importer import ImportFileError, import_file
from app.data.mapping import MappingError, load_mapping
from app.data.tables import Consent, Customer, Event, OutreachAttempt
from tests.conftest import NOW

MAPPING = """
source: {sep: ","}
records:
  customer:
    id: customer_id
    first_name: first_name
    email: email
    timezone: tz
    lifecycle_stage: stage
  consent:
    customer_id: customer_id
    channel: {const: email}
    granted: email_ok
  outreach:
    id: attempt_id
    customer_id: customer_id
    attempted_at: when
    channel: {column: channel, values: {phone: call}}
    outcome: outcome
"""
HEADER = "customer_id,first_name,email,tz,stage,email_ok,attempt_id,when,channel,outcome\n"
GOOD = [
    "c1,Ana,ana@example.com,Europe/Lisbon,lead,true,a1,2026-03-01T10:00:00,phone,replied\n",
    "c2,Ben,ben@example.com,America/New_York,active,false,a2,2026-03-02T15:30:00+00:00,email,no_answer\n",
]


def count(factory, table) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(table))


@pytest.fixture
def mapping(tmp_path: Path):
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING)
    return load_mapping(path)


def write(tmp_path: Path, rows: list[str], name: str = "history.csv", header: str = HEADER) -> Path:
    path = tmp_path / name
    path.write_text(header + "".join(rows))
    return path


@pytest.mark.slow
def test_bank_marketing_imports_whole_and_idempotently(store, bank_file: Path, tmp_path: Path) -> None:
    mapping = load_mapping("bank-marketing")
    report = import_file(bank_file, mapping, session_factory=store, now=NOW, rejects_path=tmp_path / "r.csv")
    assert (report.rows_read, report.rows_imported, report.rows_rejected) == (45211, 45211, 0)
    again = import_file(bank_file, mapping, session_factory=store, now=NOW, rejects_path=tmp_path / "r.csv")
    assert again.rows_imported == 45211
    assert count(store, Customer) == 45211 and count(store, OutreachAttempt) == 45211
    with store() as session:
        first = session.get(OutreachAttempt, "bank-1-call")
        last = session.get(OutreachAttempt, "bank-45211-call")
        converted = session.scalar(select(func.count()).where(OutreachAttempt.outcome == "converted"))
    # The file runs May 2008 - November 2010; `duration` (known only after the call) is not imported.
    assert first.attempted_at.date().isoformat() == "2008-05-05"
    assert (last.attempted_at.year, last.attempted_at.month) == (2010, 11)
    assert converted == 5289
    assert "duration" not in json.dumps(first.attributes)
    assert first.attributes["contacts_in_campaign"] == 1


def test_good_rows_are_written_with_consent(store, mapping, tmp_path: Path) -> None:
    report = import_file(write(tmp_path, GOOD), mapping, session_factory=store, now=NOW)
    assert report.rows_rejected == 0 and report.records_written == {"customer": 2, "consent": 2, "outreach": 2}
    with store() as session:
        assert session.get(OutreachAttempt, "a1").channel == "call"
        assert session.get(Consent, ("c2", "email")).granted is False
        assert session.get(Customer, "c1").timezone == "Europe/Lisbon"


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        ("c3,Cy,cy@example.com,UTC,lead,true,a3,2026-03-01T10:00:00,pigeon,replied\n", "channel", "pigeon"),
        ("c3,Cy,cy@example.com,UTC,lead,true,a3,2026-13-01T10:00:00,email,replied\n", "attempted_at", "datetime"),
        ("c3,Cy,cy@example.com,UTC,lead,true,a3,2027-03-01T10:00:00,email,replied\n", "attempted_at", "in the future"),
        ("c3,Cy,not-an-email,UTC,lead,true,a3,2026-03-01T10:00:00,email,replied\n", "email", "not-an-email"),
        ("c3,Cy,cy@example.com,Mars/Base,lead,true,a3,2026-03-01T10:00:00,email,replied\n", "timezone", "Mars/Base"),
        ("c3,Cy,cy@example.com,UTC,lead,maybe,a3,2026-03-01T10:00:00,email,replied\n", "granted", "maybe"),
        ("c1,Cy,cy@example.com,UTC,lead,true,a3,2026-03-01T10:00:00,email,replied\n", "id", "duplicate customer 'c1'"),
        (",Cy,cy@example.com,UTC,lead,true,a3,2026-03-01T10:00:00,email,replied\n", "id", "required"),
    ],
    ids=["unknown-channel", "bad-date", "future-date", "bad-email", "bad-timezone", "bad-bool", "duplicate-id",
         "missing-id"],
)
def test_bad_rows_are_rejected_with_row_field_and_reason(store, mapping, tmp_path: Path, row, field, reason) -> None:
    path = write(tmp_path, [*GOOD, row])
    report = import_file(path, mapping, session_factory=store, now=NOW)
    assert (report.rows_imported, report.rows_rejected) == (2, 1)
    error = next(e for e in report.errors if e.field == field)
    assert error.row == 3 and reason in error.reason
    # The whole row is rejected: none of its records is written.
    assert count(store, Customer) == 2 and count(store, OutreachAttempt) == 2
    rejected = pd.read_csv(report.rejected_file, dtype=str)
    assert rejected["_row"].tolist() == ["3"] and field in rejected["_errors"][0]


def test_fixed_rejects_reimport_under_their_original_row(store, tmp_path: Path) -> None:
    mapping = load_mapping("bank-marketing")
    header = ('"age";"job";"marital";"education";"default";"balance";"housing";"loan";"contact";"day";"month";'
              '"duration";"campaign";"pdays";"previous";"poutcome";"y"\n')
    rows = ['58;"management";"married";"tertiary";"no";2143;"yes";"no";"unknown";5;"may";261;1;-1;0;"unknown";"no"\n',
            'old;"technician";"single";"secondary";"no";29;"yes";"no";"unknown";5;"may";151;1;-1;0;"unknown";"no"\n']
    path = write(tmp_path, rows, "bank.csv", header)
    report = import_file(path, mapping, session_factory=store, now=NOW)
    assert report.rows_rejected == 1 and str(report.errors[0]).startswith("row 2: customer.age")
    fixed = Path(report.rejected_file)
    fixed.write_text(fixed.read_text().replace("old;", "44;"))
    again = import_file(fixed, mapping, session_factory=store, now=NOW)
    assert again.rows_rejected == 0
    with store() as session:
        assert session.get(Customer, "bank-2").age == 44
    assert count(store, Customer) == 2


def test_history_for_an_unknown_customer_is_rejected(store, tmp_path: Path) -> None:
    mapping_path = tmp_path / "events.yaml"
    mapping_path.write_text("records:\n  event:\n    id: id\n    customer_id: customer\n    occurred_at: at\n"
                            "    type: type\n    text: text\n")
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"id": "e1", "customer": "ghost", "at": "2026-01-01T00:00:00Z", "type": "page_view",
                                "text": None}) + "\n")
    report = import_file(path, load_mapping(mapping_path), session_factory=store, now=NOW)
    assert report.rows_rejected == 1 and "unknown customer 'ghost'" in report.errors[0].reason
    assert count(store, Event) == 0


def test_parquet_and_jsonl_inputs(store, mapping, tmp_path: Path) -> None:
    frame = pd.read_csv(write(tmp_path, GOOD), dtype=str)
    frame.to_parquet(tmp_path / "history.parquet")
    frame.to_json(tmp_path / "history.jsonl", orient="records", lines=True)
    for name in ("history.parquet", "history.jsonl"):
        report = import_file(tmp_path / name, mapping, session_factory=store, now=NOW)
        assert (report.rows_imported, report.rows_rejected) == (2, 0)
    assert count(store, OutreachAttempt) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('customer_id,first_name\n"c1,Ana\n', "cannot be read"),
        ("customer_id,first_name,email\nc1,Ana,a@example.com\n", "missing column(s) 'attempt_id'"),
        ("", "cannot be read"),
    ],
    ids=["malformed", "missing-column", "empty"],
)
def test_unreadable_files_write_nothing(store, mapping, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "broken.csv"
    path.write_text(content)
    with pytest.raises(ImportFileError, match="broken.csv") as info:
        import_file(path, mapping, session_factory=store, now=NOW)
    assert message in str(info.value)
    assert count(store, Customer) == 0


def test_dry_run_writes_nothing(store, mapping, tmp_path: Path) -> None:
    report = import_file(write(tmp_path, GOOD), mapping, session_factory=store, now=NOW, dry_run=True)
    assert report.dry_run and report.rows_rejected == 0 and count(store, Customer) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("records:\n  customer:\n    idd: x\n", "records.customer.idd: Value error, records.customer.idd: not a field"),
        ("records:\n  shopper:\n    id: x\n", "unknown record kind"),
        ("records: [\n", "not valid YAML"),
        ("records:\n  customer:\n    id: {colum: x}\n", "records.customer.id"),
    ],
)
def test_bad_mapping_files_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(MappingError, match="m.yaml") as info:
        load_mapping(path)
    assert message.split(": Value error")[0] in str(info.value)
