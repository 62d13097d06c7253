"""Classifying what customers write: the taxonomy's classifier, and the classification stored per event.

The classifier learns from the taxonomy's examples (`script_library/intents.yaml`) with the same model as
`outreach intents eval` (app/intents/classifier.py). A message is given an intent only when the classifier
finds it in scope and the intent's own confidence threshold is met; otherwise it is `other`, and nothing is
routed on a guess.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import InvalidInput
from app.intents.classifier import IntentClassifier, score, train
from app.intents.tables import EventIntent, IntentLabel
from app.intents.taxonomy import Taxonomy
from app.library.index import Embedder
from app.review import personal_data

MAX_TEXT_CHARS = 10_000  # what an event may carry


@dataclass(frozen=True)
class Classification:
    intent: str
    confidence: float
    runner_up: str | None
    taxonomy_version: str
    model: str
    secondary: str | None = None  # a second intent the message carries with its own threshold passed
    secondary_confidence: float | None = None
    severity: str | None = None
    stage_candidate: str | None = None


class IntentService:
    """Trained on first use (a few seconds: the taxonomy's examples are embedded once), and again when people
    have labelled messages since (`learn`): the labelled messages are examples beside the taxonomy's."""

    def __init__(self, taxonomy: Taxonomy, embedder: Embedder, pii_patterns: dict[str, re.Pattern[str]] | None = None
                 ) -> None:
        self.taxonomy, self.embedder = taxonomy, embedder
        self.pii_patterns = pii_patterns  # personal data is redacted before the classifier reads a message
        self._lock = threading.Lock()
        self._model: IntentClassifier | None = None
        self._labelled: tuple[tuple[str, str], ...] = ()

    def learn(self, labelled: list[tuple[str, str]]) -> None:
        """Messages people labelled (text, intent): the next classification retrains when they changed."""
        known = tuple((text, intent) for text, intent in labelled
                      if intent in self.taxonomy.intents or intent == self.taxonomy.other)
        with self._lock:
            if known != self._labelled:
                self._labelled, self._model = known, None

    def model(self) -> IntentClassifier:
        with self._lock:
            if self._model is None:
                rows = [(self._readable(e), spec.name) for spec in self.taxonomy.intents.values() for e in spec.examples]
                rows += [(self._readable(text), intent) for text, intent in self._labelled]
                frame = pd.DataFrame(rows, columns=["text", "label"])
                self._model = train(frame, self.embedder, oos_label=self.taxonomy.other)
            return self._model

    @property
    def model_name(self) -> str:
        name = f"{getattr(self.embedder, 'name', 'embeddings')} + logistic regression"
        return f"{name}, {len(self._labelled)} labelled messages" if self._labelled else name

    def classify(self, text: str) -> Classification:
        if not text or not text.strip():
            raise InvalidInput("is empty: there is nothing to classify", field="text")
        if len(text) > MAX_TEXT_CHARS:
            raise InvalidInput(f"is {len(text):,} characters; at most {MAX_TEXT_CHARS:,} are classified", field="text")
        model = self.model()
        vectors = model.embedder.embed([self._readable(text)])
        scored = score(model.head, model.reference, vectors, self.taxonomy.other)
        best, confidence = str(scored.intent[0]), float(scored.confidence[0])
        in_scope = scored.scope[0] >= model.threshold and confidence >= self.taxonomy.intents[best].threshold
        # The runner-up is the intent it nearly was: the second best, or the best when the message became `other`.
        runner_up = str(scored.second[0]) if in_scope else best
        # Multi-label: the runner-up is a second intent of the message when it clears its own threshold too.
        second = self.taxonomy.intents.get(runner_up)
        secondary = runner_up if in_scope and second is not None and scored.second_confidence[0] >= second.threshold \
            else None
        spec = self.taxonomy.intents[best] if in_scope else None
        return Classification(intent=best if in_scope else self.taxonomy.other, confidence=confidence,
                              runner_up=runner_up, taxonomy_version=self.taxonomy.version,
                              model=self.model_name, secondary=secondary,
                              secondary_confidence=float(scored.second_confidence[0]) if secondary else None,
                              severity=spec.severity if spec else "low", stage_candidate=spec.stage if spec else None)

    def _readable(self, text: str) -> str:
        """The text as the classifier reads it: personal data replaced by its kind."""
        return personal_data.redact(text, self.pii_patterns) if self.pii_patterns is not None else text


def record(*, session: Session, event_id: str, classification: Classification, now: datetime) -> None:
    """Store an event's classification (once: a second classification of the same event is ignored)."""
    if session.get(EventIntent, event_id) is not None:
        return
    session.add(EventIntent(event_id=event_id, intent=classification.intent, confidence=classification.confidence,
                            runner_up=classification.runner_up, secondary=classification.secondary,
                            secondary_confidence=classification.secondary_confidence,
                            severity=classification.severity, stage_candidate=classification.stage_candidate,
                            taxonomy_version=classification.taxonomy_version, model=classification.model,
                            classified_at=now))


def classified(*, session: Session, event_id: str) -> EventIntent | None:
    return session.get(EventIntent, event_id)


def label(*, session: Session, event_id: str, intent: str, by: str, now: datetime, taxonomy: Taxonomy) -> IntentLabel:
    """A person says what a message is about; it becomes a training example (see `labelled_examples`)."""
    if intent not in taxonomy.intents and intent != taxonomy.other:
        raise InvalidInput(f"unknown intent {intent!r} (the taxonomy's: {', '.join(sorted(taxonomy.names()))}, "
                           f"or {taxonomy.other})", field="intent")
    reading = session.get(EventIntent, event_id)
    row = IntentLabel(event_id=event_id, intent=intent, read_as=reading.intent if reading else None, labelled_by=by,
                      labelled_at=now)
    session.add(row)
    return row


def latest_labels(*, session: Session) -> dict[str, str]:
    """Each labelled event's newest label."""
    rows = session.execute(select(IntentLabel.event_id, IntentLabel.intent).order_by(IntentLabel.id)).all()
    return {event_id: intent for event_id, intent in rows}


def product_mentioned(text: str, products: dict[str, str]) -> str | None:
    """The catalogue product a message names (its full name, or its key as words when that is distinctive:
    "the Pro Plan", "the analytics module"), the first one it names; None when it names none."""
    found = []
    for key, name in products.items():
        words = [name] + ([key.replace("_", " ")] if len(key) > 3 else [])
        for word in words:
            match = re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text, flags=re.IGNORECASE)
            if match:
                found.append((match.start(), key))
    return min(found)[1] if found else None
