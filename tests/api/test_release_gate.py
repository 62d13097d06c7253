"""The product's central promise, end to end over HTTP: what compliance approves is exactly what goes out,
and an action that is refused writes nothing at all."""

from __future__ import annotations

import threading

import httpx
from sqlalchemy import func, select

from app.audit import service as audit
from app.audit.tables import AuditEntry
from app.cards.tables import CardAction
from app.drafting.tables import Draft
from app.review.service import sha256
from app.review.tables import Release, Review
from tests.api.conftest import auth
from tests.conftest import read

OFFER = "We can give you 40% off the first year."


def counts(product) -> dict[str, int]:
    with product.factory() as session:
        return {table.__tablename__: session.scalar(select(func.count()).select_from(table))
                for table in (Draft, Review, AuditEntry, CardAction, Release)}


def rep1_first_card(product) -> dict:
    product.worker.tick()
    return product.get("/api/cards", headers=auth(product, "rep1")).json()[0]


def test_compliance_edits_out_a_reps_offer_and_exactly_the_approved_text_is_released(product) -> None:
    card = rep1_first_card(product)
    offered = card["draft"]["body"].replace("example reports.", f"example reports. {OFFER}")
    assert offered != card["draft"]["body"]
    adopted = product.post(f"/api/cards/{card['id']}/adopt", json={"text": offered}, headers=auth(product, "rep1", "a1"))
    assert adopted.status_code == 200 and adopted.json()["draft_status"] == "requires approval"
    refused = product.post(f"/api/cards/{card['id']}/send", headers=auth(product, "rep1", "s1"))
    assert refused.status_code == 409 and "waits for compliance approval" in refused.json()["detail"]

    queue = product.get("/api/compliance/queue", headers=auth(product, "comp")).json()
    [item] = [i for i in queue if i["draft_id"] == adopted.json()["draft"]["id"]]
    assert item["body"] == offered and item["author"] == "rep1" and item["previous_body"] == card["draft"]["body"]
    approved_text = offered.replace(f" {OFFER}", "")
    decision = product.post(f"/api/compliance/{item['id']}/approve", json={"version": item["version"],
                                                                           "text": approved_text},
                            headers=auth(product, "comp"))
    assert decision.status_code == 200, decision.text
    assert decision.json()["approved_draft_id"] != item["draft_id"]

    shown = product.get(f"/api/cards/{card['id']}", headers=auth(product, "rep1")).json()
    assert shown["draft"]["body"] == approved_text and OFFER not in shown["draft"]["body"]
    assert shown["draft"]["changed_by_compliance"] and "-" in shown["draft"]["changes"] and "40% off" in shown["draft"]["changes"]
    assert shown["draft_status"] == "approved" and shown["draft"]["author"] == "comp"
    sent = product.post(f"/api/cards/{card['id']}/send", headers=auth(product, "rep1", "s2"))
    assert sent.status_code == 200 and sent.json()["status"] == "executed"
    assert sent.json()["release"]["body_sha256"] == sha256(approved_text)

    [release] = [e for e in read(product.factory, audit.history, subject_id=decision.json()["approved_draft_id"])
                 if e.action == "release"]
    assert release.details["body_sha256"] == sha256(approved_text) != sha256(offered)
    with product.factory() as session:
        [row] = session.scalars(select(Release)).all()
        assert session.get(Draft, row.draft_id).body == approved_text  # the stored, released version itself
    assert read(product.factory, audit.verify).ok


def test_refused_actions_leave_no_draft_no_queue_item_no_audit_entry(product) -> None:
    card = rep1_first_card(product)
    teammate = product.get("/api/cards", headers=auth(product, "rep2")).json()[0]
    edited = card["draft"]["body"].replace("a short demo", "a short 20-minute demo")
    before = counts(product)
    refusals = [
        product.post(f"/api/cards/{card['id']}/adopt", json={"text": edited}, headers=auth(product, "rep2", "x1")),
        product.post(f"/api/cards/{card['id']}/adopt", json={"text": edited}, headers=auth(product, "comp", "x2")),
        product.post(f"/api/cards/{teammate['id']}/adopt", json={"text": edited}, headers=auth(product, "rep1", "x3")),
        product.post(f"/api/cards/{card['id']}/adopt", json={"text": edited.replace("20-minute", "risk-free")},
                     headers=auth(product, "rep1", "x4")),
        product.post(f"/api/cards/{card['id']}/adopt", json={"text": "   "}, headers=auth(product, "rep1", "x5")),
    ]
    assert [r.status_code for r in refusals] == [403, 403, 403, 422, 422]
    assert counts(product) == before
    rejected = product.post(f"/api/cards/{card['id']}/reject", json={"reason": "other"}, headers=auth(product, "rep1", "r"))
    assert rejected.status_code == 200
    before = counts(product)
    late = product.post(f"/api/cards/{card['id']}/adopt", json={"text": edited}, headers=auth(product, "rep1", "x6"))
    assert late.status_code == 409 and counts(product) == before


def test_parallel_adopts_with_one_key_record_one_action_one_draft_one_queue_item(live) -> None:
    card = rep1_first_card(live)
    offered = card["draft"]["body"].replace("example reports.", f"example reports. {OFFER}")
    before = counts(live)
    barrier, answers = threading.Barrier(4), []

    def adopt() -> None:
        barrier.wait()
        answers.append(httpx.post(f"{live.base}/api/cards/{card['id']}/adopt", json={"text": offered}, timeout=60,
                                  headers=auth(live, "rep1", "one-key")))

    threads = [threading.Thread(target=adopt) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert sorted(a.json()["replayed"] for a in answers) == [False, True, True, True]
    after = counts(live)
    assert after["card_actions"] - before["card_actions"] == 1
    assert after["drafts"] - before["drafts"] == 1 and after["reviews"] - before["reviews"] == 1
    assert len(live.get("/api/compliance/queue", headers=auth(live, "comp")).json()) == 2  # cus-a2's and this one


def test_page_forms_need_their_csrf_token_and_the_cookie_is_secure_in_production(product, embedder, reviewer,
                                                                                tmp_path) -> None:  # noqa: ANN001
    card = rep1_first_card(product)
    product.cookies.set("outreach_token", product.tokens["rep1"])
    forged = product.post(f"/cards/{card['id']}/adopt", data={"key": "f1"}, follow_redirects=False)
    assert forged.status_code == 303 and "security+token" in forged.headers["location"]
    inbox = product.get("/inbox").text
    token = inbox.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    other_site = product.post(f"/cards/{card['id']}/adopt", data={"key": "f2", "csrf": token},
                              headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert "another+site" in other_site.headers["location"]
    with product.factory() as session:
        assert session.scalar(select(func.count()).select_from(CardAction)) == 0
    ok = product.post(f"/cards/{card['id']}/adopt", data={"key": "f3", "csrf": token}, follow_redirects=False)
    assert ok.status_code == 303 and "Adopted" in httpx.URL(ok.headers["location"]).params["flash"]

    from tests.api.conftest import build_product

    prod = build_product(tmp_path / "prod", embedder, reviewer, environment="production", secret_key="s" * 32)
    signed = prod.post("/login", data={"token": prod.tokens["rep1"]}, follow_redirects=False)
    assert signed.status_code == 303 and "secure" in signed.headers["set-cookie"].lower()
    assert "httponly" in signed.headers["set-cookie"].lower() and "samesite=strict" in signed.headers["set-cookie"].lower()
