"""Customer text that tries to instruct the model: detected, kept out of the prompt, and never echoed.

A logistic regression on the embeddings of an encoder fine-tuned on the team's examples in
`guardrails/injection.yaml` (instruction-like and ordinary customer messages; `app/review/tuned.py`), plus the
policy's literal injection phrases. `eval/injection_eval.py` measures it on the public deepset prompt-injection set, which it
is never trained on.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from app.library.index import Embedder
from app.review.tuned import TunedEncoder

# Words that carry an instruction to a model; a customer message without any of them is not read as one.
CUES = re.compile(r"\b(ignore|disregard|forget|override|pretend|act as|acting as|you are now|from now on|now you|"
                  r"new (task|rule|instruction|role)|task|roles?|imagine|hypothetical\w*|simulate|system|assistant|"
                  r"prompt|instructions?|repeat|print|output|reveal|debug|rules?|jailbreak|unrestricted|"
                  r"(say|write|answer|respond|reply) (only|with|that|in)|"
                  r"vergiss|vergessen|ignorier\w*|anweisung\w*|aufgabe|ab jetzt|tu so|stell dir vor|regeln|"
                  r"oubliez|ignorez|ignora|olvida)\b", re.I)


# A text without any instruction word is flagged only when the model is this sure: ordinary customer questions
# seldom carry one, and most injections do. Measured (eval/injection_eval.py): on the deepset set the gate alone
# (cue required) caught 40 % at 99 % precision; this bar 59 % at 98 %; on banking77's 3,080 real customer questions
# it flags 0.2 %.
UNCUED_THRESHOLD = 0.7


class InjectionDetector:
    def __init__(self, instructions: list[str], ordinary: list[str], phrases: list[str], embedder: Embedder,
                 threshold: float = 0.5, cache_dir: Path | None = None, fine_tune: bool = True) -> None:
        self.instructions, self.ordinary = instructions, ordinary
        self.phrases = [p.lower() for p in phrases]
        self.threshold = threshold
        self.encoder = TunedEncoder("injection", embedder, instructions + ordinary,
                                     ["instruction"] * len(instructions) + ["ordinary"] * len(ordinary), cache_dir,
                                     tune=fine_tune)
        self._lock = threading.Lock()
        self._model: Any = None

    @classmethod
    def from_folder(cls, folder: Path, embedder: Embedder, cache_dir: Path | None = None,
                    fine_tune: bool = True) -> InjectionDetector | None:
        data = yaml.safe_load((folder / "injection.yaml").read_text(encoding="utf-8")) or {}
        examples = data.get("customer_text") or {}
        if not examples.get("instructions") or not examples.get("ordinary"):
            return None
        return cls(list(examples["instructions"]), list(examples["ordinary"]), list(data.get("phrases") or []),
                   embedder, cache_dir=cache_dir, fine_tune=fine_tune)

    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                from sklearn.linear_model import LogisticRegression

                texts = self.instructions + self.ordinary
                labels = [1] * len(self.instructions) + [0] * len(self.ordinary)
                self._model = LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced").fit(
                    self.encoder.embed(texts), labels)
            return self._model

    def scores(self, texts: list[str]) -> np.ndarray:
        """The probability that each text is an attempt to instruct the model."""
        if not texts:
            return np.zeros(0)
        learned = self.model().predict_proba(self.encoder.embed(texts))[:, 1]
        literal = np.array([any(p in t.lower() for p in self.phrases) for t in texts], dtype=float)
        cued = np.array([bool(CUES.search(t)) for t in texts])
        return np.maximum(np.where(cued | (learned >= UNCUED_THRESHOLD), learned, 0.0), literal)

    def flags(self, texts: list[str]) -> list[bool]:
        return [bool(s >= self.threshold) for s in self.scores(texts)]
