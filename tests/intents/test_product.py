"""A service event without a product gets the catalogue product its message names."""

from __future__ import annotations

from app.intents.service import product_mentioned


def test_the_product_a_message_names_comes_from_the_catalogue() -> None:
    catalogue = {"starter": "Starter Plan", "pro": "Pro Plan", "analytics": "Analytics Add-on",
                 "support_plus": "Support Plus"}
    assert product_mentioned("What would the PRO PLAN cost for 30 people?", catalogue) == "pro"
    assert product_mentioned("Does the analytics module export to CSV?", catalogue) == "analytics"
    assert product_mentioned("We switched from Starter Plan to support plus", catalogue) == "starter"  # first named
    assert product_mentioned("We are pro-active about renewals", catalogue) is None  # a short key alone is not a name
