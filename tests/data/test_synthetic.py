"""The synthetic history is reproducible, respects the rules it claims, and carries its planted truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from app.data.synthetic import SEGMENTS, generate, load_into_store, planted_truth, true_response_rate
from app.data.tables import Consent, Customer, Event, OutreachAttempt
from tests.conftest import NOW

POSITIVE = ["replied", "meeting", "converted"]


@pytest.fixture(scope="module")
def history():
    return generate(customers=20_000, now=NOW, seed=7)


def test_same_seed_same_history() -> None:
    a, b = generate(customers=500, now=NOW, seed=3), generate(customers=500, now=NOW, seed=3)
    for name in ("customers", "consents", "events", "attempts"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    c = generate(customers=500, now=NOW, seed=4)
    assert not a.attempts["outcome"].equals(c.attempts["outcome"])


def test_history_ends_before_now_and_respects_quiet_hours(history) -> None:
    attempts = history.attempts.merge(history.customers[["id", "timezone"]], left_on="customer_id", right_on="id")
    assert attempts["attempted_at"].max() < NOW and history.events["occurred_at"].max() < NOW
    for tz, group in attempts.groupby("timezone"):
        local_hour = group["attempted_at"].dt.tz_convert(tz).dt.hour
        assert local_hour.between(8, 20).all(), tz


def test_attempts_use_consented_channels_only(history) -> None:
    granted = history.consents[history.consents["granted"]]
    pairs = set(zip(granted["customer_id"], granted["channel"]))
    assert all(pair in pairs for pair in zip(history.attempts["customer_id"], history.attempts["channel"]))


def test_sensitive_industries_and_intents_are_present(history) -> None:
    customers = history.customers
    share = customers["sensitive"].mean()
    assert 0.05 < share < 0.25
    assert set(customers.loc[customers["sensitive"], "industry"]) <= set(planted_truth()["sensitive_industries"])
    conversations = history.events[history.events["type"] == "service_conversation"]
    assert {"pricing_question", "upsell_interest", "renewal_risk", "implementation_blocker",
            "change_request"} <= set(conversations["intent"])
    assert conversations["text"].notna().all()


def test_planted_best_channel_wins_in_the_data(history) -> None:
    attempts = history.attempts.merge(history.customers[["id", "segment"]], left_on="customer_id", right_on="id")
    attempts["positive"] = attempts["outcome"].isin(POSITIVE)
    rates = attempts.groupby(["segment", "channel"])["positive"].mean().unstack()
    for segment, truth in SEGMENTS.items():
        if segment == "public_sector":  # too few customers in 20k for a stable ranking
            continue
        assert rates.loc[segment].idxmax() == truth["best_channel"], segment


def test_recent_browsing_and_pricing_questions_raise_response(history) -> None:
    attempts, events = history.attempts, history.events
    views = events[events["type"] == "product_view"][["customer_id", "product", "occurred_at"]]
    joined = attempts.merge(views, on=["customer_id", "product"], how="left")
    joined["recent"] = ((joined["attempted_at"] - joined["occurred_at"]).dt.days.between(0, 6))
    recent = joined.groupby("id")["recent"].any()
    positive = attempts.set_index("id")["outcome"].isin(POSITIVE)
    assert positive[recent].mean() > 1.5 * positive[~recent].mean()


def test_true_rate_peaks_at_the_planted_slot() -> None:
    truth = planted_truth()["segments"]["smb_owner"]
    best = truth["best_hour_of_week"]
    rates = [true_response_rate("smb_owner", "call", h) for h in range(168)]
    assert int(np.argmax(rates)) == best
    assert true_response_rate("smb_owner", "call", best) > true_response_rate("smb_owner", "sms", best)


def test_load_into_store_replaces_previous_data(store) -> None:
    small = generate(customers=300, now=NOW, seed=1)
    load_into_store(small, store)
    load_into_store(small, store)
    with store() as session:
        counts = [session.scalar(select(func.count()).select_from(t)) for t in (Customer, Consent, Event, OutreachAttempt)]
    assert counts == [len(small.customers), len(small.consents), len(small.events), len(small.attempts)]
