"""The library in the store: versions, approval gating, retirement, who and when; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from app.library import service
from app.audit.service import history
from app.errors import Conflict, Forbidden, NotFound
from app.library.service import LibraryError
from tests.conftest import read, write
from tests.library.conftest import LIBRARY, template_text

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


def folder_with(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "lib"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.md").write_text(text)
    return folder


def test_import_is_idempotent_and_keeps_status(store) -> None:
    first = write(store, service.import_directory, folder=LIBRARY, actor="alice", now=NOW)
    assert len(first.created) == 39 and not first.errors
    again = write(store, service.import_directory, folder=LIBRARY, actor="alice", now=NOW)
    assert again.created == [] and len(again.unchanged) == 39
    statuses = {row.id: row.status for row in read(store, service.list_templates)}
    assert statuses["email-upsell-payments-draft"] == "draft"
    assert statuses["email-new-lead-old-offer"] == "retired"
    live = {spec.id for spec in read(store, service.live_versions)}
    assert len(live) == 36 and "email-upsell-payments-draft" not in live and "email-new-lead-old-offer" not in live


def test_a_bad_file_is_rejected_alone(store, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"email-good-one": template_text("email-good-one"),
                                      "email-bad-one": template_text("email-bad-one", channel="fax"),
                                      "email-misnamed": template_text("email-other-id")})
    report = write(store, service.import_directory, folder=folder, actor="alice", now=NOW)
    assert report.created == ["email-good-one"]
    assert any("email-bad-one.md: channel" in e for e in report.errors)
    assert any("must match the file name" in e for e in report.errors)
    assert [row.id for row in read(store, service.list_templates)] == ["email-good-one"]


def test_editing_an_approved_template_needs_approval_again(store, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"email-test-template": template_text()})
    write(store, service.import_directory, folder=folder, actor="alice", now=NOW)
    version = write(store, service.edit, template_id="email-test-template", changes={"body": "Hello {{ customer.first_name }}!"},
                           actor="bob", now=NOW)
    assert version == 2
    # The approved v1 stays live until v2 is approved.
    [live] = read(store, service.live_versions)
    assert (live.version, live.body) == (1, "Hi {{ customer.first_name }}, about {{ product.name }}.")
    assert read(store, service.list_templates)[0].status == "draft"
    write(store, service.approve, template_id="email-test-template", actor="carol", now=NOW)
    [live] = read(store, service.live_versions)
    assert (live.version, live.body) == (2, "Hello {{ customer.first_name }}!")
    shown = read(store, service.show, template_id="email-test-template")
    history = [(e.action, e.version, e.actor) for e in shown.history]
    assert history == [("import", 1, "alice"), ("edit", 2, "bob"), ("approve", 2, "carol")]


def test_a_changed_file_becomes_a_draft_version(store, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"email-test-template": template_text()})
    write(store, service.import_directory, folder=folder, actor="alice", now=NOW)
    folder_with(tmp_path, **{"email-test-template": template_text(body="Changed {{ customer.first_name }}.")})
    report = write(store, service.import_directory, folder=folder, actor="alice", now=NOW)
    assert report.new_versions == ["email-test-template"]
    info = read(store, service.show, template_id="email-test-template")
    assert [(v.version, v.status) for v in info.versions] == [(1, "approved"), (2, "draft")]
    assert info.approved_version == 1


def test_retired_templates_are_never_live_and_stay_retired(store, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, **{"email-test-template": template_text()})
    write(store, service.import_directory, folder=folder, actor="alice", now=NOW)
    write(store, service.retire, template_id="email-test-template", actor="alice", now=NOW, note="out of date")
    assert read(store, service.live_versions) == []
    with pytest.raises(Conflict, match="retired"):
        write(store, service.approve, template_id="email-test-template", actor="carol", now=NOW)
    with pytest.raises(LibraryError, match="retired"):
        write(store, service.edit, template_id="email-test-template", changes={"title": "New title"}, actor="bob", now=NOW)


@pytest.mark.parametrize(("changes", "message"), [
    ({"body": "Hi {{ customer.age }}"}, "unknown placeholder"),
    ({"status": "approved"}, "status: cannot be edited"),
    ({"title": "A test template"}, "nothing changed"),
    # Rendering is bounded: no arithmetic, loops or calls, and the output must fit the budget.
    ({"body": "Hi {{ customer.first_name * 10**8 }}"}, "fields, if-conditions and text filters only"),
    ({"body": "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"},
     "fields, if-conditions and text filters only"),
    ({"body": "Hi {{ customer.first_name.__class__ }}"}, "a placeholder is a root and a field"),
    ({"body": "Hi {{ customer.first_name|format_map }}"}, "filter 'format_map' is not allowed"),
    ({"body": "x" * 9_000 + "{{ customer.first_name }}" * 60}, "renders to"),
])
def test_bad_edits_are_refused(store, tmp_path: Path, changes: dict, message: str) -> None:
    write(store, service.import_directory, folder=folder_with(tmp_path, **{"email-test-template": template_text()}),
          actor="alice", now=NOW)
    with pytest.raises(LibraryError) as info:
        write(store, service.edit, template_id="email-test-template", changes=changes, actor="bob", now=NOW)
    assert message in str(info.value)


def test_a_conditional_script_is_fine() -> None:
    from app.library.templates import check_body, render

    body = "Hi {% if customer.first_name %}{{ customer.first_name|title }}{% else %}there{% endif %}."
    check_body(body)
    assert render(body, {"customer": {"first_name": "ana"}}) == "Hi Ana."


def test_the_author_of_a_version_cannot_approve_it(store, tmp_path: Path) -> None:
    write(store, service.import_directory, folder=folder_with(tmp_path, **{"email-test-template": template_text()}),
          actor="alice", now=NOW)
    write(store, service.edit, template_id="email-test-template", changes={"title": "A better title"}, actor="bob",
          now=NOW)
    with pytest.raises(Forbidden, match="four eyes"):
        write(store, service.approve, template_id="email-test-template", actor="bob", now=NOW)
    assert write(store, service.approve, template_id="email-test-template", actor="carol", now=NOW) == 2
    actions = [e.action for e in read(store, history, subject_id="email-test-template")]
    assert actions == ["template_import", "template_edit", "template_approve"]


def test_unknown_template_is_named(store) -> None:
    with pytest.raises(NotFound, match="no template 'nope'"):
        write(store, service.approve, template_id="nope", actor="carol", now=NOW)


def test_template_stages_and_intents_come_from_the_company_taxonomy(store, tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    source = (LIBRARY / "call-follow-up-setup-help.md").read_text()
    (folder / "call-support-check-in.md").write_text(
        source.replace("id: call-follow-up-setup-help", "id: call-support-check-in").replace("stage: follow_up",
                                                                                             "stage: helpdesk"))
    taxonomy = (LIBRARY / "intents.yaml").read_text()
    (folder / "intents.yaml").write_text(taxonomy)
    refused = write(store, service.import_directory, folder=folder, actor="alice", now=NOW)
    assert refused.created == [] and "stage" in refused.errors[0] and "helpdesk" in refused.errors[0]
    (folder / "intents.yaml").write_text(taxonomy.replace("stages: [onboarding, support]",
                                                          "stages: [onboarding, support, helpdesk]"))
    accepted = write(store, service.import_directory, folder=folder, actor="alice", now=NOW)
    assert accepted.errors == [] and accepted.created == ["call-support-check-in"]
    (folder / "call-support-check-in.md").write_text(
        source.replace("id: call-follow-up-setup-help", "id: call-support-check-in").replace(
            "- implementation_blocker", "- telepathy"))
    unknown = write(store, service.import_directory, folder=folder, actor="alice", now=NOW)
    assert "intents" in unknown.errors[0] and "telepathy" in unknown.errors[0]
