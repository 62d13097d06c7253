"""Assembling and checking a draft before anyone sees it."""

from __future__ import annotations

import pytest

from app.drafting import compose

PRODUCTS = {"pro": "Pro Plan", "payments": "Payments", "analytics": "Analytics Add-on"}


def test_opening_goes_after_the_greeting_whatever_the_layout() -> None:
    email = "Hi Ana,\n\nThe approved body.\n\nBest regards,\nSam"
    assert compose.with_opening(email, "Good to hear from you") == (
        "Hi Ana,\n\nGood to hear from you.\n\nThe approved body.\n\nBest regards,\nSam")
    sms = "Hi Ana, Sam from Brightwave here. Any questions? Reply STOP to opt out."
    assert compose.with_opening(sms, "Thanks for your note.") == (
        "Hi Ana, Sam from Brightwave here. Thanks for your note. Any questions? Reply STOP to opt out.")
    call = "This call may be recorded.\n\nHello Ana, this is Sam from Brightwave. I am calling about Pro Plan."
    assert "this is Sam from Brightwave. Thanks for your time. I am calling" in compose.with_opening(call, "Thanks for your time.")


@pytest.mark.parametrize(("opening", "problem"), [
    ("I saw you looked at Pro Plan and", "complete sentence"),
    ("Hi Ana, I saw you looked at Pro Plan.", "greeting"),
    ("I am sorry for any confusion.", "refer to the product"),
    ("I saw you looked at Pro Plan " + "again " * 40 + ".", "characters"),
])
def test_unusable_openings_are_named(opening: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        compose.check_opening(opening, 160, "Pro Plan browsed Pro Plan 3 days ago")
    assert compose.check_opening("I saw you were looking at the Pro Plan recently. We have a sale!", 160,
                                 "Pro Plan browsed Pro Plan 3 days ago") == "I saw you were looking at the Pro Plan recently."


def test_draft_problems_cover_disclosure_length_placeholders_and_unsupported_claims() -> None:
    ok = dict(subject=None, channel="sms", disclosures=["Reply STOP to opt out."], product_names=PRODUCTS,
              product_key="pro", trusted="Hi Ana, Pro Plan seats. Reply STOP to opt out. browsed Pro Plan 3 days ago")
    assert compose.problems(body="Hi Ana, 3 days ago you looked at Pro Plan. Reply STOP to opt out.", **ok) == []
    assert "required line missing" in compose.problems(body="Hi Ana, about Pro Plan.", **ok)[0]
    assert "characters (limit 160)" in compose.problems(body="x" * 150 + " Reply STOP to opt out.", **ok)[0]
    assert "[Your Name]" in compose.problems(body="Hi Ana, [Your Name] here. Reply STOP to opt out.", **ok)[0]
    found = compose.problems(body="Hi Ana, get 90% off Pro Plan and Payments for $10. Reply STOP to opt out.", **ok)
    assert found and all(claim in found[0] for claim in ("90%", "$10", "Payments"))
    email = {**ok, "channel": "email", "disclosures": []}
    assert compose.problems(body="Hi Ana, about Pro Plan.", **email) == ["email has no subject line"]


def test_model_output_is_parsed_and_validated() -> None:
    parsed = compose.parse_output('Sure! {"opening": "Thanks for asking about Pro Plan.", "facts_used": []}', "opening")
    assert parsed.opening == "Thanks for asking about Pro Plan."
    with pytest.raises(ValueError, match="not a JSON object"):
        compose.parse_output("Thanks!", "opening")
    with pytest.raises(ValueError, match="not valid JSON"):
        compose.parse_output('{"opening": "Thanks", }', "opening")
    with pytest.raises(ValueError, match="body: is required"):
        compose.parse_output('{"subject": "Hi"}', "rewrite")


def test_an_email_rewrite_must_carry_its_subject_and_other_channels_need_none() -> None:
    # A small model skipped the optional subject of an email rewrite; the grammar now asks for it first.
    schema = compose.wire_schema("rewrite", has_subject=True)
    assert schema["required"] == ["subject", "body"] and next(iter(schema["properties"])) == "subject"
    assert "subject" not in compose.wire_schema("rewrite").get("required", [])


def test_a_rewrite_that_guts_the_template_is_unusable_even_with_every_disclosure() -> None:
    template = ("This call may be recorded for quality and training purposes.\n\nHello Ana, this is Sam from Brightwave. "
                "You mentioned interest in Pro Plan, so I wanted to go through how your team uses us today.\n\n"
                "- Ask how many people use the product now and what they wish it did.\n- Offer a trial of Pro Plan.\n\n"
                "If you would rather we did not call again, tell me and I will note it right away.")
    disclosures = ["This call may be recorded for quality and training purposes.",
                   "If you would rather we did not call again, tell me and I will note it right away."]
    check = dict(subject=None, channel="call", disclosures=disclosures, trusted=template, product_names={},
                 product_key="", template=template)
    gutted = " ".join(disclosures)  # seen from the small model: only the two required lines
    assert any("leaves out most of the approved template" in p for p in compose.problems(body=gutted, **check))
    adapted = template.replace("Hello Ana, this is Sam", "Hello Ana, it's Sam").replace("today.", "today. Sorry setup has been hard.")
    assert compose.problems(body=adapted, **check) == []
