"""The change-request taxonomy (`script_library/changes.yaml`): types, what each needs, and the risk policy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.datafile import read_yaml, stamped_version

# Weakest to strongest: a request with several changes needs the strongest of theirs.
VERIFICATIONS = ("none", "code_to_contact_on_file", "knowledge_questions", "human")
NOT_A_CHANGE = "not_a_change"
SIGNALS = ("takeover_pattern", "repeated_key_changes", "new_device", "unusual_country", "urgency",
           "not_the_account_holder", "instructions_to_the_system", "key_detail")


class ChangeTaxonomyError(ValueError):
    """changes.yaml is missing or invalid; the message names the file and the field."""


@dataclass(frozen=True)
class ChangeType:
    name: str
    definition: str
    verification: str
    key_detail: bool
    touches: tuple[str, ...]
    approval: str
    cooling_off_days: int
    told: str
    examples: tuple[str, ...]


@dataclass(frozen=True)
class RiskPolicy:
    weights: dict[str, float]
    window_days: int
    medium_at: float
    high_at: float


@dataclass(frozen=True)
class ChangeTaxonomy:
    version: str
    types: dict[str, ChangeType]
    risk: RiskPolicy
    confirmations: dict[str, str]  # channel (email, sms) -> the template that confirms an applied change
    event_intents: frozenset[str]  # service conversations read as these are change requests too

    @classmethod
    def load(cls, path: Path) -> ChangeTaxonomy:
        text, raw = read_yaml(path, ChangeTaxonomyError)
        if not isinstance(raw, dict) or not raw.get("version") or not isinstance(raw.get("types"), dict):
            raise ChangeTaxonomyError(f"{path}: needs a `version` and `types`, a mapping of change type to its rule")
        types = {}
        for name, spec in raw["types"].items():
            where = f"{path}: types.{name}"
            if not isinstance(spec, dict):
                raise ChangeTaxonomyError(f"{where} must be a mapping")
            if spec.get("verification") not in VERIFICATIONS:
                raise ChangeTaxonomyError(f"{where}.verification must be one of {', '.join(VERIFICATIONS)}")
            examples = tuple(str(e) for e in spec.get("examples") or ())
            if len(examples) < 4:
                raise ChangeTaxonomyError(f"{where}.examples needs at least 4 messages")
            cooling = spec.get("cooling_off_days", 0)
            if not isinstance(cooling, int) or cooling < 0:
                raise ChangeTaxonomyError(f"{where}.cooling_off_days must be a whole number of at least 0")
            types[str(name)] = ChangeType(str(name), str(spec.get("definition", "")), spec["verification"],
                                          bool(spec.get("key_detail", False)), tuple(spec.get("touches") or ()),
                                          str(spec.get("approval", "none")), cooling, str(spec.get("told", "")),
                                          examples)
        if NOT_A_CHANGE not in types:
            raise ChangeTaxonomyError(f"{path}: types needs `{NOT_A_CHANGE}` (questions, complaints, preferences)")
        risk = raw.get("risk") or {}
        weights = risk.get("signals") or {}
        unknown = sorted(set(weights) - set(SIGNALS))
        if unknown:
            raise ChangeTaxonomyError(f"{path}: risk.signals.{unknown[0]} is not a signal the product computes "
                                      f"({', '.join(SIGNALS)})")
        for name, weight in weights.items():
            if not isinstance(weight, (int, float)) or not 0 <= weight < 1:
                raise ChangeTaxonomyError(f"{path}: risk.signals.{name} must be a weight in [0, 1)")
        medium, high = risk.get("medium_at", 0.3), risk.get("high_at", 0.6)
        if not (isinstance(medium, (int, float)) and isinstance(high, (int, float)) and 0 < medium < high < 1):
            raise ChangeTaxonomyError(f"{path}: risk needs 0 < medium_at < high_at < 1")
        confirmations = raw.get("confirmations") or {}
        if not isinstance(confirmations, dict) or set(confirmations) - {"email", "sms"} or not all(
                isinstance(v, str) and v for v in confirmations.values()):
            raise ChangeTaxonomyError(f"{path}: confirmations maps email and sms to a template id")
        return cls(stamped_version(raw["version"], text), types,
                   RiskPolicy({s: float(weights.get(s, 0.0)) for s in SIGNALS}, int(risk.get("window_days", 30)),
                              float(medium), float(high)), dict(confirmations),
                   frozenset(str(i) for i in raw.get("from_event_intents") or ()))
