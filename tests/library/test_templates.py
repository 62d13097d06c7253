"""Template files are validated in full; each problem names the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.library.templates import TemplateFileError, parse_file, render
from tests.library.conftest import LIBRARY, template_text


def write(tmp_path: Path, text: str, name: str = "email-test-template.md") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_starter_library_is_valid_and_covers_every_channel_and_stage() -> None:
    specs = [parse_file(p) for p in sorted(LIBRARY.glob("*.md")) if p.name != "README.md"]
    approved = [s for s in specs if s.status == "approved"]
    assert len(approved) >= 30
    outreach = {(s.channel, s.stage) for s in approved if s.stage != "change_confirmation"}
    assert outreach == {(c, st) for c in ("email", "sms", "call", "chat")
                        for st in ("new_lead", "follow_up", "upsell", "renewal", "win_back", "change_request")}
    # Applied change requests are confirmed by email and by text (script_library/changes.yaml `confirmations`).
    assert {s.channel for s in approved if s.stage == "change_confirmation"} == {"email", "sms"}
    for spec in specs:
        assert spec.disclosures and all(d in spec.body for d in spec.disclosures), spec.id
        if spec.channel == "sms":
            assert "Reply STOP to opt out." in spec.body and len(spec.body.strip()) <= 160, spec.id


def test_rendering_fills_placeholders_and_fails_on_a_missing_value(tmp_path: Path) -> None:
    spec = parse_file(LIBRARY / "sms-follow-up-pricing.md")
    context = {"customer": {"first_name": "Ana"}, "rep": {"first_name": "Sam"}, "company": {"name": "Brightwave"},
               "product": {"name": "Pro Plan"}}
    text = render(spec.body, context)
    assert text.startswith("Hi Ana, Sam at Brightwave.") and "Pro Plan" in text
    with pytest.raises(Exception, match="first_name"):
        render(spec.body, {**context, "customer": {}})


@pytest.mark.parametrize(("text", "message"), [
    (template_text().replace("title: A test template\n", ""), "title: is required"),
    (template_text(channel="fax"), "channel: Input should be 'email', 'sms', 'call' or 'chat'"),
    (template_text(body="Hi {{ customer.age }}"), "body: unknown placeholder {{ customer.age }}"),
    (template_text(body="Hi {{ offer.discount }}"), "body: unknown placeholder {{ offer.discount }}"),
    (template_text(body="Hi {% if customer.first_name %}"), "body: invalid Jinja2 at line 1"),
    (template_text(status="published"), "status: Input should be"),
    (template_text(extra="colour: blue\n"), "colour: Extra inputs are not permitted"),
    ("no front matter here", "no YAML front matter"),
    ("---\nid: [unclosed\n---\nbody", "front matter is not valid YAML"),
], ids=["missing-title", "unknown-channel", "unknown-field", "unknown-root", "bad-jinja", "bad-status",
        "extra-field", "no-front-matter", "bad-yaml"])
def test_invalid_files_are_named_with_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TemplateFileError) as info:
        parse_file(path)
    assert str(info.value).startswith(str(path)) and message in str(info.value)


def test_change_fields_are_only_for_change_confirmations() -> None:
    """{{ change.told }} exists only when a change request is confirmed; an outreach template using it would
    fail at drafting time, so it is refused when it is written."""
    import pytest
    from pydantic import ValidationError

    spec = parse_file(LIBRARY / "sms-change-confirmed.md")
    with pytest.raises(ValidationError, match="change confirmations"):
        type(spec).model_validate({**spec.model_dump(), "stage": "follow_up"})
