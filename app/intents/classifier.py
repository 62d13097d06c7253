"""What a customer's message is about: an intent classifier with an out-of-scope outcome.

Sentence embeddings (the library's all-MiniLM-L6-v2, nothing downloaded) and a multinomial logistic head.
A message is out of scope when its in-scope score is low: half the best intent's probability, half how close
it lies to its five nearest training messages (on banking77 with 20 intents held out, at a cost of 5 % of the
in-scope messages this catches 0.55 of the unseen ones, the probability alone 0.45; eval/intents_eval.py). The
threshold is chosen on the training data alone (cross-validated), so it means the same thing on any data set:
- when the training data has out-of-scope examples, they are a class of their own and the threshold is the
  one that maximises in-scope accuracy plus out-of-scope recall on held-out folds;
- when it has none, the threshold gives up REJECT_SHARE (5 %) of held-out in-scope messages (the price of
  catching messages about something else).

`outreach intents eval` runs it on any labelled pair of files (CSV or JSON Lines).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.errors import InvalidInput
from app.library.index import Embedder

REJECT_SHARE = 0.05  # without out-of-scope training examples: the share of in-scope messages given up
MAX_TEXT_CHARS = 5000
MIN_EXAMPLES_PER_INTENT = 2


def read_labelled(path: Path, *, text_col: str, label_col: str, option: str) -> pd.DataFrame:
    """Text and label columns from a CSV or JSON Lines file; every problem names the file and the column."""
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file", field=option)
    try:
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            frame = pd.read_json(path, lines=True, dtype=False)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InvalidInput(f"{path}: cannot be read as {'JSON Lines' if path.suffix.lower() != '.csv' else 'CSV'} "
                           f"({str(exc).splitlines()[0]})", field=option) from None
    for column, flag in ((text_col, "--text-col"), (label_col, "--label-col")):
        if column not in frame.columns:
            raise InvalidInput(f"{path}: no column {column!r} (columns: {', '.join(map(str, frame.columns))})", field=flag)
    frame = frame[[text_col, label_col]].rename(columns={text_col: "text", label_col: "label"})
    frame["text"] = frame["text"].astype(str).str.strip()
    frame["label"] = frame["label"].astype(str).str.strip()
    empty = frame.index[(frame["text"] == "") | (frame["label"] == "")]
    if len(empty):
        raise InvalidInput(f"{path}: row {int(empty[0]) + 1} has an empty {text_col!r} or {label_col!r}", field=option)
    if frame.empty:
        raise InvalidInput(f"{path}: has no rows", field=option)
    frame["text"] = frame["text"].str.slice(0, MAX_TEXT_CHARS)
    return frame.reset_index(drop=True)


NEIGHBOURS = 5


@dataclass
class Scored:
    """Per message: the best in-scope intent, its probability, the in-scope score, and whether an explicit
    out-of-scope class (when trained with one) beats the best intent."""

    intent: np.ndarray
    confidence: np.ndarray
    scope: np.ndarray
    oos_wins: np.ndarray
    second: np.ndarray  # the next most likely class (the intent it nearly was)
    second_confidence: np.ndarray  # its probability


def nearest_similarity(reference: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Mean cosine similarity of each vector to its nearest training messages. Multiplied in torch, whose
    threads just embedded the text: numpy's BLAS threads contending with them tripled the p95 latency."""
    import torch

    with torch.no_grad():
        similarity = (torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
                      @ torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float32)).T)
        k = min(NEIGHBOURS, similarity.shape[1])
        return similarity.topk(k, dim=1).values.mean(dim=1).numpy()


def score(head: Any, reference: np.ndarray, vectors: np.ndarray, oos_label: str) -> Scored:
    probabilities, classes = head.predict_proba(vectors), [str(c) for c in head.classes_]
    in_scope = np.array([c != oos_label for c in classes])
    best = np.where(in_scope, probabilities, -1).argmax(axis=1)
    confidence = probabilities[np.arange(len(vectors)), best]
    nearest = nearest_similarity(reference, vectors)
    oos_wins = (probabilities[:, classes.index(oos_label)] > confidence) if oos_label in classes \
        else np.zeros(len(vectors), dtype=bool)
    second = np.argsort(probabilities, axis=1)[:, -2] if len(classes) > 1 else best
    names = np.array(classes, dtype=object)
    return Scored(names[best], confidence, 0.5 * confidence + (nearest - 0.5), oos_wins, names[second],
                  probabilities[np.arange(len(vectors)), second])


@dataclass
class IntentClassifier:
    head: Any
    reference: np.ndarray  # the in-scope training messages' vectors, for the nearest-neighbour half of the score
    threshold: float
    oos_label: str
    embedder: Embedder

    def scored(self, texts: list[str]) -> Scored:
        return score(self.head, self.reference, self.embedder.embed(texts), self.oos_label)

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        """Per text: the intent (or the out-of-scope label) and the probability of the best in-scope intent."""
        s = self.scored(texts)
        out_of_scope = (s.scope < self.threshold) | s.oos_wins
        return [(self.oos_label if o else str(i), float(c)) for i, c, o in zip(s.intent, s.confidence, out_of_scope)]


