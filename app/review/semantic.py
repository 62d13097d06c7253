"""Paraphrase matching: draft sentences against policy examples, with the MiniLM model the library uses."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import numpy as np

from app.library.index import Embedder
from app.review.policy import Category

# A sentence ends at . ! or ? followed by a space or the end; a dot inside an address, a link or a number
# ("maria.lopez@brightwave.example", "2.5") does not end it.
SENTENCE = re.compile(r"(?:[^.!?\n]|[.!?](?=[^\s.!?]))+[.!?]*")


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    text: str


def sentences(text: str) -> list[Sentence]:
    out = []
    for match in SENTENCE.finditer(text):
        stripped = match.group().strip()
        if len(stripped) >= 12:
            start = match.start() + match.group().index(stripped)
            out.append(Sentence(start, start + len(stripped), stripped))
    return out


class SentenceVectors:
    """The embeddings of one text's sentences, computed once per review and shared by every validator."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._lock = threading.Lock()
        self._known: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._known))
            if missing:
                for text, vector in zip(missing, self.embedder.embed(missing)):
                    self._known[text] = vector
            return np.stack([self._known[t] for t in texts]) if texts else np.zeros((0, 384), dtype=np.float32)


class ExampleMatcher:
    """Embeds every category's examples once; scores a text's sentences against them."""

    def __init__(self, embedder: Embedder, categories: tuple[Category, ...]) -> None:
        self.embedder = embedder
        self.categories = categories
        self._lock = threading.Lock()
        self._vectors: np.ndarray | None = None
        self._owners: list[str] = []

    def examples(self) -> tuple[np.ndarray, list[str]]:
        """The examples' vectors and categories, embedded once (the first call loads the model)."""
        with self._lock:
            if self._vectors is None:
                texts = [e for c in self.categories for e in c.examples]
                self._owners = [c.name for c in self.categories for _ in c.examples]
                self._vectors = self.embedder.embed(texts) if texts else np.zeros((0, 384), dtype=np.float32)
            return self._vectors, self._owners

    def matches(self, text: str, threshold: float, approved: str | None = None,
                vectors_of: SentenceVectors | None = None) -> list[tuple[Sentence, str, float]]:
        """(sentence, category, similarity) for sentences closer than `threshold` to an example. Sentences
        found word for word in `approved` (the approved template) were already signed off: skipped."""
        vectors, owners = self.examples()
        known = " ".join((approved or "").split())
        found = [s for s in sentences(text) if not known or " ".join(s.text.split()) not in known]
        if not found or not len(vectors):
            return []
        embed = vectors_of.embed if vectors_of is not None else self.embedder.embed
        scores = embed([s.text for s in found]) @ vectors.T  # normalised: cosine
        out = []
        for i, sentence in enumerate(found):
            j = int(np.argmax(scores[i]))
            if scores[i, j] >= threshold:
                out.append((sentence, owners[j], float(scores[i, j])))
        return out
