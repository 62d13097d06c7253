"""The compliance queue, the send refusal, learning from rejections, and the audit trail (both backends)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from app.library import service as library
from app.review import audit
from app.review import service as review
from app.review.checks import Verdict
from app.store.db import open_store
from app.audit.tables import AuditEntry
from app.drafting.tables import Draft
from app.feedback.tables import Feedback
from app.review.tables import PolicySuggestion
from tests.conftest import NOW
from tests.review.conftest import make_draft


def queued(review_store, reviewer, profile, tmp_path: Path) -> tuple[str, dict]:
    draft_id = make_draft(review_store, tmp_path, "cus-health", 2)
    outcome = review.review_draft(review_store, reviewer, profile, draft_id, now=NOW)
    assert outcome.verdict == Verdict.NEEDS_APPROVAL
    assert "the customer's industry (healthcare) is sensitive" in outcome.routing
    [item] = review.queue(review_store)
    return draft_id, item


def test_a_ready_draft_can_be_sent_once(review_store, reviewer, profile, tmp_path: Path) -> None:
    draft_id = make_draft(review_store, tmp_path, "cus-42", 1)
    assert review.review_draft(review_store, reviewer, profile, draft_id, now=NOW).verdict == Verdict.READY
    sent = review.send(review_store, draft_id, by="rep-03", now=NOW)
    assert sent.sent_at is not None
    assert review.send(review_store, draft_id, by="rep-03", now=NOW).sent_at == sent.sent_at  # idempotent
    assert [e["action"] for e in audit.history(review_store, draft_id)] == ["draft", "review", "send"]


def test_a_flagged_draft_cannot_be_sent_until_compliance_approves(review_store, reviewer, profile, tmp_path: Path) -> None:
    draft_id, item = queued(review_store, reviewer, profile, tmp_path)
    assert item["sources"]["reasons"][0]["text"] == "browsed Analytics Add-on 3 days ago"
    assert item["template"]["id"] == "email-upsell-analytics" and item["version"] == 1
    with pytest.raises(review.NotReleasable, match="compliance has not approved it yet"):
        review.send(review_store, draft_id, by="rep-03", now=NOW)
    review.approve(review_store, reviewer, profile, item["id"], version=1, by="carol", now=NOW, comment="fine")
    assert review.send(review_store, draft_id, by="rep-03", now=NOW).sent_at is not None
    actions = [e["action"] for e in audit.history(review_store, draft_id)]
    assert actions == ["draft", "review", "send_refused", "send"]
    assert [e["action"] for e in audit.history(review_store, item["id"])] == ["queued", "approve"]


def test_edit_then_approve_stores_the_diff_and_refuses_a_blocked_edit(review_store, reviewer, profile, tmp_path: Path) -> None:
    draft_id, item = queued(review_store, reviewer, profile, tmp_path)
    blocked = item["body"].replace("If that sounds useful", "It is risk-free, and if that sounds useful")
    with pytest.raises(review.ReviewError, match="edited_body: the edit is blocked.*risk"):
        review.approve(review_store, reviewer, profile, item["id"], version=1, by="carol", now=NOW, edited_body=blocked)
    edited = item["body"].replace("a short demo", "a 20-minute demo")
    review.approve(review_store, reviewer, profile, item["id"], version=1, by="carol", now=NOW, edited_body=edited)
    with review_store() as session:
        assert session.get(Draft, draft_id).body == edited
    [edit] = [e for e in audit.history(review_store, draft_id) if e["action"] == "edit"]
    assert "-" in edit["details"]["diff"] and "+" in edit["details"]["diff"] and "20-minute" in edit["details"]["diff"]


def test_a_rejection_teaches_ranking_evaluation_policy_and_training(review_store, reviewer, profile, tmp_path: Path) -> None:
    draft_id, item = queued(review_store, reviewer, profile, tmp_path)
    before = library.performance(review_store, ["email-upsell-analytics"], "smb_owner")
    with pytest.raises(review.ReviewError, match="reason_code: 'nope' is not one of"):
        review.reject(review_store, item["id"], version=1, by="carol", reason_code="nope", now=NOW)
    review.reject(review_store, item["id"], version=1, by="carol", reason_code="prohibited_claim", now=NOW,
                  comment="too pushy for a clinic")
    after = library.performance(review_store, ["email-upsell-analytics"], "smb_owner")
    assert after["email-upsell-analytics"][0] == before.get("email-upsell-analytics", (0, 0))[0] + 1
    with review_store() as session:
        [label] = session.scalars(select(Feedback)).all()
        assert (label.kind, label.reason_code, label.template_id, label.text) == (
            "compliance_rejection", "prohibited_claim", "email-upsell-analytics", item["body"])
        [suggestion] = session.scalars(select(PolicySuggestion)).all()
        assert suggestion.category == "claims" and suggestion.status == "open"
        assert session.get(Draft, draft_id).review_status == "rejected"
    with pytest.raises(review.NotReleasable, match="compliance rejected it"):
        review.send(review_store, draft_id, by="rep-03", now=NOW)


def test_two_reviewers_cannot_both_decide_the_same_item(review_store, reviewer, profile, tmp_path: Path) -> None:
    _, item = queued(review_store, reviewer, profile, tmp_path)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def decide(kind: str) -> None:
        barrier.wait()
        try:
            if kind == "approve":
                review.approve(review_store, reviewer, profile, item["id"], version=1, by="carol", now=NOW)
            else:
                review.reject(review_store, item["id"], version=1, by="dave", reason_code="tone", now=NOW)
            outcomes.append(kind)
        except review.Conflict as exc:
            outcomes.append(f"conflict: {exc}")

    threads = [threading.Thread(target=decide, args=(k,)) for k in ("approve", "reject")]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len([o for o in outcomes if not o.startswith("conflict")]) == 1, outcomes
    assert any("was already" in o and "reload it" in o for o in outcomes)
    [decided] = review.queue(review_store, status=None)
    assert decided["version"] == 2 and decided["status"] in {"approved", "rejected"}
    assert audit.verify(review_store).ok


def test_queue_items_survive_a_restart(review_store, reviewer, profile, tmp_path: Path, db_url: str) -> None:
    _, item = queued(review_store, reviewer, profile, tmp_path)
    review_store.kw["bind"].dispose()
    reopened = open_store(db_url)  # a new engine, as after a process restart
    [again] = review.queue(reopened)
    assert again["id"] == item["id"] and again["findings"] == item["findings"] and again["routing"] == item["routing"]


def test_audit_verify_detects_changes_deletions_and_truncation(review_store, reviewer, profile, tmp_path: Path) -> None:
    draft_id, item = queued(review_store, reviewer, profile, tmp_path)
    review.approve(review_store, reviewer, profile, item["id"], version=1, by="carol", now=NOW)
    good = audit.verify(review_store)
    assert good.ok and good.entries == 5  # recommendation, draft, review, queued, approve
    out = tmp_path / "audit.jsonl"
    assert audit.export(review_store, out) == 5 and len(out.read_text().splitlines()) == 5
    with review_store() as session, session.begin():
        session.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(actor="mallory"))
    broken = audit.verify(review_store)
    assert not broken.ok and broken.seq == 3 and "changed after it was written" in broken.problem
    with review_store() as session, session.begin():
        session.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(actor="system"))
    assert audit.verify(review_store).ok
    with review_store() as session, session.begin():
        session.execute(text("DELETE FROM audit_log WHERE seq = 5"))
    truncated = audit.verify(review_store)
    assert not truncated.ok and "removed from the end" in truncated.problem
