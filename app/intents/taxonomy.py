"""The company's intent taxonomy (`script_library/intents.yaml`), loaded and checked.

Versioned data the business edits: each intent has its revenue motion, a definition, a confidence threshold,
a routing action and examples; every classification records the taxonomy's version (with a hash of the file,
so an edit without a version bump still shows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from app.datafile import read_yaml, stamped_version

SEVERITIES = ("low", "medium", "high")
STAGE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
MIN_EXAMPLES = 4


class TaxonomyError(ValueError):
    """intents.yaml is missing or invalid; the message names the file and the field."""


@dataclass(frozen=True)
class IntentSpec:
    name: str
    motion: str
    definition: str
    threshold: float
    route: str  # a route of the routing policy (script_library/routing.yaml), or "none"
    examples: tuple[str, ...]
    counter_examples: tuple[str, ...]
    severity: str = "low"
    stage: str | None = None  # the lifecycle stage the intent suggests (lifecycle_stage_candidate)


@dataclass(frozen=True)
class Taxonomy:
    version: str
    other: str
    intents: dict[str, IntentSpec]
    stages: frozenset[str] = frozenset()  # the company's own template stages, beside the product's

    @classmethod
    def load(cls, path: Path) -> Taxonomy:
        text, raw = read_yaml(path, TaxonomyError)
        raw = raw or {}
        if not isinstance(raw, dict) or not isinstance(raw.get("intents"), dict) or not raw["intents"]:
            raise TaxonomyError(f"{path}: needs `intents`, a mapping of intent name to its definition")
        if not raw.get("version"):
            raise TaxonomyError(f"{path}: needs a `version`")
        intents = {}
        for name, spec in raw["intents"].items():
            where = f"{path}: intents.{name}"
            if not isinstance(spec, dict):
                raise TaxonomyError(f"{where} must be a mapping")
            threshold = spec.get("threshold")
            if not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
                raise TaxonomyError(f"{where}.threshold must be a probability between 0 and 1")
            if not isinstance(spec.get("route"), str) or not spec["route"].strip():
                raise TaxonomyError(f"{where}.route must name a route of the routing policy (or none)")
            severity = spec.get("severity", "low")
            if severity not in SEVERITIES:
                raise TaxonomyError(f"{where}.severity must be one of {', '.join(SEVERITIES)}")
            examples = tuple(str(e) for e in spec.get("examples") or ())
            if len(examples) < MIN_EXAMPLES:
                raise TaxonomyError(f"{where}.examples needs at least {MIN_EXAMPLES} messages")
            intents[str(name)] = IntentSpec(str(name), str(spec.get("motion", "none")), str(spec.get("definition", "")),
                                            float(threshold), spec["route"], examples,
                                            tuple(str(e) for e in spec.get("counter_examples") or ()), severity,
                                            str(spec["stage"]) if spec.get("stage") else None)
        other = str(raw.get("other") or "other")
        if other in intents:
            raise TaxonomyError(f"{path}: other ({other!r}) must not also be an intent")
        stages = raw.get("stages") or []
        if not isinstance(stages, list) or not all(isinstance(s, str) and STAGE.match(s) for s in stages):
            raise TaxonomyError(f"{path}: stages must be a list of stage names (lower case letters, digits, _)")
        return cls(stamped_version(raw["version"], text), other, intents, frozenset(stages))

    def names(self) -> frozenset[str]:
        return frozenset(self.intents)
