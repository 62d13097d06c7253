"""The learned judge: a small encoder fine-tuned on the team's sentences, with classifiers of risk and of
risk category on its embeddings.

Rules catch what must be exact (disclosures, personal-data formats, links); the judge catches wording
nobody wrote down. It is trained on the team's labelled sentences (`guardrails/judge.yaml`: examples per
category and hard negatives) and judges each sentence of a draft that is not word for word in the approved
template. Training has two steps: the library's embedding model (all-MiniLM-L6-v2) is fine-tuned to tell the
categories apart (`app/review/tuned.py`, about four and a half minutes on two CPU cores for the judge), then logistic-regression heads
are fitted on the fine-tuned embeddings. Frozen embeddings encode topic more than stance ("we guarantee" and
"we cannot guarantee" sit close); fine-tuning moves them apart (eval/judge_eval.py measures both).

The fine-tuned encoder is saved under the cache folder, keyed by the sentences and labels, the base model and
the recipe, so it trains once per machine and policy version.

Its scores are not calibrated frequencies (the training is class-balanced); the thresholds in the file are set
on cross-validated scores of the team's own sentences (eval/judge_eval.py), so each reads as "the share of the
hard negatives this would hold or block".
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.datafile import read_yaml
from app.library.index import Embedder
from app.review.tuned import TunedEncoder

CLEAN = "clean"


class JudgeFileError(ValueError):
    """judge.yaml is missing or invalid; the message names the file and the field."""


@dataclass(frozen=True)
class JudgeCategory:
    name: str
    action: str  # block | review
    reason: str
    examples: tuple[str, ...]
    # Held whenever the probability of this very category reaches this, whatever the overall risk: for a
    # category where a miss costs more than a look (sensitive topics).
    review_at: float | None = None


@dataclass(frozen=True)
class Judgement:
    """The judge on one sentence: the most likely risk category, the probability that the sentence is risky at
    all, and a category whose own `review_at` it reached (or None)."""

    category: str
    risk: float
    watched: str | None = None


@dataclass(frozen=True)
class JudgeData:
    categories: tuple[JudgeCategory, ...]
    clean: tuple[str, ...]
    block: float
    review: float
    digest: str

    @classmethod
    def load(cls, path: Path) -> JudgeData:
        text, raw = read_yaml(path, JudgeFileError)
        raw = raw or {}
        categories = []
        for name, spec in (raw.get("categories") or {}).items():
            if spec.get("action") not in ("block", "review"):
                raise JudgeFileError(f"{path}: categories.{name}.action must be block or review")
            examples = _sentences(spec.get("examples"), f"{path}: categories.{name}.examples")
            if len(examples) < 5:
                raise JudgeFileError(f"{path}: categories.{name}.examples needs at least 5 sentences")
            review_at = spec.get("review_at")
            if review_at is not None and not (isinstance(review_at, (int, float)) and 0 < review_at < 1):
                raise JudgeFileError(f"{path}: categories.{name}.review_at must be a probability between 0 and 1")
            categories.append(JudgeCategory(name, spec["action"], spec.get("reason", name), examples,
                                            None if review_at is None else float(review_at)))
        clean = _sentences(raw.get("clean"), f"{path}: clean")
        if len(clean) < 10:
            raise JudgeFileError(f"{path}: clean needs at least 10 sentences (hard negatives)")
        thresholds = raw.get("thresholds") or {}
        return cls(tuple(categories), clean, float(thresholds.get("block", 0.6)), float(thresholds.get("review", 0.4)),
                   hashlib.sha256(text.encode()).hexdigest()[:12])

    def labelled(self) -> tuple[list[str], list[str]]:
        texts = [e for c in self.categories for e in c.examples] + list(self.clean)
        labels = [c.name for c in self.categories for _ in c.examples] + [CLEAN] * len(self.clean)
        return texts, labels


def _sentences(values: object, where: str) -> tuple[str, ...]:
    """A list of sentences, or an error naming the entry: an unquoted sentence with ': ' in it reads as a mapping
    in YAML, and would otherwise train the judge on its repr."""
    if values is None:
        return ()
    if not isinstance(values, list):
        raise JudgeFileError(f"{where} must be a list of sentences")
    for index, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            hint = " (a sentence containing ': ' must be quoted)" if isinstance(value, dict) else ""
            raise JudgeFileError(f"{where}[{index}] must be a sentence, got {value!r}{hint}")
    return tuple(values)


RISKY_C = 16.0  # chosen by cross-validation on judge.yaml (eval/judge_eval.py), not on any test set


@dataclass
class Fitted:
    """Two heads on the same embeddings. `risky` (risky or clean) generalises best to kinds of risk nobody
    wrote examples for; `category` (each category and clean) separates the kinds it knows more sharply and
    names the category (for the reason and the action). The probability that a sentence is risky is the mean
    of the two: cross-validated on judge.yaml it ranks better than either alone (eval/judge_eval.py)."""

    risky: Any
    category: Any

    def risk(self, vectors: np.ndarray) -> np.ndarray:
        clean_column = list(self.category.classes_).index(CLEAN)
        by_category = 1.0 - self.category.predict_proba(vectors)[:, clean_column]
        return (self.risky.predict_proba(vectors)[:, 1] + by_category) / 2

    def named(self, vectors: np.ndarray) -> list[str]:
        """The most likely risk category, clean left out: the reason a risky sentence is given."""
        probabilities = self.category.predict_proba(vectors)
        probabilities[:, list(self.category.classes_).index(CLEAN)] = -1.0
        return [str(self.category.classes_[i]) for i in probabilities.argmax(axis=1)]


def fit(vectors: np.ndarray, labels: list[str], seed: int = 0) -> Fitted:
    from sklearn.linear_model import LogisticRegression

    labels_array = np.array(labels)
    risky = LogisticRegression(C=RISKY_C, max_iter=3000, class_weight="balanced", random_state=seed)
    risky.fit(vectors, (labels_array != CLEAN).astype(int))
    category = LogisticRegression(C=RISKY_C, max_iter=5000, class_weight="balanced", random_state=seed)
    category.fit(vectors, labels_array)
    return Fitted(risky, category)


class Judge:
    """Trained on first use (see the module's docstring); the fine-tuned encoder is cached on disk."""

    def __init__(self, data: JudgeData, embedder: Embedder, cache_dir: Path | None = None,
                 fine_tune: bool = True) -> None:
        self.data = data
        self.encoder = TunedEncoder("judge", embedder, *data.labelled(), cache_dir, tune=fine_tune)
        self._lock = threading.Lock()
        self._model: Any = None
        self.by_name = {c.name: c for c in data.categories}

    @property
    def version(self) -> str:
        """What the judge's verdicts depend on: its sentences, the base model and the recipe (the encoder's name),
        and the file (thresholds)."""
        return f"{self.encoder.name}+{self.data.digest}"

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.encoder.embed(texts)

    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                texts, labels = self.data.labelled()
                self._model = fit(self.encoder.embed(texts), labels)
            return self._model

    def scores(self, vectors: np.ndarray) -> list[Judgement]:
        """Per sentence vector: what the judge makes of it."""
        if not len(vectors):
            return []
        model = self.model()
        probabilities = model.category.predict_proba(vectors)
        column = {str(c): i for i, c in enumerate(model.category.classes_)}
        watched = [c for c in self.data.categories if c.review_at is not None]
        out = []
        for row, (name, risk) in enumerate(zip(model.named(vectors), model.risk(vectors))):
            hit = next((c.name for c in watched if probabilities[row, column[c.name]] >= c.review_at), None)
            out.append(Judgement(name, float(risk), hit))
        return out
