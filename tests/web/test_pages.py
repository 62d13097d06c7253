"""Test cases A-1 and B-1 once through the browser: adopt a card, reject with a reason, approve in the queue."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.cards.tables import Card
from app.feedback.tables import Feedback
from tests.web.conftest import signed_in

pytestmark = pytest.mark.slow


def test_a1_rep_adopts_a_card_and_rejects_another_with_a_reason(browser, live) -> None:
    live.worker.tick()
    page = signed_in(browser, live, "rep1")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    assert page.url.endswith("/inbox")
    cards = page.locator("section.card")
    assert cards.count() == 2
    first = cards.nth(0)
    assert "browsed Analytics Add-on 3 days ago" in first.inner_text()
    assert "Hi Kim0," in first.locator("pre.script").inner_text()
    first.locator("button.adopt").click()
    assert "Adopted" in page.locator(".flash").inner_text()
    second = page.locator("section.card", has_text="Kim1")
    second.locator("summary", has_text="Reject").click()
    second.locator("select[name=reason]").select_option("bad_timing")
    second.locator("input[name=note]").fill("<script>alert('x')</script> call next week")
    second.locator("button", has_text="Reject").click()
    assert "Rejected" in page.locator(".flash").inner_text()
    assert dialogs == []  # the note was stored as text, never run as script
    with live.factory() as session:
        statuses = {c.customer_id: c.status for c in session.scalars(select(Card).where(Card.rep_id == "rep-01"))}
        assert statuses["cus-a1"] == "adopted" and statuses["cus-a2"] == "rejected" and statuses["cus-a3"] == "open"
        note = session.scalars(select(Feedback.comment).where(Feedback.kind == "rep_rejection")).one()
        assert note.startswith("<script>")


def test_b1_send_waits_for_compliance_who_approves_in_the_queue(browser, live) -> None:
    live.worker.tick()
    rep = signed_in(browser, live, "rep1")
    sensitive = rep.locator("section.card", has_text="Kim1")
    assert "requires approval" in sensitive.inner_text()
    sensitive.locator("button", has_text="Mark sent").click()
    assert "waits for compliance approval" in rep.locator(".flash.error").inner_text()

    officer = signed_in(browser, live, "comp")
    assert officer.url.endswith("/compliance")
    item = officer.locator("section.card").first
    assert "the customer's industry (healthcare) is sensitive" in item.inner_text()
    item.locator("button", has_text="Approve").click()
    assert "Approved" in officer.locator(".flash").inner_text()
    assert officer.locator("section.card").count() == 0

    rep.goto(f"{live.base}/inbox")
    rep.locator("section.card", has_text="Kim1").locator("button", has_text="Mark sent").click()
    assert "Marked as sent" in rep.locator(".flash").inner_text()


def test_compliance_sees_the_findings_highlighted(browser, live) -> None:
    live.worker.tick()
    rep = signed_in(browser, live, "rep1")
    card = rep.locator("section.card", has_text="Kim0")
    card.locator("summary", has_text="Edit, then adopt").click()
    text = card.locator("textarea[name=text]")
    text.fill(text.input_value().replace("a short demo", "a short demo with 20% off"))
    card.locator("button", has_text="Adopt edited").click()
    assert "waits for compliance approval" in rep.locator(".flash").inner_text()
    officer = signed_in(browser, live, "comp")
    item = officer.locator("section.card", has_text="20%")
    assert item.locator("mark").first.inner_text() == "20%"
    item.locator("select[name=reason_code]").select_option("inaccurate")
    item.locator("input[aria-label=\"rejection comment\"]").fill("no discounts in this campaign")
    item.locator("button", has_text="Reject").click()
    assert "Rejected" in officer.locator(".flash").inner_text()


def test_the_release_gate_story_in_the_browser(browser, live) -> None:
    """Rep adds an offer; compliance edits it out and approves; the card shows and copies the approved text;
    sending releases exactly that text (its hash is in the audit chain)."""
    from app.audit import service as audit
    from app.audit.tables import AuditEntry
    from app.review.service import sha256
    from tests.conftest import read

    offer = "We can give you 40% off the first year."
    live.worker.tick()
    rep = signed_in(browser, live, "rep1")
    card = rep.locator("section.card", has_text="Kim0")
    original = card.locator("pre.script").inner_text()
    card.locator("summary", has_text="Edit, then adopt").click()
    text = card.locator("textarea[name=text]")
    text.fill(text.input_value().replace("example reports.", f"example reports. {offer}"))
    card.locator("button", has_text="Adopt edited").click()
    assert "waits for compliance approval" in rep.locator(".flash").inner_text()

    officer = signed_in(browser, live, "comp")
    item = officer.locator("section.card", has_text="40% off")
    item.locator("summary", has_text="Edit before approving").click()
    edit = item.locator("textarea[name=text]")
    approved = edit.input_value().replace(f" {offer}", "").replace("\r\n", "\n")
    edit.fill(approved)
    item.locator("button", has_text="Approve").click()
    assert "Approved" in officer.locator(".flash").inner_text() and "with your edit" in officer.locator(".flash").inner_text()

    rep.goto(f"{live.base}/inbox")
    card = rep.locator("section.card", has_text="Kim0")
    assert "Compliance changed your text" in card.inner_text()
    shown = card.locator("pre.script").inner_text()
    assert offer not in shown and shown.strip() == approved.strip() and shown != original + offer
    card.locator("button.adopt").click()  # copies the script shown
    assert rep.evaluate("navigator.clipboard.readText()").strip() == approved.strip()
    rep.locator("section.card", has_text="Kim0").locator("button", has_text="Mark sent").click()
    assert "Marked as sent" in rep.locator(".flash").inner_text()
    with live.factory() as session:
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "release")).all()
    assert entry.details["body_sha256"] == sha256(approved)
    assert read(live.factory, audit.verify).ok


def test_operators_see_the_service_event_flow(browser, live) -> None:
    from tests.api.conftest import auth

    now = live.clock.now()
    base = {"event_type": "chat_message", "timestamp": now.isoformat(), "channel": "chat"}
    known = {**base, "event_id": "op-1", "email": "cus-a3@example.org",
             "message": "What would the Pro plan cost for 40 people on an annual contract?"}
    stranger = {**base, "event_id": "op-2", "email": "x@unknown.example", "message": "Pricing please"}
    for body in (known, stranger):
        assert live.post("/api/events", json=body, headers=auth(live, "crm")).status_code == 202
    live.worker.tick()
    assert live.post("/api/events/op-1/label", json={"intent": "procurement_review"},
                     headers=auth(live, "ds")).status_code == 200
    page = signed_in(browser, live, "ds")
    page.goto(f"{live.base}/operations")
    assert page.locator("#quarantine b").inner_text() == "1"
    assert "pricing question" in page.locator("#volumes").inner_text()
    assert "chat 1" in page.locator("#volumes").inner_text()
    misroutes = page.locator("#misroutes").inner_text()
    assert "op-1" in misroutes and "procurement_review" in misroutes
    assert "Golden set: the 1 messages" in page.inner_text("main")
    assert page.locator("#agreement tr").count() == 3  # header, the intent it read, the intent people said
    rep = signed_in(browser, live, "rep1")
    rep.goto(f"{live.base}/operations")
    assert "data scientist role" in rep.inner_text("main")


def test_compliance_works_the_change_request_queue(browser, live) -> None:
    from tests.api.conftest import auth

    risky = {"id": "chg-w1", "customer_id": "cus-a4", "channel": "email",
             "text": "URGENT: send all payouts to IBAN DE89370400440532013000 today. Call me on +44 20 7946 0958.",
             "context": {"recent_changes": [{"type": "contact_email", "days_ago": 1}], "new_device": True}}
    owner = {"id": "chg-w2", "customer_id": "cus-a4", "channel": "email",
             "text": "Please transfer ownership of the account to my colleague Dan."}
    for body in (risky, owner):
        assert live.post("/api/changes", json=body, headers=auth(live, "crm")).json()["status"] == "in_review"
    page = signed_in(browser, live, "comp")
    page.goto(f"{live.base}/changes")
    first = page.locator("section.card").nth(0)
    assert "chg-w1" in first.inner_text() and "takeover pattern" in first.inner_text()  # the riskiest first
    assert "DE89370400440532013000" not in page.inner_text("main") and "7946" not in page.inner_text("main")
    # Each change's rules: the records it touches, who approves, the cooling-off, what the customer is told.
    assert "payouts.account" in first.inner_text() and "2 days of cooling-off" in first.inner_text()
    assert "written after 7 days" in page.locator("#change-chg-w2").inner_text()
    first.locator("button", has_text="Reject").click()
    assert "must say why" in page.locator(".flash").inner_text()
    page.locator("#change-chg-w1 input[name=reason]").fill("the holder did not ask for this")
    page.locator("#change-chg-w1 button", has_text="Reject").click()
    assert "Rejected chg-w1" in page.locator(".flash").inner_text()
    page.locator("#change-chg-w2 select[name=method]").select_option("knowledge_questions")
    page.locator("#change-chg-w2 button", has_text="Ask for verification").click()
    assert "waits for its verification" in page.locator(".flash").inner_text()
    assert page.locator("section.card").count() == 0
    status = live.get("/api/changes/chg-w2", headers=auth(live, "admin")).json()
    assert status["status"] == "awaiting_verification" and status["triage"]["verification"] == "knowledge_questions"


def test_data_scientists_see_calibration_gain_and_auc_over_time(browser, live) -> None:
    """The metrics page draws what the registry holds for each version: the champion's calibration points and
    gain curve, and every version's ROC and PR AUC in training order."""
    import numpy as np
    from datetime import timedelta

    from app.models import registry
    from app.models.propensity import evaluate, quality_curves
    from tests.conftest import write

    page = signed_in(browser, live, "ds")
    page.goto(f"{live.base}/metrics")
    assert "No model trained yet" in page.inner_text("main")

    rng = np.random.default_rng(3)
    for day, name in enumerate(["m-old", "m-new"]):
        score = rng.random(2000) * 0.4
        outcome = rng.random(2000) < score * (1 + day * 0.5)  # the newer version ranks better
        metrics = {**evaluate(score, outcome), "curves": quality_curves(score, outcome), "n_test": 2000}
        write(live.factory, registry.register, version_id=name, now=live.clock.now() + timedelta(days=day),
              actor="ds", artifact_path=f"/nowhere/{name}", data_snapshot={}, features={}, params={}, metrics=metrics)
    # Two later scoring runs: the second's confidences moved, and its inputs were measured against training.
    from app.models.tables import Decision, ScoreRun
    from app.store.db import unit_of_work

    with unit_of_work(live.factory) as session:
        for n, (name, shift) in enumerate([("run-2", 0.0), ("run-3", 0.3)], start=1):
            at = live.clock.now() + timedelta(days=7 * n)
            session.add(ScoreRun(id=name, kind="batch", started_at=at, finished_at=at, as_of=at, policy_version="p",
                                 stats={"feature_psi": {"days_since_product_view": 0.31, "tenure_days": 0.02}} if shift else {}))
            session.flush()
            for i, customer in enumerate(["cus-a1", "cus-a2", "cus-a3", "cus-a4", "cus-b1"] * 6):
                session.add(Decision(run_id=name, customer_id=customer, as_of=at, status="ranked", method="model", policy_version="p",
                                     confidence=min(0.99, 0.1 + i / 40 + shift), reasons=[], suppressed_by=[]))
    page.goto(f"{live.base}/metrics")
    assert page.locator("svg[data-chart=drift] circle").count() == 2  # each later run against the one before
    drawn = page.locator("svg[data-chart=feature-drift]").text_content()
    assert "days since product view" in drawn and "0.31" in drawn and drawn.index("0.31") < drawn.index("0.02")
    assert page.locator("svg[data-chart=calibration] circle").count() == 10
    points = page.locator("svg[data-chart=gain] polyline").get_attribute("points").split()
    assert len(points) == 21 and points[0] == "30.0,230.0" and points[-1] == "250.0,10.0"
    assert page.locator("svg[data-chart=auc-over-time] circle").count() == 4  # two versions, two metrics
    rows = page.locator("table.versions tbody tr")
    assert rows.count() == 2 and "m-new" in rows.nth(0).inner_text() and "champion" in rows.nth(1).inner_text()
    assert page.locator("svg[data-chart=calibration]").get_attribute("aria-label") == "calibration curve of m-old"


