"""A sentence encoder fine-tuned on the team's labelled sentences, trained once and kept on disk.

Frozen sentence embeddings encode topic more than stance: "we guarantee your returns" and "we cannot guarantee
your returns" sit close, and so do an honest customer question and the same question with an instruction to
the model appended. Fine-tuning the library's embedding model (all-MiniLM-L6-v2) to tell the labels apart moves
them apart: the learned judge and the injection detector each train one (a classification head over the
sentence embedding, class-balanced; from under a minute to about five on two CPU cores, by the number of
sentences), then fit their logistic heads on its embeddings.

The encoder is saved under the cache folder, named by a hash of the sentences and labels it learned from, the
base model and the recipe: it trains once per machine and training data, and an edit to a file's comments or
thresholds does not retrain it. An embedder that cannot be fine-tuned (anything but a local sentence-transformers
folder) is used as it is (frozen).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from app.library.index import Embedder, LocalSentenceTransformer

# The fine-tuning recipe, chosen on the judge's sentences (eval/judge_eval.py); a change to any of these is a new
# RECIPE, so an encoder trained the old way is never reused.
RECIPE = "ft1"
EPOCHS, LEARNING_RATE, BATCH, SCALE = 7, 5e-5, 16, 20.0


def fine_tune(base: Path, texts: list[str], labels: list[str], out: Path, seed: int = 0) -> None:
    """Fine-tune the sentence encoder at `base` to classify `texts` into `labels` (class-balanced cross-entropy
    over a linear head on the normalised sentence embedding, scaled) and save the encoder, head dropped, to
    `out`. The folder appears whole or not at all, so concurrent processes never load half a model."""
    import torch
    import torch.nn.functional as F
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    torch.manual_seed(seed)
    shuffle = random.Random(seed).shuffle
    model = SentenceTransformer(str(base), device="cpu")
    classes = sorted(set(labels))
    targets = torch.tensor([classes.index(label) for label in labels])
    weight = len(labels) / (len(classes) * torch.bincount(targets).float())
    head = torch.nn.Linear(model.get_embedding_dimension(), len(classes))
    optimizer = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=LEARNING_RATE)
    model.train()
    order = list(range(len(texts)))
    for _ in range(EPOCHS):
        shuffle(order)
        for start in range(0, len(order), BATCH):
            batch = order[start:start + BATCH]
            embedded = model(model.preprocess([texts[i] for i in batch]))["sentence_embedding"]
            loss = F.cross_entropy(head(embedded * SCALE), targets[batch], weight=weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        model.save(str(staging))
        os.replace(staging, out)
    except OSError:
        if not (out / "modules.json").is_file():  # another process finished first: theirs is as good as ours
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class TunedEncoder:
    """An Embedder: `base` fine-tuned on (texts, labels) on first use, or loaded from `cache_dir`; with
    `tune=False` (the evals' "before fine-tuning"), `base` as it is."""

    def __init__(self, purpose: str, base: Embedder, texts: list[str], labels: list[str],
                 cache_dir: Path | None, tune: bool = True) -> None:
        self.base, self.texts, self.labels, self.cache_dir = base, texts, labels, cache_dir
        self.tunes = tune and isinstance(base, LocalSentenceTransformer)
        learned = hashlib.sha256(json.dumps([texts, labels]).encode()).hexdigest()[:12]
        base_name = getattr(base, "name", "embedder").replace("/", "_").replace("\\", "_")[-40:]
        self.name = f"{purpose}-{learned}-{base_name}-{RECIPE if self.tunes else 'frozen'}"
        self._lock = threading.Lock()
        self._encoder: Embedder | None = None

    def encoder(self) -> Embedder:
        with self._lock:
            if self._encoder is None:
                self._encoder = self._load_or_train() if self.tunes else self.base
            return self._encoder

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.encoder().embed(texts)

    def _load_or_train(self) -> Embedder:
        if self.cache_dir is None:  # nowhere to keep it: trained for this process only
            with tempfile.TemporaryDirectory(prefix="outreach-tuned-") as folder:
                encoder = self._trained(Path(folder) / self.name)
                encoder.embed(["load the weights before the folder goes"])
                return encoder
        folder = self.cache_dir / self.name
        return LocalSentenceTransformer(str(folder)) if (folder / "modules.json").is_file() else self._trained(folder)

    def _trained(self, folder: Path) -> LocalSentenceTransformer:
        fine_tune(self.base.path, self.texts, self.labels, folder)
        return LocalSentenceTransformer(str(folder))
