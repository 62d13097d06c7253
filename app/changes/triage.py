"""Triage of a change request: which changes it asks for (several in one message), the new values, the assurance
each needs, a risk score with its signals, and the route: `auto` (apply after its verification, if any, without
a person), `verify` (ask for the verification first: medium risk, or a check the type needs) or `review` (a
person decides: high risk, or a type that always needs one).

The classifier is the intent classifier (app/intents/classifier.py) trained on the taxonomy's examples, with
`not_a_change` as a class of its own; it reads the whole message and each of its clauses, so "update my number
and my email" gives two changes. The risk is a noisy-OR of the taxonomy's signal weights.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from app.changes.extract import extract, mask, values_for
from app.changes.taxonomy import NOT_A_CHANGE, VERIFICATIONS, ChangeTaxonomy
from app.intents.classifier import IntentClassifier, train
from app.library.index import Embedder

_NEXT_ASK = (r"(?=(?:please\s+)?(?:update|change|add|move|switch|send|set|put|use|make|remove|drop|cancel|delete|"
             r"reduce|increase|pay|transfer|route|direct|give|close|terminate|erase|wipe|rename|replace|my|our|the|"
             r"his|her|their|all)\b)")
CLAUSE = re.compile(rf"(?<=[.!?;])\s+|\s*,\s*(?:and\s+)?{_NEXT_ASK}|\s+(?:and also|and then|and|also|plus)\s+{_NEXT_ASK}",
                    re.IGNORECASE)
MIN_CONFIDENCE = 0.35  # a clause's type below this is not counted as a change of its own
URGENCY = re.compile(r"\b(?:urgent(?:ly)?|asap|immediately|right away|right now|today|before (?:noon|end of day|"
                     r"close)|within the hour|straight away)\b", re.IGNORECASE)
_RELATIVE = (r"(?:father|mother|dad|mum|mom|husband|wife|partner|boss|son|daughter|client|friend|brother|sister|"
             r"colleague|employer|parent|spouse|grand(?:mother|father|ma|pa)|aunt|uncle|neighbou?r)")
_THEIR_THING = (r"(?:account|number|phone|mobile|e-?mail|card|bank|details|payouts?|refunds?|payments?|iban|address|"
                r"subscription|login|profile)")
# Someone asking about another person's account: "for my father", "my wife's card", "her payouts", "my husband
# handles this account", "on her behalf".
ON_BEHALF = re.compile(rf"\b(?:on (?:behalf of|his behalf|her behalf)|for my {_RELATIVE}\b|my {_RELATIVE}'?s {_THEIR_THING}|"
                       rf"(?:his|her) (?:payouts?|refunds?|payments?|card|bank|iban|account(?! (?:manager|rep|executive|team)))|my {_RELATIVE} (?:handles|owns|runs|manages|holds|looks after|is the)"
                       rf"|(?:it'?s|this is) (?:his|her|my {_RELATIVE}'?s) account)\b", re.IGNORECASE)
# Instructions aimed at whoever (or whatever) processes the request: to skip its checks, or claims that they
# were done; and markers dressing customer text up as the system's own.
SYSTEM_INSTRUCTIONS = re.compile(
    r"\b(?:skip|bypass|waive|override|disable|ignore|turn off|no need for|without(?: any)?|don'?t (?:do|run|send|need)|"
    r"do not (?:do|run|send|need))\s+(?:the |any |all |your |a )?(?:security |usual |extra |identity )?"
    r"(?:checks?|verifications?|verifying|security|codes?|otp|approvals?|reviews?|confirmations?|questions)\b"
    r"|\b(?:already|pre-?)\s*(?:been\s+)?(?:verified|approved|authori[sz]ed|cleared|confirmed)\b"
    r"|(?:^|[\s\[(<])(?:system|admin|administrator|agent|operator|internal)\s*(?:note|message|instruction|override|"
    r"command)?\s*[:\]>]", re.IGNORECASE)
# A new value next to the word for its kind ("my new email is ...", "payouts to IBAN ...") names the change even
# when the classifier's reading of the clause is unsure.
VALUE_CUES = {"contact_phone": ("phone", re.compile(r"\b(?:phone|mobile|cell|number|tel|telephone|landline)\b", re.I)),
              "contact_email": ("email", re.compile(r"\b(?:e-?mail|mail address|login)\b", re.I)),
              "payment_method": ("iban", re.compile(r"\b(?:iban|bank|account|payouts?|refunds?|pay|payments?|debit)\b",
                                                    re.I))}
CONTACT_TYPES = frozenset({"contact_phone", "contact_email"})
# A change of contact point without a valid new value is refused (nothing to verify or apply); other types
# without a value (a plan, a new card) wait for a person instead.
NEEDS_A_VALUE = {"contact_phone": "phone number", "contact_email": "email address"}
MONEY_TYPES = frozenset({"payment_method"})


class PastChange(BaseModel):
    type: str
    days_ago: float = Field(ge=0)


class RequestContext(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recent_changes: list[PastChange] = Field(default_factory=list)
    new_device: bool = False
    country: str | None = Field(default=None, min_length=2, max_length=2)
    usual_country: str | None = Field(default=None, min_length=2, max_length=2)


class ChangeRequest(BaseModel):
    """One line of `outreach changes triage --file` (other keys on the line, such as a label, are ignored)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=96)
    channel: str = Field(min_length=1, max_length=16)
    text: str = Field(min_length=1, max_length=10_000)
    context: RequestContext = Field(default_factory=RequestContext)


