"""The routing policy is data the business edits: the shipped one fits the shipped taxonomy, and a broken edit is
refused with the file and the field named, never half-applied."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.intents.routing import RoutingError, RoutingPolicy
from app.intents.taxonomy import Taxonomy
from tests.conftest import ROOT

LIBRARY = ROOT / "script_library"


def taxonomy_routes() -> dict[str, str]:
    taxonomy = Taxonomy.load(LIBRARY / "intents.yaml")
    return {name: spec.route for name, spec in taxonomy.intents.items()}


def test_the_shipped_policy_routes_every_intent_of_the_shipped_taxonomy() -> None:
    policy = RoutingPolicy.load(LIBRARY / "routing.yaml", taxonomy_routes())
    assert policy.route_for("handoff_to_owner", stage="lead").fires
    assert not policy.route_for("notify_owner", stage="lead").fires  # upsell is for active customers
    escalation = policy.route_for("escalate_to_sales_engineering", stage="active")
    assert escalation.fires and escalation.route.assign == "team" and escalation.route.team == "sales_engineering"
    assert not policy.route_for("service_queue", stage="active").fires
    assert policy.version.startswith("2026-") and "+" in policy.version  # the version and a hash of the file


def edited(tmp_path: Path, change) -> Path:  # noqa: ANN001
    raw = yaml.safe_load((LIBRARY / "routing.yaml").read_text())
    change(raw)
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(("change", "named"), [
    (lambda raw: raw["routes"].pop("notify_owner"), "'notify_owner', which is not a route"),
    (lambda raw: raw["routes"]["handoff_to_owner"].update(stages=["prospect"]), "routes.handoff_to_owner.stages"),
    (lambda raw: raw["routes"]["escalate_to_manager"].pop("team"), "routes.escalate_to_manager.team"),
    (lambda raw: raw["routes"]["handoff_to_owner"].update(assign="everyone"), "routes.handoff_to_owner.assign"),
    (lambda raw: raw["routes"]["handoff_to_owner"].update(min_score=-1), "routes.handoff_to_owner.min_score"),
    (lambda raw: raw["routes"]["notify_owner"].pop("sla_minutes"), "routes.notify_owner.sla_minutes"),
    (lambda raw: raw.pop("version"), "needs a `version`"),
])
def test_a_broken_policy_is_refused_naming_the_field(tmp_path: Path, change, named: str) -> None:  # noqa: ANN001
    with pytest.raises(RoutingError, match="routing.yaml") as error:
        RoutingPolicy.load(edited(tmp_path, change), taxonomy_routes())
    assert named in str(error.value)
