"""The compliance queue, the one release gate, learning from rejections, and the audit trail (both backends)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from app.audit import service as audit
from app.audit.tables import AuditEntry
from app.drafting import service as drafting
from app.drafting.tables import Draft
from app.errors import Conflict, InvalidInput, NotReleasable
from app.feedback.tables import Feedback
from app.library import service as library
from app.review import service as review
from app.review.checks import Verdict
from app.review.service import ReviewStatus, sha256
from app.review.tables import PolicySuggestion, Release
from app.store.db import open_store
from tests.conftest import NOW, read, write
from tests.review.conftest import make_draft


def queued(review_store, reviewer, profile, tmp_path: Path):  # noqa: ANN001, ANN201
    draft, outcome = make_draft(review_store, tmp_path, "cus-health", 2, reviewer, profile)
    assert outcome.status == ReviewStatus.NEEDS_APPROVAL and outcome.verdict == Verdict.NEEDS_APPROVAL
    assert "the customer's industry (healthcare) is sensitive" in outcome.routing
    [item] = read(review_store, review.queue)
    return draft, item


def actions(factory, subject: str) -> list[str]:  # noqa: ANN001
    return [e.action for e in read(factory, audit.history, subject_id=subject)]


def release(factory, draft_id: str):  # noqa: ANN001, ANN201
    return write(factory, review.release, draft_id=draft_id, by="rep-03", channel="email", now=NOW, subject_ref="card-1")


def test_a_ready_draft_is_released_once_with_the_hash_of_its_text(review_store, reviewer, profile, tmp_path: Path) -> None:
    draft, outcome = make_draft(review_store, tmp_path, "cus-42", 1, reviewer, profile)
    assert outcome.status == ReviewStatus.READY
    released = release(review_store, draft.id)
    assert released.draft_id == draft.id and released.body_sha256 == sha256(draft.body)
    with pytest.raises(Conflict, match="already sent"):
        release(review_store, draft.id)
    assert actions(review_store, draft.id) == ["draft", "review", "release"]
    [entry] = [e for e in read(review_store, audit.history, subject_id=draft.id) if e.action == "release"]
    assert entry.details["body_sha256"] == sha256(draft.body) and entry.versions["template"].startswith("email-upsell")


def test_a_flagged_draft_is_not_released_until_approved_and_a_refusal_writes_nothing(
        review_store, reviewer, profile, tmp_path: Path) -> None:
    draft, item = queued(review_store, reviewer, profile, tmp_path)
    assert item.sources["reasons"][0]["text"] == "browsed Analytics Add-on 3 days ago"
    assert item.template.id == "email-upsell-analytics" and item.version == 1 and item.status == "pending"
    before = read(review_store, audit.verify).entries
    with pytest.raises(NotReleasable, match="waits for compliance approval"):
        release(review_store, draft.id)
    assert read(review_store, audit.verify).entries == before  # a refused release leaves no trace in the store
    decision = write(review_store, review.approve, item_id=item.id, version=1, by="carol", now=NOW, comment="fine")
    assert decision.approved_draft_id == draft.id and decision.status == "approved"
    assert release(review_store, draft.id).body_sha256 == sha256(draft.body)
    assert actions(review_store, draft.id) == ["draft", "review", "release"]
    assert actions(review_store, item.id) == ["queued", "approve"]


def test_a_compliance_edit_is_a_new_version_and_only_it_can_go_out(review_store, reviewer, profile, tmp_path: Path) -> None:
    draft, item = queued(review_store, reviewer, profile, tmp_path)
    blocked = item.body.replace("If that sounds useful", "It is risk-free, and if that sounds useful")
    with pytest.raises(InvalidInput, match="text: the edit is blocked.*risk"):
        read(review_store, review.prepare_approval, reviewer=reviewer, profile=profile, item_id=item.id,
             edited_body=blocked, now=NOW)
    edited = item.body.replace("a short demo", "a 20-minute demo")
    edit = read(review_store, review.prepare_approval, reviewer=reviewer, profile=profile, item_id=item.id,
                edited_body=edited, now=NOW)
    decision = write(review_store, review.approve, item_id=item.id, version=1, by="carol", now=NOW, edit=edit)
    approved = read(review_store, drafting.get, draft_id=decision.approved_draft_id)
    assert (approved.body, approved.revision, approved.mode, approved.author) == (edited, 2, "compliance_edit", "carol")
    assert read(review_store, drafting.get, draft_id=draft.id).body == item.body  # the original never changes
    with pytest.raises(NotReleasable, match="version 2 replaced it"):
        release(review_store, draft.id)
    assert release(review_store, approved.id).body_sha256 == sha256(edited)
    [change] = [e for e in read(review_store, audit.history, subject_id=approved.id) if e.action == "edit"]
    assert "-" in change.details["diff"] and "20-minute" in change.details["diff"]


def test_a_newer_version_withdraws_the_queue_item_of_the_one_it_replaces(
        review_store, reviewer, profile, tmp_path: Path) -> None:
    draft, item = queued(review_store, reviewer, profile, tmp_path)
    changed = draft.model_copy(update={"body": draft.body.replace("a short demo", "a quick demo")})
    assessment = read(review_store, review.assess, reviewer=reviewer, profile=profile, draft=changed, now=NOW)

    def edit(session):  # noqa: ANN001, ANN202
        newer = drafting.revise(session=session, base=draft, body=changed.body, author="rep-x",
                                mode=drafting.DraftMode.REP_EDIT, now=NOW)
        return review.record(session=session, draft=newer, assessment=assessment, actor="rep-x", now=NOW)

    with open_store_session(review_store) as session:
        newer = edit(session)
    assert newer.status == ReviewStatus.NEEDS_APPROVAL
    [old] = [i for i in read(review_store, review.queue, status="withdrawn")]
    assert old.id == item.id and "replaced by version 2" in old.comment
    with pytest.raises(Conflict, match="already withdrawn"):
        write(review_store, review.approve, item_id=item.id, version=1, by="carol", now=NOW)
    with pytest.raises(Conflict, match="replaced by a newer version"):  # an edit of an old version cannot land
        with open_store_session(review_store) as session:
            drafting.revise(session=session, base=draft, body="Hi", author="rep-y", mode=drafting.DraftMode.REP_EDIT,
                            now=NOW)


def open_store_session(factory):  # noqa: ANN001, ANN201
    from app.store.db import unit_of_work

    return unit_of_work(factory)


def test_a_rejection_teaches_ranking_evaluation_policy_and_training(review_store, reviewer, profile, tmp_path: Path) -> None:
    draft, item = queued(review_store, reviewer, profile, tmp_path)
    segment = dict(template_ids=["email-upsell-analytics"], segment="smb_owner")
    before = read(review_store, library.performance, **segment)
    with pytest.raises(InvalidInput, match="reason_code: 'nope' is not one of"):
        write(review_store, review.reject, item_id=item.id, version=1, by="carol", reason_code="nope", now=NOW)
    write(review_store, review.reject, item_id=item.id, version=1, by="carol", reason_code="prohibited_claim", now=NOW,
          comment="too pushy for a clinic")
    after = read(review_store, library.performance, **segment)
    assert after["email-upsell-analytics"][0] == before.get("email-upsell-analytics", (0, 0))[0] + 1
    with review_store() as session:
        [label] = session.scalars(select(Feedback)).all()
        assert (label.kind, label.reason_code, label.template_id, label.text) == (
            "compliance_rejection", "prohibited_claim", "email-upsell-analytics", item.body)
        [suggestion] = session.scalars(select(PolicySuggestion)).all()
        assert suggestion.category == "claims" and suggestion.status == "open"
    assert read(review_store, review.reviews_of, draft_ids={draft.id})[draft.id].status == ReviewStatus.REJECTED
    with pytest.raises(NotReleasable, match="compliance rejected it"):
        release(review_store, draft.id)


def test_two_reviewers_cannot_both_decide_the_same_item(review_store, reviewer, profile, tmp_path: Path) -> None:
    _, item = queued(review_store, reviewer, profile, tmp_path)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def decide(kind: str) -> None:
        barrier.wait()
        try:
            if kind == "approve":
                write(review_store, review.approve, item_id=item.id, version=1, by="carol", now=NOW)
            else:
                write(review_store, review.reject, item_id=item.id, version=1, by="dave", reason_code="tone", now=NOW)
            outcomes.append(kind)
        except Conflict as exc:
            outcomes.append(f"conflict: {exc}")

    threads = [threading.Thread(target=decide, args=(k,)) for k in ("approve", "reject")]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len([o for o in outcomes if not o.startswith("conflict")]) == 1, outcomes
    assert any("was already" in o and "reload it" in o for o in outcomes)
    [decided] = read(review_store, review.queue, status=None)
    assert decided.version == 2 and decided.status in {"approved", "rejected"}
    assert read(review_store, audit.verify).ok


def test_queue_items_survive_a_restart(review_store, reviewer, profile, tmp_path: Path, db_url: str) -> None:
    _, item = queued(review_store, reviewer, profile, tmp_path)
    review_store.kw["bind"].dispose()
    reopened = open_store(db_url)  # a new engine, as after a process restart
    [again] = read(reopened, review.queue)
    assert again.id == item.id and again.findings == item.findings and again.routing == item.routing


def test_releases_are_one_per_lineage(review_store, reviewer, profile, tmp_path: Path) -> None:
    draft, _ = make_draft(review_store, tmp_path, "cus-42", 1, reviewer, profile)
    release(review_store, draft.id)
    with review_store() as session:
        assert session.scalar(select(func.count()).select_from(Release)) == 1
        assert session.scalar(select(func.count()).select_from(Draft)) == 1


def test_audit_verify_detects_changes_deletions_and_truncation(review_store, reviewer, profile, tmp_path: Path) -> None:
    _, item = queued(review_store, reviewer, profile, tmp_path)
    write(review_store, review.approve, item_id=item.id, version=1, by="carol", now=NOW)
    good = read(review_store, audit.verify)
    with review_store() as session:
        last = [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(5))]
    assert good.ok and last[::-1] == ["recommendation", "draft", "review", "queued", "approve"]
    out = tmp_path / "audit.jsonl"
    assert read(review_store, audit.export, path=out) == good.entries == len(out.read_text().splitlines())
    tampered = good.entries - 2  # the review entry
    with review_store() as session, session.begin():
        session.execute(update(AuditEntry).where(AuditEntry.seq == tampered).values(actor="mallory"))
    broken = read(review_store, audit.verify)
    assert not broken.ok and broken.seq == tampered and "changed after it was written" in broken.problem
    with review_store() as session, session.begin():
        session.execute(update(AuditEntry).where(AuditEntry.seq == tampered).values(actor="system"))
    assert read(review_store, audit.verify).ok
    with review_store() as session, session.begin():
        session.execute(text(f"DELETE FROM audit_log WHERE seq = {good.entries}"))
    truncated = read(review_store, audit.verify)
    assert not truncated.ok and "removed from the end" in truncated.problem
