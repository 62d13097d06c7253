"""Service conversations from a help desk: resolved to a customer (or quarantined), read, routed to a card with
an SLA, and traceable; bad input refused with the field named and nothing written."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from app.cards.tables import Card
from app.data.tables import Consent, Customer, Event
from app.intents.tables import ServiceEvent
from tests.api.conftest import auth, build_product


def conversation(product, event_id: str, **fields) -> dict:
    now = product.clock.now()
    return {"event_id": event_id, "event_type": "chat_message", "timestamp": (now - timedelta(minutes=1)).isoformat(),
            "channel": "chat", "session_id": "chat-77", "agent_id": "agent-9",
            "message": "Hi, this is Kim. What would the Pro plan cost us for 30 people on a yearly contract?",
            **fields}


def consent_everywhere(product, customer_id: str) -> None:
    with product.factory() as session, session.begin():
        for channel in ("email", "sms", "call"):
            session.merge(Consent(customer_id=customer_id, channel=channel, granted=True))


def post(product, body: dict, who: str = "crm"):
    return product.post("/api/events", json=body, headers=auth(product, who))


def test_a_conversation_from_a_known_email_becomes_a_handoff_card_with_its_lineage(product) -> None:
    consent_everywhere(product, "cus-a3")
    accepted = post(product, conversation(product, "se-1", email="CUS-A3@example.org"))
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["identity"] == "matched" and accepted.json()["queued"] is True

    report = product.worker.tick()
    line = next(line for line in report.events if line.startswith("se-1"))
    assert "route handoff_to_owner" in line, line

    seen = product.get("/api/events/se-1", headers=auth(product, "rep1")).json()  # cus-a3 is rep1's lead
    assert seen["status"] == "processed" and seen["customer_id"] == "cus-a3"
    assert seen["product"] == "pro"  # the catalogue product the message names
    assert seen["identity"]["method"] == "email" and seen["identity"]["confidence"] == 1.0
    assert seen["read_as"]["intent"] == "pricing_question" and seen["read_as"]["confidence"] >= 0.45
    assert seen["read_as"]["severity"] == "medium" and seen["read_as"]["stage_candidate"] == "opportunity"
    assert seen["intent_primary"] == "pricing_question" and seen["severity"] == "medium"  # the field names
    assert seen["lifecycle_stage_candidate"] == "opportunity" and seen["intents"][0]["intent"] == "pricing_question"
    assert seen["model_version"] == seen["decision_model_version"]
    assert seen["route"] == "handoff_to_owner" and seen["card_id"]
    assert seen["score_before"] == 0.7 and seen["score_after"] is not None  # the batch decision, then the fresh one
    for version in ("feature_set_version", "taxonomy_version", "routing_policy_version", "decision_policy_version"):
        assert seen[version], version
    assert seen["taxonomy_version"] == product.services.intents.taxonomy.version
    assert seen["routing_policy_version"] == product.services.routing.version
    assert seen["processing_seconds"] is not None

    card = product.get(f"/api/cards/{seen['card_id']}", headers=auth(product, "rep1")).json()
    assert card["customer"]["id"] == "cus-a3" and card["status"] == "open"
    assert card["trigger"].startswith("pricing_question") and "read from the message" in card["trigger"]
    assert card["route"] == "handoff_to_owner" and card["sla_minutes"] == 30
    with product.factory() as session:
        stored = session.get(ServiceEvent, "se-1")
        event = session.get(Event, "se-1")
    assert stored.message.startswith("Hi, this is Kim")  # the raw transcript is kept for audit
    assert stored.email_key and "cus-a3" not in (stored.email_key + (stored.session_key or ""))  # only hashed keys
    assert event.customer_id == "cus-a3" and event.intent == "pricing_question"  # the features see the reading


def test_a_repeat_is_a_no_op_and_the_same_conversation_again_is_suppressed(product) -> None:
    consent_everywhere(product, "cus-a3")
    first = conversation(product, "se-1", email="cus-a3@example.org")
    assert post(product, first).status_code == 202
    product.worker.tick()
    again = post(product, first)
    assert again.status_code == 202 and again.json()["duplicate"] is True
    follow_up = conversation(product, "se-2", message="And what discount would we get on a three-year contract?")
    assert post(product, follow_up).json()["identity"] == "matched"  # the same chat session, no email this time
    lines = product.worker.tick().events
    assert not [line for line in lines if line.startswith("se-1")]  # the repeat made no work
    second = product.get("/api/events/se-2", headers=auth(product, "crm")).json()
    assert second["identity"]["method"] == "probabilistic" and "session" in second["identity"]["reason"]
    if product.get("/api/events/se-1", headers=auth(product, "crm")).json()["card_id"]:
        assert second["status"] == "suppressed" and second["card_id"] is None, second
    with product.factory() as session:
        live = session.scalar(select(func.count()).select_from(Card).where(Card.customer_id == "cus-a3",
                                                                           Card.status.in_(("open", "queued"))))
    assert live == 1


def test_an_unknown_writer_waits_in_quarantine_until_an_analyst_decides(product) -> None:
    stranger = conversation(product, "se-9", email="someone@elsewhere.example", session_id="chat-99",
                            message="Can I speak to someone about pricing? Call me on +44 20 7946 0958.")
    accepted = post(product, stranger)
    assert accepted.status_code == 202 and accepted.json() == {"event_id": "se-9", "queued": False, "duplicate": False,
                                                               "identity": "quarantined"}
    colleague = conversation(product, "se-10", email="new.person@example.org", session_id="chat-100")
    assert post(product, colleague).json()["identity"] == "quarantined"  # a shared company domain is not enough
    assert not [line for line in product.worker.tick().events if line.startswith("se-9")]
    with product.factory() as session:
        assert session.get(Event, "se-9") is None  # nothing written to any customer

    assert product.get("/api/quarantine", headers=auth(product, "rep1")).status_code == 403
    held = product.get("/api/quarantine", headers=auth(product, "ds")).json()
    assert [h["event_id"] for h in held] == ["se-9", "se-10"]
    assert "7946" not in held[0]["message"] and "[phone]" in held[0]["message"]  # redacted for the analyst
    assert held[1]["email_domain"] == "example.org" and len(held[1]["candidates"]) == 5
    assert product.get("/api/events/se-9", headers=auth(product, "crm")).json()["status"] == "quarantined"

    resolved = product.post("/api/quarantine/se-10/resolve", json={"customer_id": "cus-a3"}, headers=auth(product, "ds"))
    assert resolved.status_code == 200 and resolved.json()["queued"] is True
    before = counts(product)
    again = product.post("/api/quarantine/se-10/resolve", json={"customer_id": "cus-a3"}, headers=auth(product, "ds"))
    assert again.status_code == 409
    ghost = product.post("/api/quarantine/se-9/resolve", json={"customer_id": "ghost"}, headers=auth(product, "ds"))
    assert ghost.status_code == 422 and ghost.json()["field"] == "customer_id"
    assert counts(product) == before  # refused resolutions queue nothing and audit nothing
    dropped = product.post("/api/quarantine/se-9/discard", json={"reason": "spam"}, headers=auth(product, "ds"))
    assert dropped.status_code == 200 and dropped.json()["identity"] == "discarded"
    assert product.get("/api/quarantine", headers=auth(product, "ds")).json() == []
    line = next(line for line in product.worker.tick().events if line.startswith("se-10"))
    assert "failed" not in line
    status = product.get("/api/events/se-10", headers=auth(product, "crm")).json()
    assert status["identity"]["method"] == "analyst" and status["customer_id"] == "cus-a3"
    assert product.get("/api/events/se-9", headers=auth(product, "crm")).json()["status"] == "discarded"


def test_an_account_id_and_company_domain_together_identify_the_writer(product) -> None:
    with product.factory() as session, session.begin():
        session.get(Customer, "cus-a4").attributes = {"account_id": "ACC-4410"}
    body = conversation(product, "se-20", email="someone.else@example.org", account_id="acc-4410", session_id=None)
    assert post(product, body).json()["identity"] == "matched"
    status = product.get("/api/events/se-20", headers=auth(product, "crm")).json()
    assert status["customer_id"] == "cus-a4" and status["identity"]["method"] == "probabilistic"
    assert status["identity"]["confidence"] >= 0.95


def counts(product) -> tuple[int, ...]:
    """Rows a refused action must not add: service events, events, queue rows, labels, audit entries."""
    from app.audit.tables import AuditEntry
    from app.cards.tables import EventJob
    from app.intents.tables import IntentLabel

    with product.factory() as session:
        return tuple(session.scalar(select(func.count()).select_from(table))
                     for table in (ServiceEvent, Event, EventJob, IntentLabel, AuditEntry))


def test_bad_service_events_are_refused_with_the_field_named_and_nothing_written(product) -> None:
    now = product.clock.now()
    before = counts(product)
    good = conversation(product, "se-bad", email="cus-a3@example.org")
    cases = {
        "event_id": {k: v for k, v in good.items() if k != "event_id"},
        "timestamp": {k: v for k, v in good.items() if k != "timestamp"},
        "channel": {**good, "channel": "carrier_pigeon"},
        "message": {**good, "message": "   "},
        "event_type": {**good, "event_type": "mood"},
    }
    for field, body in cases.items():
        refused = post(product, body)
        assert refused.status_code == 422 and refused.json()["field"] == field, (field, refused.json())
    future = post(product, {**good, "timestamp": (now + timedelta(hours=2)).isoformat()})
    assert future.status_code == 422 and future.json()["field"] == "timestamp"
    long = post(product, {**good, "message": "pricing " * 2000})
    assert long.status_code == 422 and long.json()["field"] == "message"
    huge = post(product, {**good, "message": "x" * 1_000_000})
    assert huge.status_code == 413 and huge.json()["field"] == "body"
    assert post(product, good, who="rep1").status_code == 403  # service events come from integrations
    assert counts(product) == before  # no event, no queue row, no audit entry
    assert post(product, good).status_code == 202
    clash = post(product, {**good, "message": "Something else entirely."})
    assert clash.status_code == 409 and clash.json()["field"] == "event_id"
    with product.factory() as session:
        assert session.scalar(select(func.count()).select_from(ServiceEvent)) == 1
        assert session.get(ServiceEvent, "se-bad").message == good["message"]


def test_a_correction_teaches_the_classifier_and_keeps_what_it_had_read(product) -> None:
    consent_everywhere(product, "cus-a3")
    odd = "Our warehouse robots keep printing the shipping labels upside down since Tuesday."
    first = conversation(product, "se-30", email="cus-a3@example.org", message=odd, session_id="chat-30")
    assert post(product, first).status_code == 202
    product.worker.tick()
    before = product.get("/api/events/se-30", headers=auth(product, "rep1")).json()["read_as"]
    corrected = "complaint" if before["intent"] != "complaint" else "implementation_blocker"
    stored = counts(product)
    assert product.post("/api/events/se-30/label", json={"intent": "telepathy"},
                        headers=auth(product, "rep1")).json()["field"] == "intent"
    assert product.post("/api/events/se-30/label", json={"intent": corrected},
                        headers=auth(product, "rep2")).status_code == 403  # not rep2's customer
    assert counts(product) == stored  # refused labels write no label and no audit entry
    done = product.post("/api/events/se-30/label", json={"intent": corrected}, headers=auth(product, "rep1"))
    assert done.status_code == 200 and done.json()["read_as"] == before["intent"]

    again = conversation(product, "se-31", email="cus-a3@example.org", message=odd.replace("Tuesday", "Monday"),
                         session_id="chat-31")
    assert post(product, again).status_code == 202
    product.worker.tick()
    after = product.get("/api/events/se-31", headers=auth(product, "rep1")).json()["read_as"]
    assert after["intent"] == corrected and "1 labelled messages" in after["model"], after
    assert product.get("/api/events/se-30", headers=auth(product, "rep1")).json()["read_as"] == before  # kept


def test_a_classification_over_its_time_budget_routes_nothing(tmp_path, embedder, reviewer) -> None:  # noqa: ANN001, F811

    slow = build_product(tmp_path, embedder, reviewer, classify_budget_ms=0.001)  # nothing is that fast
    assert post(slow, conversation(slow, "se-40", email="cus-a3@example.org")).status_code == 202
    line = next(line for line in slow.worker.tick().events if line.startswith("se-40"))
    assert "over the 0 ms budget" in line, line
    status = slow.get("/api/events/se-40", headers=auth(slow, "crm")).json()
    assert status["status"] == "failed" and status["read_as"] is None and status["card_id"] is None
