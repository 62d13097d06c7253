"""Change requests end to end: each type understood and routed, a takeover held for a person, a verified change
applied once however often it is replayed, a reversal restoring the old values, bad input refused."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from app.changes.tables import AppliedChange
from app.data.tables import Customer
from app.users import service as users
from tests.api.conftest import auth
from tests.conftest import write

# One message per type, and where the product sends it: applied now, verified first, or a person decides.
REQUESTS = {
    "contact_phone": ("Please change my mobile number to 07700 900123.", "awaiting_verification"),
    # cus-a4 has no phone on file, so no code can go anywhere but the email being changed: a person verifies.
    "contact_email": ("My email changed, please use kim.new@example.net from now on.", "in_review"),
    "postal_address": ("We moved; our new address is 42 Harbour Street, Leith EH6 6LJ.", "applied"),
    # Nothing to verify, but the product does not write plans: someone in billing applies it and says so.
    "plan_change": ("Please move us from the Starter plan to the Pro plan next month.", "awaiting_manual_apply"),
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
        product.clock.advance(days=31)  # past the risk window: each request is judged on its own
        product.tokens["crm"] = write(product.factory, users.issue_token, name="crm", now=product.clock.now(),
                                      ttl_days=30)
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
    assert unsized.status_code == 201 and unsized.json()["status"] == "awaiting_manual_apply"  # no count: a person
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


def give_history(product, customer_id: str = "cus-a4") -> None:
    """What the knowledge questions are asked about: an account opened in 2023, a purchase, a support chat."""
    from app.data.tables import Event

    with product.factory() as session, session.begin():
        session.get(Customer, customer_id).created_at = datetime(2023, 3, 14, tzinfo=timezone.utc)
        session.add(Event(id=f"{customer_id}-buy", customer_id=customer_id, type="purchase", product="analytics",
                          occurred_at=product.clock.now() - timedelta(days=40)))
        session.add(Event(id=f"{customer_id}-chat", customer_id=customer_id, type="service_conversation",
                          channel="chat", text="How do I export?", occurred_at=product.clock.now() - timedelta(days=9)))


RIGHT = {"Which of our products did you buy most recently?": "Analytics Add-on",
         "How did you last get in touch with our support team?": "Chat",
         "In which year did you open your account with us?": "2023"}


def test_a_payout_change_is_verified_by_questions_from_history_then_waits_out_its_cooling_off(product) -> None:
    give_history(product)
    payout = "Pay refunds into our new account IBAN GB33BUKB20201555555555 please."
    first = submit(product, "chg-k1", payout).json()
    assert first["status"] == "awaiting_verification" and first["triage"]["verification"] == "knowledge_questions"
    rules = first["triage"]["changes"][0]["rules"]
    assert rules["cooling_off_days"] == 2 and "payouts.account" in rules["touches"] and rules["told"]
    early = product.post("/api/changes/chg-k1/verify", json={"method": "knowledge_questions", "answers": {}},
                         headers=auth(product, "crm"))
    assert early.status_code == 409 and early.json()["field"] == "answers"  # no questions asked yet
    asked = product.post("/api/changes/chg-k1/questions", headers=auth(product, "crm")).json()
    questions = asked["questions"]
    assert len(questions) >= 2 and all(RIGHT[q["text"]] in q["options"] and len(q["options"]) >= 3 for q in questions)
    assert "answer" not in str(questions) and "salt" not in str(asked)  # the answers are never shown
    again = product.post("/api/changes/chg-k1/questions", headers=auth(product, "crm")).json()
    assert again["questions"] == questions  # asked again: the same questions
    partial = product.post("/api/changes/chg-k1/verify", headers=auth(product, "crm"),
                           json={"method": "knowledge_questions", "answers": {questions[0]["id"]: "x"}})
    assert partial.status_code == 422 and partial.json()["field"] == "answers"
    answers = {q["id"]: RIGHT[q["text"]].upper() for q in questions}  # case does not matter
    done = product.post("/api/changes/chg-k1/verify", json={"method": "knowledge_questions", "answers": answers},
                        headers=auth(product, "crm")).json()
    assert done["status"] == "cooling_off" and done["applied"] == [] and done["verified_by"].startswith("knowledge")
    assert done["effective_at"].startswith("2026-11-04")  # two days of cooling-off
    with product.factory() as session:
        assert "payout_iban" not in session.get(Customer, "cus-a4").attributes
    assert product.worker.tick(draft_limit=0).changes == []  # not due yet
    product.clock.advance(days=2, minutes=1)
    round_ = product.worker.tick(draft_limit=0)
    assert round_.changes[0] == "chg-k1: written after its cooling-off period"
    settled = product.get("/api/changes/chg-k1", headers=auth(product, "admin")).json()
    assert settled["status"] == "applied" and settled["applied"][0]["after"] == "GB33 **** 5555"
    assert settled["applied"][0]["verified_by"].startswith("knowledge_questions")
    # Confirmed on the contact on file, from the approved template, reviewed and released through the gate.
    [confirmation] = settled["confirmations"]
    assert confirmation["channel"] == "email" and confirmation["contact"] == "on_file"
    assert confirmation["review"] == "ready" and confirmation["released"] is True
    with product.factory() as session:
        assert session.get(Customer, "cus-a4").attributes["payout_iban"] == "GB33BUKB20201555555555"


def test_wrong_answers_reject_the_change_and_a_thin_history_goes_to_a_person(product) -> None:
    give_history(product)
    payout = "Please send our payouts to IBAN GB33BUKB20201555555555 from now on."
    submit(product, "chg-k2", payout)
    questions = product.post("/api/changes/chg-k2/questions", headers=auth(product, "crm")).json()["questions"]
    wrong = {q["id"]: next(o for o in q["options"] if o != RIGHT[q["text"]]) for q in questions}
    failed = product.post("/api/changes/chg-k2/verify", json={"method": "knowledge_questions", "answers": wrong},
                          headers=auth(product, "crm")).json()
    assert failed["status"] == "rejected" and failed["applied"] == []
    # cus-a3 has no history to ask about: a person verifies instead.
    submit(product, "chg-k3", payout, customer="cus-a3")
    thin = product.post("/api/changes/chg-k3/questions", headers=auth(product, "crm")).json()
    assert thin["status"] == "in_review" and thin["triage"]["verification"] == "human" and thin["questions"] == []


def test_a_contact_change_is_confirmed_on_the_old_and_the_new_address(product) -> None:
    with product.factory() as session, session.begin():
        session.get(Customer, "cus-a1").phone = "+447700900556"  # where the code goes: not the email being changed
    asked = submit(product, "chg-e1", "Please use kim.fresh@example.net as my email address.", customer="cus-a1").json()
    assert asked["triage"]["code_to"]["kind"] == "phone" and asked["confirmations"] == []
    done = product.post("/api/changes/chg-e1/verify", json={"method": "code_to_contact_on_file", "passed": True},
                        headers=auth(product, "crm")).json()
    assert done["status"] == "applied"
    sent = {(c["contact"], c["channel"], c["to"]) for c in done["confirmations"]}
    assert sent == {("old", "email", "c***@example.org"), ("new", "email", "k***@example.net")}
    assert all(c["review"] == "ready" and c["released"] for c in done["confirmations"])
    from app.drafting.tables import Draft

    with product.factory() as session:
        bodies = [session.get(Draft, c["draft_id"]).body for c in done["confirmations"]]
    assert all("updated your email address" in b and "UNSUBSCRIBE" in b for b in bodies)
    assert product.worker.tick(draft_limit=0).changes == []  # confirmed once: the worker finds nothing to do


def test_the_accounts_own_history_raises_the_risk_of_a_payout_change(product) -> None:
    """The caller says nothing about recent changes; the store remembers the email change a day earlier."""
    submit(product, "chg-h1", "My email changed, please use kim.new@example.net from now on.")
    product.clock.advance(days=1)
    payout = submit(product, "chg-h2", "Pay refunds into our new account IBAN GB33BUKB20201555555555 please.").json()
    assert "takeover_pattern" in payout["triage"]["risk"]["signals"] and payout["status"] == "in_review"


def test_a_change_can_be_withdrawn_until_it_is_written(product) -> None:
    submit(product, "chg-w1", "Please change my mobile number to 07700 900123.")
    assert product.post("/api/changes/chg-w1/withdraw", json={"reason": "customer called back"},
                        headers=auth(product, "rep1")).status_code == 403  # not rep1's customer
    gone = product.post("/api/changes/chg-w1/withdraw", json={"reason": "customer called back"},
                        headers=auth(product, "rep2")).json()
    assert gone["status"] == "withdrawn"
    late = product.post("/api/changes/chg-w1/verify", json={"method": "code_to_contact_on_file", "passed": True},
                        headers=auth(product, "crm"))
    assert late.status_code == 409
    applied = submit(product, "chg-w2", "Please reduce our licences to 12 seats.")
    assert product.post("/api/changes/chg-w2/withdraw", json={"reason": "too late"},
                        headers=auth(product, "rep2")).status_code == 409
    assert applied.json()["status"] == "applied"


def test_a_conversation_asking_for_a_change_becomes_a_change_request(product) -> None:
    """Through POST /api/events: a known email is the requester; a customer found only probabilistically (an
    account id and company domain) must pass a code before anything is written, even for a new address."""
    from tests.api.test_service_events import conversation, post

    move = "Hi, we have moved our office: the new address is 12 Quay Street, Manchester M3 3JE. Please update it."
    assert post(product, conversation(product, "se-c1", email="cus-a3@example.org", message=move)).status_code == 202
    with product.factory() as session, session.begin():
        session.get(Customer, "cus-a4").attributes = {"account_id": "ACC-4410"}
    unsure = conversation(product, "se-c2", email="someone.else@example.org", account_id="acc-4410", session_id=None,
                          message=move)
    assert post(product, unsure).json()["identity"] == "matched"
    product.worker.tick(draft_limit=0)
    known = product.get("/api/changes/se-c1", headers=auth(product, "admin")).json()
    assert known["triage"]["change_type"] == "postal_address" and known["status"] == "applied"
    assert known["confirmations"] and known["confirmations"][0]["released"]
    probable = product.get("/api/changes/se-c2", headers=auth(product, "admin")).json()
    assert probable["status"] == "awaiting_verification"
    assert probable["triage"]["verification"] == "code_to_contact_on_file"
    assert "identity_matched_probabilistically" in probable["triage"]["risk"]["signals"]
    with product.factory() as session:
        assert "address" not in session.get(Customer, "cus-a4").attributes
        assert "Quay Street" in session.get(Customer, "cus-a3").attributes["address"]
    product.worker.tick(draft_limit=0)  # the event is not read twice: still one request each
    from app.changes.tables import ChangeRequestRow

    with product.factory() as session:
        assert session.scalar(select(func.count()).select_from(ChangeRequestRow)) == 2


def test_a_cancellation_cools_off_then_a_person_applies_it_and_the_customer_is_told(product) -> None:
    submit(product, "chg-x1", "We want to cancel our subscription at the end of the term.")
    cooling = product.post("/api/changes/chg-x1/verify", json={"method": "code_to_contact_on_file", "passed": True},
                           headers=auth(product, "crm")).json()
    assert cooling["status"] == "cooling_off" and cooling["effective_at"].startswith("2026-11-16")  # 14 days
    assert cooling["confirmations"] == []
    product.clock.advance(days=14, hours=1)
    product.worker.tick(draft_limit=0)
    queue = product.get("/api/changes", params={"status": "awaiting_manual_apply"}, headers=auth(product, "crm"))
    assert [q["id"] for q in queue.json()] == ["chg-x1"] and queue.json()[0]["rules"][0]["approval"] == "none"
    assert product.get("/api/changes", params={"status": "everything"},
                       headers=auth(product, "comp")).json()["field"] == "status"
    assert product.post("/api/changes/chg-x1/applied", headers=auth(product, "rep1")).status_code == 403
    done = product.post("/api/changes/chg-x1/applied", headers=auth(product, "rep2")).json()
    assert done["status"] == "applied" and done["applied"] == []  # nothing the product writes itself
    [confirmation] = done["confirmations"]
    from app.drafting.tables import Draft

    with product.factory() as session:
        assert "subscription ends at the end of the current term" in session.get(Draft, confirmation["draft_id"]).body
    assert product.post("/api/changes/chg-x1/applied", headers=auth(product, "rep2")).status_code == 409


def test_refused_questions_answers_withdrawals_and_manual_applies_write_nothing(product) -> None:
    give_history(product)
    submit(product, "chg-r1", "Pay refunds into our new account IBAN GB33BUKB20201555555555 please.")
    submit(product, "chg-r2", "Please move us from the Starter plan to the Pro plan next month.")
    before = written(product)
    refused = [
        product.post("/api/changes/chg-r1/questions", headers=auth(product, "rep2")),  # reps do not verify
        product.post("/api/changes/chg-r1/verify", json={"method": "knowledge_questions", "answers": {}},
                     headers=auth(product, "crm")),  # no questions asked yet
        product.post("/api/changes/chg-r1/withdraw", json={"reason": "x"}, headers=auth(product, "rep1")),
        product.post("/api/changes/chg-r2/applied", headers=auth(product, "comp")),
        product.post("/api/changes/chg-r1/applied", headers=auth(product, "crm")),  # not waiting for a person
    ]
    assert [r.status_code for r in refused] == [403, 409, 403, 403, 409]
    assert written(product) == before  # no request, applied value or audit entry added
    with product.factory() as session:
        from app.changes.tables import ChangeRequestRow

        rows = {r: session.get(ChangeRequestRow, r) for r in ("chg-r1", "chg-r2")}
        assert rows["chg-r1"].status == "awaiting_verification" and rows["chg-r1"].challenge is None
        assert rows["chg-r2"].status == "awaiting_manual_apply"