@dataclass
class Triage:
    id: str
    change_type: str
    changes: list[dict[str, Any]]
    confidence: float
    verification: str
    risk: dict[str, Any]
    route: str
    taxonomy_version: str
    problems: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)  # the new values unmasked: for applying, never shown

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "change_type": self.change_type, "changes": self.changes,
                "confidence": round(self.confidence, 4), "verification": self.verification, "risk": self.risk,
                "route": self.route, "problems": self.problems, "taxonomy_version": self.taxonomy_version}


class ChangeTriage:
    """Trained on first use from the taxonomy's examples (a few seconds)."""

    def __init__(self, taxonomy: ChangeTaxonomy, embedder: Embedder, injection: Any = None) -> None:
        self.taxonomy, self.embedder, self.injection = taxonomy, embedder, injection
        self._lock = threading.Lock()
        self._model: IntentClassifier | None = None

    def model(self) -> IntentClassifier:
        with self._lock:
            if self._model is None:
                rows = [(e, t.name) for t in self.taxonomy.types.values() for e in t.examples]
                self._model = train(pd.DataFrame(rows, columns=["text", "label"]), self.embedder,
                                    oos_label=NOT_A_CHANGE)
            return self._model

    def _types(self, text: str, country: str | None = None) -> tuple[list[tuple[str, float]], float]:
        """The changes asked for, in the order the message asks them, with their confidence; and the confidence
        of the whole message's reading."""
        clauses = [c.strip() for c in CLAUSE.split(text) if c and len(c.strip()) > 3]
        readings = self.model().predict([text] + clauses)
        whole, parts = readings[0], readings[1:]
        found: dict[str, float] = {}
        for clause, (name, confidence) in zip(clauses, parts):
            if name != NOT_A_CHANGE and confidence >= MIN_CONFIDENCE:
                found[name] = max(found.get(name, 0.0), confidence)
            for cued, (kind, words) in VALUE_CUES.items():
                if cued not in found and words.search(clause) and values_for(cued, extract(clause, country)):
                    found[cued] = max(confidence if name == cued else 0.0, MIN_CONFIDENCE)
        if whole[0] != NOT_A_CHANGE:
            found = {whole[0]: max(whole[1], found.get(whole[0], 0.0)), **found}
        return list(found.items()), whole[1]

    def triage(self, request: ChangeRequest, history: list[PastChange] | None = None) -> Triage:
        """`history`: the account's own recent requests as the store holds them (app/changes/service.history),
        read beside the `recent_changes` the caller sends."""
        values = extract(request.text, request.context.country)
        types, confidence = self._types(request.text, request.context.country)
        changes, problems, unmasked = [], [], {}
        for name, type_confidence in types:
            extracted = values_for(name, values)
            unmasked.update(extracted)
            if name in NEEDS_A_VALUE and not extracted:  # a new contact point that is not valid: say so
                problems.append(f"{name}: no valid new {NEEDS_A_VALUE[name]} found in the message")
            spec = self.taxonomy.types[name]
            changes.append({"type": name, "confidence": round(type_confidence, 4),
                            "extracted": {k: mask(k, v) for k, v in extracted.items()},
                            "rules": {"touches": list(spec.touches), "approval": spec.approval,
                                      "cooling_off_days": spec.cooling_off_days, "told": spec.told}})
        if not changes:
            return Triage(request.id, NOT_A_CHANGE, [], confidence, "none",
                          {"score": 0.0, "level": "low", "signals": []}, "auto", self.taxonomy.version)
        specs = [self.taxonomy.types[c["type"]] for c in changes]
        verification = max((s.verification for s in specs), key=VERIFICATIONS.index)
        risk = self._risk(request, [s.name for s in specs], history or [])
        if risk["level"] == "high" or verification == "human":
            route = "review"
        elif risk["level"] == "medium" or verification != "none":
            route = "verify"
        else:
            route = "auto"
        if risk["level"] == "medium" and verification == "none":
            verification = "code_to_contact_on_file"  # a medium risk never goes through on no assurance
        return Triage(request.id, changes[0]["type"], changes, max(confidence, changes[0]["confidence"]), verification,
                      risk, route, self.taxonomy.version, problems, unmasked)

    def _risk(self, request: ChangeRequest, types: list[str], history: list[PastChange]) -> dict[str, Any]:
        policy = self.taxonomy.risk
        recent = [c.type for c in [*request.context.recent_changes, *history] if c.days_ago <= policy.window_days]
        key = {name for name, spec in self.taxonomy.types.items() if spec.key_detail}
        signals = []
        if set(types) & MONEY_TYPES and (set(types) & CONTACT_TYPES or set(recent) & CONTACT_TYPES):
            signals.append("takeover_pattern")
        if len([t for t in recent if t in key]) + len([t for t in types if t in key]) >= 2:
            signals.append("repeated_key_changes")
        if request.context.new_device:
            signals.append("new_device")
        ctx = request.context
        if ctx.country and ctx.usual_country and ctx.country.upper() != ctx.usual_country.upper():
            signals.append("unusual_country")
        if URGENCY.search(request.text):
            signals.append("urgency")
        if ON_BEHALF.search(request.text):
            signals.append("not_the_account_holder")
        if SYSTEM_INSTRUCTIONS.search(request.text) or (self.injection is not None
                                                        and any(self.injection.flags([request.text]))):
            signals.append("instructions_to_the_system")
        if set(types) & key:
            signals.append("key_detail")
        safe = 1.0
        for signal in signals:
            safe *= 1.0 - policy.weights.get(signal, 0.0)
        score = round(1.0 - safe, 4)
        level = "high" if score >= policy.high_at else "medium" if score >= policy.medium_at else "low"
        return {"score": score, "level": level, "signals": signals}
