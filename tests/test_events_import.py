"""`outreach events import FILE`: a help desk's batch of service conversations (JSON Lines or CSV), checked row by
row before anything is written, then resolved, quarantined and (with --route) routed to cards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.cli import app
from app.cli.common import services
from app.config import get_settings
from app.data.tables import Consent, Customer
from app.intents.tables import ServiceEvent
from app.store.db import unit_of_work

runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    factory = services().store
    with unit_of_work(factory) as session:
        session.add(Customer(id="cus-1", first_name="Ana", last_name="Lima", email="ana@acme.example", owner_rep="rep-1",
                             team="team-a", lifecycle_stage="lead", attributes={}))
        session.flush()
        session.add_all(Consent(customer_id="cus-1", channel=c, granted=True) for c in ("email", "sms", "call"))
    yield factory
    get_settings.cache_clear()


def rows() -> list[dict]:
    base = {"event_type": "email_received", "timestamp": "2026-01-05T10:00:00Z", "channel": "email"}
    return [
        {**base, "event_id": "hd-1", "email": "ana@acme.example", "message": "How much is the Pro plan for 12 seats?"},
        {**base, "event_id": "hd-2", "email": "who@nowhere.example", "message": "Please send me your prices."},
        {**base, "event_id": "hd-3", "user_id": "cus-1", "message": "Thanks, all sorted now!", "satisfaction": 5},
    ]


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def test_a_batch_is_stored_resolved_and_routed(store, tmp_path: Path) -> None:
    file = write_jsonl(tmp_path / "events.jsonl", rows())
    result = runner.invoke(app, ["events", "import", str(file), "--route", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["rows"] == 3 and report["imported"] == 3 and report["matched"] == 2 and report["quarantined"] == 1
    assert report["routed"]["events"] == 2 and report["routed"]["failed"] == 0
    again = json.loads(runner.invoke(app, ["events", "import", str(file), "--json"]).output)
    assert again["imported"] == 0 and again["duplicates"] == 3  # importing twice adds nothing


def test_one_bad_row_and_nothing_is_written(store, tmp_path: Path) -> None:
    items = rows()
    items[2]["channel"] = "fax"
    result = runner.invoke(app, ["events", "import", str(write_jsonl(tmp_path / "bad.jsonl", items))])
    assert result.exit_code == 2 and "row 3" in result.output and "channel" in result.output
    assert "Traceback" not in result.output
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text("event_id,event_type,timestamp,channel,message\nhd-9,chat_message,,chat,hello\n")
    result = runner.invoke(app, ["events", "import", str(csv_file)])
    assert result.exit_code == 2 and "row 1" in result.output and "timestamp" in result.output
    with store() as session:
        assert session.scalar(select(func.count()).select_from(ServiceEvent)) == 0


def test_a_worker_of_its_own_routes_what_was_imported_once(store, tmp_path: Path) -> None:
    """`outreach worker` beside API processes that do no background work: one round routes the batch through
    the job queue; the next finds nothing left to do."""
    file = write_jsonl(tmp_path / "events.jsonl", rows())
    assert runner.invoke(app, ["events", "import", str(file), "--json"]).exit_code == 0
    first = runner.invoke(app, ["worker", "--once", "--draft-limit", "0"])
    assert first.exit_code == 0, first.output
    routed = json.loads(first.output)["events"]
    assert sorted(line.split(":")[0] for line in routed) == ["hd-1", "hd-3"]  # hd-2 is quarantined
    again = json.loads(runner.invoke(app, ["worker", "--once", "--draft-limit", "0"]).output)
    assert again["events"] == []
