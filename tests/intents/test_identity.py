"""Identity resolution: the Fellegi-Sunter scorer behaves as the maths says, and the product's matcher, given m
and u estimated without labels, finds Febrl 4's true pairs with high precision (eval/identity_febrl.py)."""

from __future__ import annotations

import importlib.util
import math

import pytest

from app.intents.identity import EVENT_MATCHER, FellegiSunter, FieldWeights, keyed_hash
from tests.conftest import ROOT


def test_agreement_raises_and_disagreement_lowers_the_match_probability() -> None:
    scorer = FellegiSunter({"name": FieldWeights(m=0.9, u=0.01), "domain": FieldWeights(m=0.95, u=0.05)})
    assert scorer.weight({"name": True}) == pytest.approx(math.log2(90))
    assert scorer.weight({"name": None, "domain": None}) == 0  # a missing field says nothing
    assert scorer.weight({"name": False}) < 0
    assert FellegiSunter.posterior(0.0, 1.0) == pytest.approx(0.5)
    assert FellegiSunter.posterior(scorer.weight({"name": True, "domain": True}), 1 / 5) > 0.95


def test_a_company_domain_alone_never_identifies_anyone() -> None:
    weight = EVENT_MATCHER.weight({"domain": True})
    assert FellegiSunter.posterior(weight, 1.0) < 0.95  # even as the only candidate
    assert FellegiSunter.posterior(EVENT_MATCHER.weight({"session": True}), 1 / 3) > 0.95


def test_keys_are_hashed_normalised_and_secret_dependent() -> None:
    assert keyed_hash(" Kim@Example.org ", "s3cret-key") == keyed_hash("kim@example.org", "s3cret-key")
    assert keyed_hash("kim@example.org", "s3cret-key") != keyed_hash("kim@example.org", "other-key")
    assert "kim" not in keyed_hash("kim@example.org", "s3cret-key") and keyed_hash(None, "s3cret-key") is None


@pytest.mark.slow
def test_the_matcher_finds_febrl_pairs_with_high_precision() -> None:
    spec = importlib.util.spec_from_file_location("identity_febrl", ROOT / "eval" / "identity_febrl.py")
    febrl = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(febrl)
    result = febrl.run(threshold=0.95)
    assert result["true_pairs"] == 5000
    assert result["ours"]["precision"] >= 0.99 and result["ours"]["recall"] >= 0.95, result["ours"]

