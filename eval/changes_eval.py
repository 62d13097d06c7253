"""Change-request triage on a labelled set: type accuracy, extraction accuracy, risky-request recall, false reviews.

    .venv/bin/python eval/changes_eval.py [--set eval/changes_set.jsonl] [--json]
    .venv/bin/python eval/changes_eval.py --banking77 ../shared/data/banking77/test.csv

Each line of the set is a request for `outreach changes triage` plus `expect`: `types` (the primary first),
`values` (normalised: E.164 phone, lower-case email, IBAN and VAT without spaces, seat count) and `risky`.
- type accuracy: the primary type right; all types: the set of changes exactly right;
- extraction: of the expected values, the share found with the right value;
- risky recall: risky requests routed to `review` (a person); false reviews: other requests routed there
  (name changes and ownership transfers always go to a person by policy, and count here).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def triage_model():
    from app.config import Settings
    from app.services import Services

    services = Services(Settings(_env_file=None, data_dir=Path("/tmp/changes-eval"), library_dir=ROOT / "script_library",
                                 guardrails_dir=ROOT / "guardrails"))
    triage = services.changes
    triage.model()
    return triage


# banking77's intents that ask to change the customer's records, and the types each may be read as; every other
# banking77 intent (card arrival, a transfer to cancel, a PIN to change, a top-up ...) asks for no change to them.
BANKING77_CHANGES = {"terminate_account": {"cancellation", "data_deletion"},
                     "edit_personal_details": {"contact_phone", "contact_email", "postal_address", "name_change"}}


def run_banking77(path: Path) -> dict:
    """On banking77's test split (never used in training): are its change intents read as changes of the
    right kind, and how often is one of its 75 other intents read as a change?"""
    import pandas as pd

    from app.changes.triage import ChangeRequest

    triage = triage_model()
    rows = pd.read_csv(path)
    right = {label: [0, 0] for label in BANKING77_CHANGES}
    false_change, confused = 0, {}
    others = 0
    for n, row in enumerate(rows.itertuples()):
        result = triage.triage(ChangeRequest(id=f"b{n}", channel="chat", text=row.text))
        if row.category in BANKING77_CHANGES:
            right[row.category][0] += 1
            right[row.category][1] += result.change_type in BANKING77_CHANGES[row.category]
        else:
            others += 1
            if result.change_type != "not_a_change":
                false_change += 1
                key = f"{row.category} -> {result.change_type}"
                confused[key] = confused.get(key, 0) + 1
    return {"set": str(path), "change_intents": {k: {"n": n, "read_right": round(r / n, 3)}
                                                  for k, (n, r) in right.items()},
            "other_intents": others, "false_change_rate": round(false_change / others, 3),
            "top_confusions": dict(sorted(confused.items(), key=lambda kv: -kv[1])[:10]),
            "taxonomy_version": triage.taxonomy.version}


def run(path: Path) -> dict:
    from app.changes.triage import ChangeRequest

    triage = triage_model()
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    primary = exact = values_right = values_total = risky = caught = calm = false_review = 0
    misses, timings = [], []
    for line in lines:
        expect = line["expect"]
        t0 = time.perf_counter()
        result = triage.triage(ChangeRequest.model_validate(line))
        timings.append((time.perf_counter() - t0) * 1000)
        types = [c["type"] for c in result.changes] or [result.change_type]
        primary += result.change_type == expect["types"][0]
        exact += set(types) == set(expect["types"])
        for kind, value in expect["values"].items():
            values_total += 1
            values_right += str(result.values.get(kind, "")).lower() == str(value).lower()
        if expect["risky"]:
            risky += 1
            caught += result.route == "review"
        else:
            calm += 1
            false_review += result.route == "review"
        if set(types) != set(expect["types"]) or (expect["risky"] != (result.route == "review")):
            misses.append(f"{line['id']}: expected {expect['types']} risky={expect['risky']}, got {types} "
                          f"{result.route} {result.risk['signals']}")
    n = len(lines)
    return {"set": str(path), "requests": n, "type_accuracy": round(primary / n, 3), "all_types_exact": round(exact / n, 3),
            "extraction_accuracy": round(values_right / max(values_total, 1), 3), "values": values_total,
            "risky_recall": round(caught / max(risky, 1), 3), "risky": risky,
            "false_review_rate": round(false_review / max(calm, 1), 3),
            "p50_ms": round(float(np.percentile(timings, 50)), 1), "p95_ms": round(float(np.percentile(timings, 95)), 1),
            "taxonomy_version": triage.taxonomy.version, "misses": misses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=ROOT / "eval" / "changes_set.jsonl")
    parser.add_argument("--banking77", type=Path, default=None,
                        help="instead: banking77's test.csv (../shared/data/banking77/test.csv)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run_banking77(args.banking77) if args.banking77 else run(args.set)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        if key == "misses":
            print("misses:")
            for miss in value:
                print("  " + miss)
        else:
            print(f"{key:>20}: {value}")


if __name__ == "__main__":
    main()
