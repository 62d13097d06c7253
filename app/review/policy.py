"""The review policy: YAML files in `guardrails/`, loaded and versioned together."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FILES = ("policy.yaml", "claims.yaml", "disclosures.yaml", "tone.yaml", "injection.yaml", "pii.yaml", "links.yaml",
         "sensitive.yaml", "judge.yaml", "conduct.yaml")


# The validators the product runs (app/review/validators.py builds exactly these; a test keeps the two equal).
# policy.yaml gives each a severity; a name it lists that is not here is a typo, refused with its line.
VALIDATORS = ("pii", "claims", "disclosures", "faithfulness", "tone", "injection_echo", "channel_limits",
              "hidden_text", "disguised_text", "links", "credentials", "sensitive_topics", "judge", "judge_watch",
              "conduct")


class ReviewPolicyError(ValueError):
    """A policy file that is missing or invalid; the message names the file and the field."""


@dataclass(frozen=True)
class Category:
    name: str
    reason: str
    phrases: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReviewPolicy:
    version: str
    severity: dict[str, str]
    routing: dict[str, Any]
    semantic: dict[str, float]
    limits: dict[str, int]
    claims: tuple[Category, ...]
    tone: tuple[Category, ...]
    disclosures: dict[str, list[dict[str, Any]]]
    injection_phrases: tuple[str, ...]
    injection_patterns: tuple[re.Pattern[str], ...]
    pii_patterns: dict[str, re.Pattern[str]]
    allow_recipient: frozenset[str] = field(default_factory=frozenset)
    links: dict[str, Any] = field(default_factory=dict)
    credential_patterns: tuple[re.Pattern[str], ...] = ()
    sensitive: tuple[Category, ...] = ()
    conduct: tuple[Category, ...] = ()

    @classmethod
    def load(cls, folder: Path) -> ReviewPolicy:
        raw: dict[str, Any] = {}
        digest = hashlib.sha256()
        for name in FILES:
            path = folder / name
            try:
                text = path.read_text(encoding="utf-8")
                raw[name] = yaml.safe_load(text) or {}
            except OSError as exc:
                raise ReviewPolicyError(f"policy file {path} cannot be read ({exc.strerror}); set GUARDRAILS_DIR") from None
            except yaml.YAMLError as exc:
                raise ReviewPolicyError(f"policy file {path}: invalid YAML ({exc})") from None
            digest.update(text.encode())
        main = raw["policy.yaml"]
        try:
            severity = {name: spec["severity"] for name, spec in main["validators"].items()}
            unknown = [n for n in severity if n not in VALIDATORS]
            if unknown:
                text = (folder / "policy.yaml").read_text(encoding="utf-8")
                line = next((i for i, row in enumerate(text.splitlines(), 1) if row.strip().startswith(f"{unknown[0]}:")), 0)
                raise ReviewPolicyError(f"policy.yaml line {line}: validators.{unknown[0]} is not a validator "
                                        f"(known: {', '.join(VALIDATORS)})")
            bad = {n: s for n, s in severity.items() if s not in ("hard", "soft")}
            if bad:
                raise ReviewPolicyError(f"policy.yaml: validators.{next(iter(bad))}.severity must be hard or soft")
            return cls(
                version=f"{main['version']}+{digest.hexdigest()[:8]}", severity=severity, routing=main["routing"],
                semantic={"sensitive_threshold": 0.62, **main["semantic"]}, limits=main["limits"],
                claims=_categories(raw["claims.yaml"], "claims.yaml"), tone=_categories(raw["tone.yaml"], "tone.yaml"),
                disclosures=raw["disclosures.yaml"].get("channels", {}),
                injection_phrases=tuple(p.lower() for p in raw["injection.yaml"].get("phrases", [])),
                injection_patterns=tuple(_compile(p, "injection.yaml") for p in raw["injection.yaml"].get("patterns", [])),
                pii_patterns={k: _compile(v, "pii.yaml") for k, v in raw["pii.yaml"]["patterns"].items()},
                allow_recipient=frozenset(raw["pii.yaml"].get("allow_recipient", [])),
                links={k: v for k, v in raw["links.yaml"].items() if k != "credential_requests"},
                credential_patterns=tuple(_compile(p, "links.yaml")
                                          for p in raw["links.yaml"]["credential_requests"]["patterns"]),
                sensitive=_categories(raw["sensitive.yaml"], "sensitive.yaml"),
                conduct=_categories(raw["conduct.yaml"], "conduct.yaml"))
        except KeyError as exc:
            raise ReviewPolicyError(f"policy file {folder}: missing field {exc.args[0]!r}") from None


def _compile(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.I)
    except re.error as exc:
        raise ReviewPolicyError(f"{where}: invalid pattern {pattern!r} ({exc})") from None


def _categories(data: dict[str, Any], where: str) -> tuple[Category, ...]:
    out = []
    for name, spec in (data.get("categories") or {}).items():
        if "reason" not in spec:
            raise ReviewPolicyError(f"{where}: categories.{name}.reason is required")
        out.append(Category(name=name, reason=spec["reason"], phrases=tuple(p.lower() for p in spec.get("phrases", [])),
                            patterns=tuple(_compile(p, where) for p in spec.get("patterns", [])),
                            examples=tuple(spec.get("examples", []))))
    return tuple(out)