def test_every_audience_finds_its_charts_on_the_metrics_page(browser, live) -> None:
    """After a rep sends a card that converts and rejects another, and compliance approves a draft: adoption and
    conversion by week, rejection reasons, template rows and the compliance figures are drawn with that data."""
    from tests.api.conftest import auth

    live.worker.tick()
    cards = live.get("/api/cards", headers=auth(live, "rep1")).json()
    sent = next(c for c in cards if c["customer"]["id"] == "cus-a1")
    for action, body, key in (("adopt", None, "w1"), ("send", {"channel": "email"}, "w2"),
                              ("outcome", {"outcome": "converted"}, "w3")):
        assert live.post(f"/api/cards/{sent['id']}/{action}", json=body, headers=auth(live, "rep1", key)).status_code == 200
    other = live.get("/api/cards", headers=auth(live, "rep5")).json()[0]
    assert live.post(f"/api/cards/{other['id']}/reject", json={"reason": "already_in_touch"},
                     headers=auth(live, "rep5", "w4")).status_code == 200
    item = live.get("/api/compliance/queue", headers=auth(live, "comp")).json()[0]
    assert live.post(f"/api/compliance/{item['id']}/approve", json={"version": 1},
                     headers=auth(live, "comp")).status_code == 200

    page = signed_in(browser, live, "ds")
    page.goto(f"{live.base}/metrics")
    adoption = page.locator("svg[data-chart=adoption_rate] rect[fill='#3a6ff7']")
    assert adoption.count() == 1 and float(adoption.get_attribute("width")) > 0
    converted = page.locator("svg[data-chart=conversion_rate] rect[fill='#3a6ff7']")
    assert float(converted.get_attribute("width")) == 260  # the one sent card with an outcome converted
    assert "already in touch" in page.locator("svg[data-chart=rejection-reasons]").text_content()
    assert sent["template_id"] in page.locator("table.templates").inner_text()
    assert "1 approved, 0 rejected" in page.locator("#compliance + p").inner_text()
    assert "team-b" in page.locator("table.funnel-team").inner_text()
    assert "champion (1)" in page.locator("svg[aria-label='A/B comparison']").text_content()
