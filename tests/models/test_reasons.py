"""Reasons come from the model's own contributions and read as sentences a rep understands."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.models.reasons import ReasonTable, explain, load_reason_table


def test_top_contributions_become_true_sentences() -> None:
    table = load_reason_table()
    features = pd.DataFrame([{"product": "analytics", "channel": "sms", "days_since_product_view": 3.0,
                              "pricing_question_14d": 2, "days_since_last_contact": 14.2, "segment": "smb_owner",
                              "age": 40.0}])
    contributions = pd.DataFrame([{"product": 0.0, "channel": 0.3, "days_since_product_view": 0.5,
                                   "pricing_question_14d": 0.4, "days_since_last_contact": 0.1, "segment": 0.9,
                                   "age": 2.0}])
    [reasons] = explain(features, contributions, table)
    texts = [r["text"] for r in reasons]
    # Signals (what the customer did) first, by contribution; context (who they are) only fills in.
    assert texts == ["browsed Analytics Add-on 3 days ago", "asked about pricing twice in the last 14 days",
                     "no follow-up for 14 days"]
    assert reasons[0]["feature"] == "days_since_product_view" and reasons[0]["contribution"] == 0.5


def test_untrue_or_weak_reasons_are_not_shown() -> None:
    table = load_reason_table()
    features = pd.DataFrame([{"product": "pro", "days_since_product_view": 200.0, "pricing_question_14d": 0,
                              "days_since_last_contact": np.nan, "age": 30.0}])
    contributions = pd.DataFrame([{"product": 0.0, "days_since_product_view": 0.8, "pricing_question_14d": 0.3,
                                   "days_since_last_contact": 0.3, "age": 0.5}])
    assert explain(features, contributions, table) == [[]]
    # Pushing the score down is never a reason to call.
    features.loc[0, "pricing_question_14d"] = 3
    contributions.loc[0, "pricing_question_14d"] = -0.4
    assert explain(features, contributions, table) == [[]]


def test_the_business_edits_sentences_without_a_retrain() -> None:
    table = ReasonTable.model_validate({"version": "custom", "products": {"pro": "Pro"},
                                        "reasons": {"product_views_7d": {"text": "looked at {product} {times}", "min": 1}}})
    features = pd.DataFrame([{"product": "pro", "product_views_7d": 3}])
    contributions = pd.DataFrame([{"product": 0.0, "product_views_7d": 0.2}])
    assert explain(features, contributions, table)[0][0]["text"] == "looked at Pro 3 times"
