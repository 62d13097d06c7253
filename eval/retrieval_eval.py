"""Recall@1 and recall@3 of template retrieval on the labelled set in eval/retrieval_set.yaml.

    .venv/bin/python eval/retrieval_eval.py [--show-misses]

Imports the starter library into a throw-away store and index, runs each request through the
same `retrieve` the product uses, and counts a hit when any expected id is in the top k.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from app.library import service
from app.library.index import TemplateIndex, default_embedder
from app.library.retrieval import RetrievalRequest, retrieve
from app.store.db import open_store

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    cases = yaml.safe_load((ROOT / "eval" / "retrieval_set.yaml").read_text())
    with tempfile.TemporaryDirectory() as folder:
        factory = open_store(f"sqlite:///{folder}/outreach.db")
        service.import_directory(factory, ROOT / "script_library", actor="eval", now=datetime.now(timezone.utc))
        index = TemplateIndex.open(path=Path(folder) / "chroma", embedder=default_embedder())
        index.sync(service.live_versions(factory))
        hits1 = hits3 = 0
        misses = []
        started = time.perf_counter()
        for case in cases:
            expected = set(case.pop("expected"))
            found = [r.id for r in retrieve(factory, index, RetrievalRequest(**case, k=3))]
            hits1 += bool(found[:1] and found[0] in expected)
            hits3 += bool(expected & set(found))
            if not expected & set(found[:1]):
                misses.append({"request": case, "expected": sorted(expected), "got": found})
        elapsed = time.perf_counter() - started
    result = {"queries": len(cases), "recall@1": round(hits1 / len(cases), 4), "recall@3": round(hits3 / len(cases), 4),
              "mean_query_ms": round(1000 * elapsed / len(cases), 1)}
    if args.show_misses:
        result["misses_at_1"] = misses
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
