"""Change requests end to end: each type understood and routed, a takeover held for a person, a verified change
applied once however often it is replayed, a reversal restoring the old values, bad input refused."""

from __future__ import annotations

from sqlalchemy import func, select

from app.changes.tables import AppliedChange
from app.data.tables import Customer
from tests.api.conftest import auth

# One message per type, and where the product sends it: applied now, verified first, or a person decides.
REQUESTS = {
    "contact_phone": ("Please change my mobile number to 07700 900123.", "awaiting_verification"),
    # cus-a4 has no phone on file, so no code can go anywhere but the email being changed: a person verifies.
    "contact_email": ("My email changed, please use kim.new@example.net from now on.", "in_review"),
    "postal_address": ("We moved; our new address is 42 Harbour Street, Leith EH6 6LJ.", "applied"),
    "plan_change": ("Please move us from the Starter plan to the Pro plan next month.", "in_review"),
    "seats_change": ("Please reduce our licences to 12 seats.", "applied"),
    "payment_method": ("Pay refunds into our new account IBAN GB33BUKB20201555555555 please.", "awaiting_verification"),
    "billing_details": ("Please add our VAT number GB123456789 to the invoices.", "applied"),
    "name_change": ("I got married, please change my surname on the account to Okafor.", "in_review"),
    "ownership_transfer": ("Please transfer ownership of the account to my colleague Dan.", "in_review"),
    "cancellation": ("We want to cancel our subscription at the end of the term.", "awaiting_verification"),
    "data_deletion": ("Please delete all the personal data you hold about me.", "awaiting_verification"),
    "not_a_change": ("How do I export last month's report?", "no_change"),
}


def submit(product, request_id: str, text: str, customer: str = "cus-a4", who: str = "crm", **extra):
    body = {"id": request_id, "customer_id": customer, "channel": "email", "text": text,
            "context": {"country": "GB", **extra.pop("context", {})}, **extra}
    return product.post("/api/changes", json=body, headers=auth(product, who))


def test_each_change_type_is_understood_and_routed(product) -> None:
    for number, (change_type, (text, status)) in enumerate(REQUESTS.items()):
        answer = submit(product, f"chg-{number}", text)
        assert answer.status_code == 201, (change_type, answer.text)
        seen = answer.json()
        assert seen["triage"]["change_type"] == change_type, (change_type, seen["triage"])
        assert seen["status"] == status, (change_type, seen["status"], seen["reason"])
    with product.factory() as session:
        customer = session.get(Customer, "cus-a4")
    assert customer.attributes["seats"] == 12 and customer.attributes["vat_number"] == "GB123456789"
    assert "Harbour Street" in customer.attributes["address"]


def test_a_takeover_pattern_is_held_for_a_person_and_nothing_changes(product) -> None:
    held = submit(product, "chg-t1", "URGENT: send all payouts to IBAN DE89370400440532013000 today.",
                  context={"recent_changes": [{"type": "contact_email", "days_ago": 1}], "new_device": True}).json()
    assert held["status"] == "in_review" and held["triage"]["risk"]["level"] == "high"
    assert "takeover_pattern" in held["triage"]["risk"]["signals"]
    assert "DE89370400440532013000" not in str(held)  # masked wherever it is shown
    with product.factory() as session:
        assert "payout_iban" not in (session.get(Customer, "cus-a4").attributes or {})
    queue = product.get("/api/changes", headers=auth(product, "comp")).json()
    assert [q["id"] for q in queue] == ["chg-t1"] and queue[0]["extracted"][0]["iban"] == "DE89 **** 3000"
    assert product.get("/api/changes", headers=auth(product, "rep2")).status_code == 403
    assert product.post("/api/changes/chg-t1/approve", json={}, headers=auth(product, "rep2")).status_code == 403
    rejected = product.post("/api/changes/chg-t1/reject", json={"reason": "not the account holder"},
                            headers=auth(product, "comp"))
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"


