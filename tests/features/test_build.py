"""Features are computed as of a point in time: nothing at or after T reaches a row for T."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from app.data.synthetic import generate
from app.features.build import FeatureBuilder, History, training_frame
from app.features.pointintime import TimeIndex, epoch_seconds
from tests.conftest import NOW

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=timezone.utc)  # a Monday


def history_of(events: list[tuple], attempts: list[tuple] = ()) -> History:
    customers = pd.DataFrame([{"id": "c1", "segment": "smb_owner", "industry": "retail", "lifecycle_stage": "lead",
                               "timezone": "Europe/Lisbon", "age": 40, "sensitive": False, "do_not_contact": False,
                               "owner_rep": "r1", "team": "t1", "created_at": T0 - timedelta(days=100),
                               "attributes": {"tier": "gold", "seats": 12}}])
    event_frame = pd.DataFrame([{"customer_id": "c1", "occurred_at": at, "type": kind, "product": product,
                                 "intent": intent} for at, kind, product, intent in events],
                               columns=["customer_id", "occurred_at", "type", "product", "intent"])
    attempt_frame = pd.DataFrame([{"id": f"a{i}", "customer_id": "c1", "attempted_at": at, "channel": ch,
                                   "product": "pro", "outcome": outcome, "attributes": {}}
                                  for i, (at, ch, outcome) in enumerate(attempts)],
                                 columns=["id", "customer_id", "attempted_at", "channel", "product", "outcome",
                                          "attributes"])
    return History(customers, pd.DataFrame(columns=["customer_id", "channel", "granted"]), event_frame, attempt_frame)


def row_at(history: History, at: datetime, product: str = "pro") -> pd.Series:
    builder = FeatureBuilder(history)
    return builder.rows(pd.Series(["c1"]), pd.Series([at]), pd.Series(["email"]), pd.Series([product])).iloc[0]


def test_windows_and_recency_are_exact_and_strictly_before() -> None:
    h = history_of([
        (T0 - timedelta(days=3), "product_view", "pro", None),
        (T0 - timedelta(days=10), "product_view", "pro", None),
        (T0 - timedelta(days=1), "product_view", "starter", None),
        (T0 - timedelta(days=2), "service_conversation", "pro", "pricing_question"),
        (T0 - timedelta(days=13), "service_conversation", "pro", "pricing_question"),
        (T0 - timedelta(days=15), "service_conversation", "pro", "pricing_question"),
        (T0, "service_conversation", "pro", "pricing_question"),  # at T itself: not yet known
    ], attempts=[(T0 - timedelta(days=20), "call", "replied"), (T0 - timedelta(hours=12), "email", "replied")])
    row = row_at(h, T0)
    assert row["days_since_product_view"] == pytest.approx(3)
    assert row["product_views_7d"] == 1
    assert row["days_since_any_product_view"] == pytest.approx(1)
    assert row["pricing_question_14d"] == 2
    assert row["days_since_last_contact"] == pytest.approx(0.5)
    assert row["contacts_30d"] == 2
    # An outcome is known one day after its attempt: the reply 12 hours ago does not count yet.
    assert row["previous_responses"] == 1
    assert row["days_since_last_response"] == pytest.approx(19)
    # Local time of the contact (Lisbon is UTC+1 in May), and profile attributes as typed columns.
    assert (row["hour"], row["day_of_week"], row["hour_of_week"]) == (13, 0, 13)
    assert row["profile_tier"] == "gold" and row["profile_seats"] == 12.0
    assert row["tenure_days"] == pytest.approx(100)


def test_a_customer_with_no_history_gets_missing_values_not_zeros_for_recency() -> None:
    row = row_at(history_of([]), T0)
    assert np.isnan(row["days_since_product_view"]) and np.isnan(row["days_since_last_contact"])
    assert row["product_views_7d"] == 0 and row["previous_contacts"] == 0


def test_no_leakage_from_after_the_point_in_time() -> None:
    """Training rows built from the full history equal rows built from the history cut at each row's time."""
    full = generate(customers=300, now=NOW, seed=11)
    history = History(full.customers, full.consents, full.events, full.attempts)
    features, target, times = training_frame(history)
    cut = times.sort_values().iloc[len(times) // 2]
    past = History(full.customers, full.consents, full.events[full.events["occurred_at"] < cut],
                   full.attempts[full.attempts["attempted_at"] < cut])
    past_features, _, past_times = training_frame(past)
    early = (times < cut).to_numpy()
    left = features[early].reset_index(drop=True)
    right = past_features.reset_index(drop=True)
    assert len(left) == len(right) > 100
    pd.testing.assert_frame_equal(left, right, check_dtype=False)


def test_time_index_and_epoch_seconds() -> None:
    index = TimeIndex(np.array([1, 1, 2]), np.array([100, 200, 150]))
    np.testing.assert_array_equal(index.last_before(np.array([1, 1, 2, 3]), np.array([200, 201, 150, 999])),
                                  [100, 200, np.nan, np.nan])
    np.testing.assert_array_equal(index.count_between(np.array([1, 2]), np.array([0, 0]), np.array([200, 151])), [1, 1])
    # Sums over the same half-open windows, whatever order the entries came in.
    valued = TimeIndex(np.array([2, 1, 1]), np.array([150, 200, 100]), np.array([5.0, 2.0, 3.0]))
    np.testing.assert_array_equal(valued.sum_between(np.array([1, 1, 2]), np.array([0, 100, 151]), np.array([201, 200, 999])),
                                  [5.0, 3.0, 0.0])
    with pytest.raises(ValueError, match="without values"):
        index.sum_between(np.array([1]), np.array([0]), np.array([1]))
    stamps = pd.Series([datetime(2026, 1, 1, tzinfo=timezone.utc)])
    for unit in ("s", "ms", "us", "ns"):
        assert epoch_seconds(stamps.astype(f"datetime64[{unit}, UTC]"))[0] == 1767225600


def test_the_products_own_trace_on_an_attempt_is_not_a_feature() -> None:
    """An outcome recorded from a card carries its card id and A/B arm: traces, not campaign context. A model
    that learnt them would learn 'this row came from the product' (and an id per row)."""
    history = history_of([], [(T0 - timedelta(days=30), "email", "replied"), (T0 - timedelta(days=3), "call", "no_answer")])
    history.attempts.at[0, "attributes"] = {"campaign_touches": 2}  # context a bank-style import carries
    history.attempts.at[1, "attributes"] = {"card": "c-123", "arm": "challenger", "campaign_touches": 1}
    features, _, _ = training_frame(history)
    assert "context_campaign_touches" in features and features["context_campaign_touches"].tolist() == [2.0, 1.0]
    assert not {"context_card", "context_arm"} & set(features.columns)
