"""The routing policy (`script_library/routing.yaml`): what a read intent does, for whom, and how fast.

Versioned data the business edits, like the taxonomy; `route_for` is the one place that says whether an
event makes a card, and if not, why (the reason is stored on the event's lineage)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.datafile import read_yaml, stamped_version
from app.domain import LifecycleStage

ASSIGNMENTS = ("owner", "team", "none")


class RoutingError(ValueError):
    """routing.yaml is missing or invalid, or the taxonomy names a route it lacks; the message names the field."""


@dataclass(frozen=True)
class Route:
    name: str
    assign: str  # owner | team | none
    team: str | None
    stages: frozenset[str]
    min_score: float
    sla_minutes: int | None
    cooldown_minutes: int


@dataclass(frozen=True)
class Verdict:
    """Whether a route makes a card for this customer now; `why` says what held it back."""

    route: Route | None
    fires: bool
    why: str


@dataclass(frozen=True)
class RoutingPolicy:
    version: str
    routes: dict[str, Route]

    @classmethod
    def load(cls, path: Path, taxonomy_routes: dict[str, str] | None = None) -> RoutingPolicy:
        """Read and check the policy; `taxonomy_routes` (intent -> route) must name only routes it has."""
        text, raw = read_yaml(path, RoutingError)
        raw = raw or {}
        if not isinstance(raw, dict) or not raw.get("version") or not isinstance(raw.get("routes"), dict):
            raise RoutingError(f"{path}: needs a `version` and `routes`, a mapping of route name to its rule")
        stages = {s.value for s in LifecycleStage}
        routes = {}
        for name, rule in raw["routes"].items():
            where = f"{path}: routes.{name}"
            rule = rule or {}
            if not isinstance(rule, dict) or rule.get("assign") not in ASSIGNMENTS:
                raise RoutingError(f"{where}.assign must be one of {', '.join(ASSIGNMENTS)}")
            if rule["assign"] == "team" and not rule.get("team"):
                raise RoutingError(f"{where}.team names the queue a team route assigns to")
            named = set(rule.get("stages") or ([] if rule["assign"] == "none" else stages))
            if named - stages:
                raise RoutingError(f"{where}.stages: unknown stage {sorted(named - stages)[0]!r} "
                                   f"(stages: {', '.join(sorted(stages))})")
            numbers = {key: rule.get(key, default) for key, default in
                       (("min_score", 0.0), ("sla_minutes", None), ("cooldown_minutes", 0))}
            for key, value in numbers.items():
                if value is not None and (not isinstance(value, (int, float)) or value < 0):
                    raise RoutingError(f"{where}.{key} must be a number of at least 0")
            if rule["assign"] != "none" and not numbers["sla_minutes"]:
                raise RoutingError(f"{where}.sla_minutes: a route that makes a card needs its first-touch time")
            routes[str(name)] = Route(str(name), rule["assign"], rule.get("team"), frozenset(named),
                                      float(numbers["min_score"]),
                                      int(numbers["sla_minutes"]) if numbers["sla_minutes"] else None,
                                      int(numbers["cooldown_minutes"]))
        for intent, route in (taxonomy_routes or {}).items():
            if route not in routes:
                raise RoutingError(f"{path}: the taxonomy's intent {intent!r} routes to {route!r}, which is not a "
                                   f"route here (routes: {', '.join(sorted(routes))})")
        return cls(stamped_version(raw["version"], text), routes)

    def route_for(self, route_name: str | None, *, stage: str) -> Verdict:
        """Does this route make a card for a customer in `stage`? (The score and cooldown are checked later,
        once the fresh decision is made.)"""
        route = self.routes.get(route_name or "none")
        if route is None or route.assign == "none":
            return Verdict(route, False, f"route {route_name or 'none'}: no card")
        if stage not in route.stages:
            return Verdict(route, False, f"route {route.name}: not for {stage} customers")
        return Verdict(route, True, f"route {route.name}")
