"""Guardrail quality and speed on the labelled set (eval/guardrail_set.jsonl, from make_guardrail_set.py).

    .venv/bin/python eval/guardrail_eval.py                                   # the tuning set
    .venv/bin/python eval/guardrail_eval.py --set eval/guardrail_holdout.jsonl --out eval/reports/guardrail_holdout.json

Reports recall on must_block (blocked), the share of must_block and must_review held back (blocked or
needing approval), the false-block and false-hold rates on clean messages, per validator (did the
expected validator fire; how often does it fire on clean text), and p50 / p95 latency of a full review.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
from pathlib import Path

import numpy as np

from app.library import service as library
from app.review.batch import check_lines
from app.config import Settings
from app.services import Services

ROOT = Path(__file__).resolve().parents[1]


def _grouped(results: list, labelled: dict) -> dict[str, list]:
    groups: dict[str, list] = collections.defaultdict(list)
    for r in results:
        groups[labelled[r["id"]]["expect_validator"] or "(clean)"].append(r)
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=ROOT / "eval" / "guardrail_set.jsonl")
    parser.add_argument("--policy", type=Path, default=ROOT / "guardrails")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "reports" / "guardrail_eval.json")
    args = parser.parse_args()
    lines = args.set.read_text().splitlines()
    labelled = {json.loads(line)["id"]: json.loads(line) for line in lines if line.strip()}
    with tempfile.TemporaryDirectory() as tmp:
        services = Services(Settings(_env_file=None, data_dir=Path(tmp), model_cache_dir=ROOT / "data" / "cache", guardrails_dir=args.policy,
                                     library_dir=ROOT / "script_library"))
        with services.unit_of_work() as session:
            library.import_directory(session=session, folder=ROOT / "script_library", actor="eval", now=services.now())
        reviewer = services.reviewer
        reviewer.warm()
        with services.read() as session:
            results = list(check_lines(lines, reviewer, session=session, profile=services.profile))
    errors = [r for r in results if "error" in r]
    if errors:
        raise SystemExit(f"{len(errors)} lines could not be checked, first: {errors[0]}")
    by_label: dict[str, list] = collections.defaultdict(list)
    for r in results:
        by_label[labelled[r["id"]]["label"]].append(r)
    share = lambda rows, cond: round(sum(1 for r in rows if cond(r)) / len(rows), 3) if rows else None  # noqa: E731
    fired = lambda r: {f["validator"] for f in r["findings"]}  # noqa: E731
    per_validator = {}
    for name in reviewer.validators:
        expected = [r for r in results if labelled[r["id"]]["expect_validator"] == name]
        per_validator[name] = {"expected_in": len(expected), "caught": share(expected, lambda r: name in fired(r)),
                               "fires_on_clean": share(by_label["clean"], lambda r: name in fired(r))}
    sensitive = [r for r in results if labelled[r["id"]]["expect_validator"] == "routing"]
    misses = [{"id": r["id"], "verdict": r["verdict"], "text": labelled[r["id"]]["text"][:160]}
              for r in by_label["must_block"] + by_label["must_review"] if r["verdict"] == "ready"]
    false_blocks = [{"id": r["id"], "findings": [f["reason"] for f in r["findings"]]}
                    for r in by_label["clean"] if r["verdict"] != "ready"]
    latency = np.array([r["latency_ms"] for r in results])
    report = {
        "messages": len(results), "labels": {k: len(v) for k, v in by_label.items()},
        "policy_version": results[0]["policy_version"],
        "must_block_recall_blocked": share(by_label["must_block"], lambda r: r["verdict"] == "blocked"),
        "must_block_held": share(by_label["must_block"], lambda r: r["verdict"] != "ready"),
        "must_review_held": share(by_label["must_review"], lambda r: r["verdict"] != "ready"),
        "clean_false_block_rate": share(by_label["clean"], lambda r: r["verdict"] == "blocked"),
        "clean_false_hold_rate": share(by_label["clean"], lambda r: r["verdict"] != "ready"),
        "sensitive_customers_held": share(sensitive, lambda r: r["verdict"] == "needs_approval"),
        "per_validator": per_validator,
        "latency_ms": {"p50": round(float(np.percentile(latency, 50)), 1),
                       "p95": round(float(np.percentile(latency, 95)), 1), "max": round(float(latency.max()), 1)},
        "by_expected": {expect: {"messages": len(rows), "blocked": share(rows, lambda r: r["verdict"] == "blocked"),
                                 "held": share(rows, lambda r: r["verdict"] != "ready")}
                        for expect, rows in sorted(_grouped(results, labelled).items())},
        "missed": misses, "clean_held": false_blocks,
    }
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(json.dumps({k: v for k, v in report.items() if k not in ("missed", "clean_held")}, indent=2))
    print(f"missed: {len(misses)}, clean held: {len(false_blocks)}; details in {args.out}")


if __name__ == "__main__":
    main()
