"""The vector index and retrieval: real MiniLM embeddings, real embedded Chroma."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from app.library import index as index_module
from app.library import service
from app.library.retrieval import PRIOR_MEAN, RetrievalRequest, posterior, retrieve
from app.store.db import unit_of_work
from app.data.tables import Customer, OutreachAttempt
from tests.conftest import read, write
from tests.library.conftest import LIBRARY

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def library(sqlite_store, index):
    write(sqlite_store, service.import_directory, folder=LIBRARY, actor="content", now=NOW)
    index.sync(read(sqlite_store, service.live_versions))
    return sqlite_store, index


def ids(results) -> list[str]:
    return [r.id for r in results]


def test_sync_is_idempotent_and_follows_the_store(library) -> None:
    factory, index = library
    assert len(index.entries()) == 36
    again = index.sync(read(factory, service.live_versions))
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 36)
    write(factory, service.retire, template_id="email-win-back", actor="content", now=NOW)
    write(factory, service.edit, template_id="sms-win-back", changes={"title": "Win-back text, shorter"}, actor="content", now=NOW)
    write(factory, service.approve, template_id="sms-win-back", actor="reviewer", now=NOW)
    report = index.sync(read(factory, service.live_versions))
    assert (report.added, report.updated, report.removed) == (0, 1, 1)
    assert index.entries()["sms-win-back"][0] == 2 and "email-win-back" not in index.entries()


def test_a_sync_cut_short_is_finished_by_the_next_one(sqlite_store, index, embedder, monkeypatch) -> None:
    write(sqlite_store, service.import_directory, folder=LIBRARY, actor="content", now=NOW)

    class FailsOnSecondBatch:
        """The real embedder, with a crash injected after the first batch."""

        name = embedder.name

        def __init__(self) -> None:
            self.calls = 0

        def embed(self, texts):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("killed mid-sync")
            return embedder.embed(texts)

    monkeypatch.setattr(index_module, "BATCH", 10)
    index.embedder = FailsOnSecondBatch()
    with pytest.raises(RuntimeError):
        index.sync(read(sqlite_store, service.live_versions))
    partial = index.entries()
    assert len(partial) == 10  # whole entries only
    index.embedder = embedder
    report = index.sync(read(sqlite_store, service.live_versions))
    assert (report.added, report.unchanged) == (26, 10) and len(index.entries()) == 36


def test_filters_and_meaning(library) -> None:
    factory, index = library
    results = read(factory, retrieve, index=index, request=RetrievalRequest(text="the customer asked how much the plan costs",
                                                        channel="email", k=3))
    assert all(r.channel == "email" for r in results)
    assert ids(results)[0] in {"email-new-lead-pricing", "email-follow-up-pricing"}
    only = read(factory, retrieve, index=index, request=RetrievalRequest(text="tell them about reports", channel="email",
                                                     product="analytics", stage="upsell", k=10))
    assert set(ids(only)) == {"email-upsell-upgrade", "email-upsell-analytics"}
    renew = read(factory, retrieve, index=index, request=RetrievalRequest(text="worried about renewing, thinking of leaving",
                                                      channel="call", k=1))
    assert ids(renew) == ["call-renewal-review"] and "semantic match" in renew[0].why[0]


def test_drafts_retired_and_stale_entries_never_come_back(library, tmp_path: Path) -> None:
    factory, index = library
    request = RetrievalRequest(text="payments invoices online", channel="email", k=50)
    assert "email-upsell-payments-draft" not in ids(read(factory, retrieve, index=index, request=request))
    assert "email-new-lead-old-offer" not in ids(read(factory, retrieve, index=index, request=request))
    # The index still holds v1 while the store retires it: retrieval trusts the store.
    write(factory, service.retire, template_id="email-win-back", actor="content", now=NOW)
    assert "email-win-back" in index.entries()
    assert "email-win-back" not in ids(read(factory, retrieve, index=index, request=request))


def add_results(factory, template_id: str, segment: str, contacts: int, positive: int) -> None:
    with unit_of_work(factory) as session:
        for i in range(contacts):
            customer = f"{template_id}-{segment}-{i}"
            session.add(Customer(id=customer, segment=segment, attributes={}))
            session.flush()
            session.add(OutreachAttempt(id=f"a-{customer}", customer_id=customer, attempted_at=NOW - timedelta(days=i % 30 + 1),
                                        channel="sms", outcome="converted" if i < positive else "no_answer",
                                        template_id=template_id, attributes={}))


def test_results_in_the_segment_rerank_and_new_templates_get_a_chance(library) -> None:
    factory, index = library
    request = RetrievalRequest(text="", channel="sms", stage="follow_up", intents=["pricing_question"],
                               segment="smb_owner", k=2)
    before = read(factory, retrieve, index=index, request=request)
    assert ids(before)[0] == "sms-follow-up-pricing"
    add_results(factory, "sms-follow-up-pricing", "smb_owner", 120, 1)  # proven weak in this segment
    add_results(factory, "sms-follow-up-check-in", "smb_owner", 120, 30)  # proven strong
    add_results(factory, "sms-follow-up-pricing", "consumer_young", 50, 25)  # other segments do not count
    after = read(factory, retrieve, index=index, request=request)
    assert ids(after)[0] == "sms-follow-up-check-in"
    assert "30 positive outcomes from 120 contacts in segment smb_owner (25%)" in after[0].why
    # With no results, the prior's spread is an exploration bonus: untried beats proven-weak at equal meaning.
    new_mean, new_sd = posterior(0, 0)
    weak_mean, weak_sd = posterior(120, 1)
    assert new_mean == pytest.approx(PRIOR_MEAN) and new_sd > weak_sd and weak_mean < new_mean
    assert after[1].id == "sms-follow-up-pricing" and after[1].performance < 0 < after[0].performance


@pytest.mark.parametrize(("features", "lifecycle", "stage", "intents"), [
    (["pricing_question_14d", "days_since_product_view"], "lead", "new_lead", ["pricing_question"]),
    (["pricing_question_14d", "days_since_last_contact"], "lead", "follow_up", ["pricing_question"]),
    (["renewal_risk_14d"], "active", "renewal", ["renewal_risk"]),
    (["change_request_14d", "upsell_interest_14d"], "active", "change_request", ["change_request", "upsell_interest"]),
    (["days_since_page_view"], "active", "upsell", []),
    (["days_since_page_view"], "churned", "win_back", []),
])
def test_a_decision_asks_for_the_stage_its_reasons_imply(features, lifecycle, stage, intents) -> None:
    from app.library.retrieval import request_for_decision

    reasons = [{"feature": f, "text": f"reason {f}"} for f in features]
    request = request_for_decision(channel="email", product="pro", reasons=reasons, lifecycle_stage=lifecycle,
                                   segment="smb_owner")
    assert (request.stage, request.intents) == (stage, sorted(intents))
    assert request.reasons == [r["text"] for r in reasons]


def test_decision_request_finds_a_matching_template(library) -> None:
    from app.library.retrieval import request_for_decision

    factory, index = library
    request = request_for_decision(channel="sms", product="pro", lifecycle_stage="lead", segment="smb_owner",
                                   reasons=[{"feature": "pricing_question_14d", "text": "asked about pricing twice"},
                                            {"feature": "days_since_last_contact", "text": "no follow-up for 20 days"}])
    assert ids(read(factory, retrieve, index=index, request=request))[0] == "sms-follow-up-pricing"