def _head(seed: int = 0) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=20.0, max_iter=3000, random_state=seed)


def choose_threshold(vectors: np.ndarray, labels: np.ndarray, oos_label: str, seed: int = 0) -> float:
    from sklearn.model_selection import StratifiedKFold

    counts = pd.Series(labels).value_counts()
    folds = int(min(5, counts.min())) if counts.min() >= 2 else 0
    if folds < 2:
        return 0.0
    is_oos = labels == oos_label
    held_scope = np.zeros(len(labels))
    held_pred = np.empty(len(labels), dtype=object)
    held_oos_wins = np.zeros(len(labels), dtype=bool)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(vectors, labels):
        head = _head(seed).fit(vectors[train], labels[train])
        s = score(head, vectors[train][~is_oos[train]], vectors[test], oos_label)
        held_scope[test], held_pred[test], held_oos_wins[test] = s.scope, s.intent, s.oos_wins
    if not is_oos.any():
        return float(np.quantile(held_scope, REJECT_SHARE))
    best_t, best_value = float(held_scope.min()), -1.0
    for t in np.quantile(held_scope, np.linspace(0.0, 0.6, 61)):
        rejected = (held_scope < t) | held_oos_wins
        value = (~rejected & (held_pred == labels))[~is_oos].mean() + rejected[is_oos].mean()
        if value > best_value:
            best_t, best_value = float(t), float(value)
    return best_t


def train(frame: pd.DataFrame, embedder: Embedder, *, oos_label: str, seed: int = 0) -> IntentClassifier:
    counts = frame["label"].value_counts()
    thin = counts[counts < MIN_EXAMPLES_PER_INTENT]
    if len(thin):
        raise InvalidInput(f"intent {thin.index[0]!r} has {int(thin.iloc[0])} example(s); "
                           f"at least {MIN_EXAMPLES_PER_INTENT} per intent are needed", field="--train")
    if len(counts[counts.index != oos_label]) < 2:
        raise InvalidInput("the training file needs at least two in-scope intents", field="--train")
    vectors, labels = embedder.embed(list(frame["text"])), frame["label"].to_numpy()
    threshold = choose_threshold(vectors, labels, oos_label, seed)
    return IntentClassifier(_head(seed).fit(vectors, labels), vectors[labels != oos_label], threshold, oos_label,
                            embedder)


def evaluate(train_path: Path, test_path: Path, embedder: Embedder, *, text_col: str = "text",
             label_col: str = "intent", oos_label: str = "oos", seed: int = 0) -> dict[str, Any]:
    from sklearn.metrics import f1_score

    train_frame = read_labelled(train_path, text_col=text_col, label_col=label_col, option="--train")
    test_frame = read_labelled(test_path, text_col=text_col, label_col=label_col, option="--test")
    started = time.perf_counter()
    model = train(train_frame, embedder, oos_label=oos_label, seed=seed)
    train_s = time.perf_counter() - started
    truth = test_frame["label"].to_numpy()
    scored = model.scored(list(test_frame["text"]))
    predicted = np.where((scored.scope < model.threshold) | scored.oos_wins, oos_label, scored.intent)
    top1 = scored.intent  # the best in-scope intent, never out of scope: comparable with closed-set accuracies
    in_scope, oos = truth != oos_label, truth == oos_label
    unknown = sorted(set(truth[in_scope]) - set(train_frame["label"]))
    # Latency as a message arrives: one at a time, embedding included.
    sample = list(test_frame["text"].sample(min(200, len(test_frame)), random_state=seed))
    timings = []
    for text in sample:
        t0 = time.perf_counter()
        model.predict([text])
        timings.append((time.perf_counter() - t0) * 1000)
    return {
        "accuracy": float((predicted == truth).mean()),
        "in_scope_accuracy": float((predicted[in_scope] == truth[in_scope]).mean()) if in_scope.any() else None,
        "oos_recall": float((predicted[oos] == oos_label).mean()) if oos.any() else None,
        "in_scope_wrongly_oos": float((predicted[in_scope] == oos_label).mean()) if in_scope.any() else None,
        "in_scope_top1_accuracy": float((top1[in_scope] == truth[in_scope]).mean()) if in_scope.any() else None,
        "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        "n_train": int(len(train_frame)), "n_test": int(len(test_frame)),
        "intents": int(train_frame["label"].nunique() - (oos_label in set(train_frame["label"]))),
        "oos_threshold": round(model.threshold, 4),
        "test_intents_unseen_in_training": unknown[:20],
        "p95_ms": float(np.percentile(timings, 95)), "p50_ms": float(np.percentile(timings, 50)),
        "train_seconds": round(train_s, 1),
        "model": f"{getattr(embedder, 'name', 'embeddings')} + logistic regression",
    }