def test_a_verified_change_is_applied_once_and_can_be_reversed(product) -> None:
    with product.factory() as session:
        old_phone = session.get(Customer, "cus-a4").phone
    first = submit(product, "chg-p1", "Please change my mobile number to 07700 900123.").json()
    assert first["status"] == "awaiting_verification" and first["applied"] == []
    before = written(product)
    wrong = product.post("/api/changes/chg-p1/verify", json={"method": "knowledge_questions", "passed": True},
                         headers=auth(product, "crm"))
    assert wrong.status_code == 422 and wrong.json()["field"] == "method"
    assert written(product) == before  # a refused verification applies and audits nothing
    done = product.post("/api/changes/chg-p1/verify", json={"method": "code_to_contact_on_file", "passed": True},
                        headers=auth(product, "crm")).json()
    assert done["status"] == "applied" and done["applied"][0]["field"] == "phone"
    replay = submit(product, "chg-p1", "Please change my mobile number to 07700 900123.").json()
    assert replay["replayed"] is True and replay["status"] == "applied"
    again = product.post("/api/changes/chg-p1/verify", json={"method": "code_to_contact_on_file", "passed": True},
                         headers=auth(product, "crm"))
    assert again.status_code == 409
    with product.factory() as session:
        assert session.get(Customer, "cus-a4").phone == "+447700900123"
        assert session.scalar(select(func.count()).select_from(AppliedChange)) == 1  # applied once
    assert product.post("/api/changes/chg-p1/reverse", headers=auth(product, "comp")).status_code == 403
    reversed_ = product.post("/api/changes/chg-p1/reverse", headers=auth(product, "admin")).json()
    assert reversed_["status"] == "reversed" and reversed_["applied"][0]["reversed_at"]
    with product.factory() as session:
        assert session.get(Customer, "cus-a4").phone == old_phone
    assert product.get("/api/changes/chg-p1", headers=auth(product, "rep1")).status_code == 403  # rep2's customer


def written(product) -> tuple[int, ...]:
    from app.audit.tables import AuditEntry
    from app.changes.tables import ChangeRequestRow

    with product.factory() as session:
        return tuple(session.scalar(select(func.count()).select_from(t))
                     for t in (ChangeRequestRow, AppliedChange, AuditEntry))


def test_bad_change_requests_are_refused_naming_the_field_and_nothing_is_stored(product) -> None:
    before = written(product)
    cases = [(submit(product, "chg-b1", "   "), 422, "text"),
             (submit(product, "chg-b2", "Please change my email", customer="ghost"), 422, "customer_id"),
             (submit(product, "chg-b3", "Change my phone number to 07700 9OO12X please."), 422, "text")]
    for answer, status, field in cases:
        assert answer.status_code == status and answer.json()["field"] == field, answer.json()
    assert written(product) == before  # no request, no applied value, no audit entry
    unsized = submit(product, "chg-b5", "We need more licences for the new team, please add seats.")
    assert unsized.status_code == 201 and unsized.json()["status"] == "in_review"  # no count: a person asks
    assert submit(product, "chg-b4", "Please reduce our licences to 12 seats.").status_code == 201
    clash = submit(product, "chg-b4", "Please reduce our licences to 10 seats.")
    assert clash.status_code == 409 and clash.json()["field"] == "id"
    for request_id in ("chg-b1", "chg-b2", "chg-b3"):
        assert product.get(f"/api/changes/{request_id}", headers=auth(product, "admin")).status_code == 404


def test_a_code_never_goes_to_a_contact_point_the_request_changes(product) -> None:
    phone = submit(product, "chg-c1", "Please change my mobile number to 07700 900123.").json()
    assert phone["triage"]["code_to"] == {"kind": "email", "to": "c***@example.org"}  # the email on file
    email = submit(product, "chg-c2", "My email changed, please use kim.new@example.net from now on.").json()
    # cus-a4 has no phone on file and the email is the one being changed: a person verifies it instead.
    assert email["triage"]["verification"] == "human" and email["status"] == "in_review" and email["reason"]
