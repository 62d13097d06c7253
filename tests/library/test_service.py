"""The library in the store: versions, approval gating, retirement, who and when; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from app.library import service
from app.library.service import LibraryError
from tests.library.conftest import LIBRARY, template_text

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


def folder_with(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "lib"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.md").write_text(text)
    return folder


def test_import_is_idempotent_and_keeps_status(store) -> None:
    first = service.import_directory(store, LIBRARY, actor="alice", now=NOW)
    assert len(first.created) == 37 and not first.errors
    again = service.import_directory(store, LIBRARY, actor="alice", now=NOW)
    assert again.created == [] and len(again.unchanged) == 37
    statuses = {row["id"]: row["status"] for row in service.list_templates(store)}
    assert statuses["email-upsell-payments-draft"] == "draft"
    assert statuses["email-new-lead-old-offer"] == "retired"
    live = {spec.id for spec in service.live_versions(store)}
    assert len(live) == 34 and "email-upsell-payments-draft" not in live and "email-new-lead-old-offer" not in live


def test_a_bad_file_is_rejected_alone(store, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"email-good-one": template_text("email-good-one"),
                                      "email-bad-one": template_text("email-bad-one", channel="fax"),
                                      "email-misnamed": template_text("email-other-id")})
    report = service.import_directory(store, folder, actor="alice", now=NOW)
    assert report.created == ["email-good-one"]
    assert any("email-bad-one.md: channel" in e for e in report.errors)
    assert any("must match the file name" in e for e in report.errors)
    assert [row["id"] for row in service.list_templates(store)] == ["email-good-one"]


def test_editing_an_approved_template_needs_approval_again(store, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"email-test-template": template_text()})
    service.import_directory(store, folder, actor="alice", now=NOW)
    version = service.edit(store, "email-test-template", {"body": "Hello {{ customer.first_name }}!"},
                           actor="bob", now=NOW)
    assert version == 2
    # The approved v1 stays live until v2 is approved.
    [live] = service.live_versions(store)
    assert (live.version, live.body) == (1, "Hi {{ customer.first_name }}, about {{ product.name }}.")
    assert service.list_templates(store)[0]["status"] == "draft"
    service.approve(store, "email-test-template", actor="carol", now=NOW)
    [live] = service.live_versions(store)
    assert (live.version, live.body) == (2, "Hello {{ customer.first_name }}!")
    history = [(e["action"], e["version"], e["actor"]) for e in service.show(store, "email-test-template")["history"]]
    assert history == [("import", 1, "alice"), ("edit", 2, "bob"), ("approve", 2, "carol")]


def test_a_changed_file_becomes_a_draft_version(store, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"email-test-template": template_text()})
    service.import_directory(store, folder, actor="alice", now=NOW)
    folder_with(tmp_path, **{"email-test-template": template_text(body="Changed {{ customer.first_name }}.")})
    report = service.import_directory(store, folder, actor="alice", now=NOW)
    assert report.new_versions == ["email-test-template"]
    info = service.show(store, "email-test-template")
    assert [(v["version"], v["status"]) for v in info["versions"]] == [(1, "approved"), (2, "draft")]
    assert info["approved_version"] == 1


def test_retired_templates_are_never_live_and_stay_retired(store, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"email-test-template": template_text()})
    service.import_directory(store, folder, actor="alice", now=NOW)
    service.retire(store, "email-test-template", actor="alice", now=NOW, note="out of date")
    assert service.live_versions(store) == []
    with pytest.raises(LibraryError, match="retired"):
        service.approve(store, "email-test-template", actor="carol", now=NOW)
    with pytest.raises(LibraryError, match="retired"):
        service.edit(store, "email-test-template", {"title": "New title"}, actor="bob", now=NOW)


@pytest.mark.parametrize(("changes", "message"), [
    ({"body": "Hi {{ customer.age }}"}, "unknown placeholder"),
    ({"status": "approved"}, "cannot edit field(s) status"),
    ({"title": "A test template"}, "nothing changed"),
])
def test_bad_edits_are_refused(store, tmp_path: Path, changes: dict, message: str) -> None:
    service.import_directory(store, folder_with(tmp_path, **{"email-test-template": template_text()}),
                             actor="alice", now=NOW)
    with pytest.raises(LibraryError, match="email-test-template") as info:
        service.edit(store, "email-test-template", changes, actor="bob", now=NOW)
    assert message in str(info.value)


def test_unknown_template_is_named(store) -> None:
    with pytest.raises(LibraryError, match="no template 'nope'"):
        service.approve(store, "nope", actor="carol", now=NOW)
