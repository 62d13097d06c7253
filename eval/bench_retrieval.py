"""Template search at 10k templates: Chroma (HNSW) against exact NumPy search on the same vectors.

    .venv/bin/python eval/bench_retrieval.py --templates 10000 --queries 300

Makes N template texts by recombining the starter library's sentences (real MiniLM embeddings, so
neighbours are realistic), measures embedding throughput, then for the same query vectors and the
same channel filter measures Chroma's latency (p50, p95) and its recall@10 against exact search.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from app.library.index import TemplateIndex, default_embedder
from app.library.templates import parse_file

ROOT = Path(__file__).resolve().parents[1]
CHANNELS = ["email", "sms", "call", "chat"]


def corpus(n: int, seed: int) -> tuple[list[str], list[str]]:
    specs = [parse_file(p) for p in sorted((ROOT / "script_library").glob("*.md")) if p.name != "README.md"]
    sentences = [s.strip() for spec in specs for s in spec.search_text().split(". ") if len(s.strip()) > 20]
    rng = random.Random(seed)
    texts = [". ".join(rng.sample(sentences, 4)) for _ in range(n)]
    return texts, [rng.choice(CHANNELS) for _ in range(n)]


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--templates", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    embedder = default_embedder()
    texts, channels = corpus(args.templates, seed=0)
    queries, query_channels = corpus(args.queries, seed=1)
    embedder.embed(texts[:32])  # load the model outside the timing
    started = time.perf_counter()
    vectors = embedder.embed(texts)
    embed_s = time.perf_counter() - started
    query_vectors = embedder.embed(queries)
    one_query = []
    for q in queries[:50]:
        t = time.perf_counter()
        embedder.embed([q])
        one_query.append(time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as folder:
        index = TemplateIndex.open(path=Path(folder), embedder=embedder)
        ids = [f"t{i:05d}" for i in range(len(texts))]
        started = time.perf_counter()
        for start in range(0, len(ids), 1000):
            index.collection.add(ids=ids[start:start + 1000], embeddings=vectors[start:start + 1000].tolist(),
                                 metadatas=[{"channel": c, "status": "approved"} for c in channels[start:start + 1000]])
        insert_s = time.perf_counter() - started
        chroma_times, exact_times, overlaps = [], [], []
        channel_array = np.array(channels)
        for vector, channel in zip(query_vectors, query_channels):
            t = time.perf_counter()
            found = index.collection.query(query_embeddings=[vector.tolist()], n_results=args.k,
                                           where={"$and": [{"status": "approved"}, {"channel": channel}]},
                                           include=["distances"])
            chroma_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            mask = channel_array == channel
            scores = vectors[mask] @ vector
            top = np.argpartition(-scores, args.k)[: args.k]
            exact = set(np.array(ids)[mask][top[np.argsort(-scores[top])]])
            exact_times.append(time.perf_counter() - t)
            overlaps.append(len(exact & set(found["ids"][0])) / args.k)
    chroma, numpy_exact = percentiles(chroma_times), percentiles(exact_times)
    print(json.dumps({
        "templates": len(texts), "queries": len(queries), "k": args.k,
        "embedding_texts_per_second": round(len(texts) / embed_s), "query_embedding": percentiles(one_query),
        "chroma_insert_seconds": round(insert_s, 2),
        "chroma_filtered_search": chroma, "numpy_exact_filtered_search": numpy_exact,
        "chroma_recall_at_k_vs_exact": round(float(np.mean(overlaps)), 4),
        "ratio_chroma_vs_numpy_p50": round(chroma["p50_ms"] / numpy_exact["p50_ms"], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
