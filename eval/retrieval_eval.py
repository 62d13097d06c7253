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
from pathlib import Path

import yaml

from app.library import service
from app.library.retrieval import RetrievalRequest, retrieve
from app.config import Settings
from app.services import Services

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    cases = yaml.safe_load((ROOT / "eval" / "retrieval_set.yaml").read_text())
    with tempfile.TemporaryDirectory() as folder:
        services = Services(Settings(_env_file=None, data_dir=Path(folder)))
        with services.unit_of_work() as session:
            service.import_directory(session=session, folder=ROOT / "script_library", actor="eval", now=services.now())
        index = services.index
        with services.read() as session:
            index.sync(service.live_versions(session=session))
        hits1 = hits3 = 0
        misses = []
        started = time.perf_counter()
        for case in cases:
            expected = set(case.pop("expected"))
            with services.read() as session:
                found = [r.id for r in retrieve(session=session, index=index, request=RetrievalRequest(**case, k=3))]
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
