"""Where a card request's time goes, route by route: the served app in this process, one request at a time.

    .venv/bin/python eval/profile_cards.py [--customers 2000] [--requests 100]

Prepares the load test's store (seeded history, cards drafted from the templates, one user per rep), builds
the app as `outreach serve` does (no background work, so nothing else runs), and for each card route:
  * times `--requests` requests end to end through Starlette's test client (wall ms, p50 / p95);
  * profiles the same requests with yappi (CPU time, every thread: FastAPI runs these routes in its thread
    pool, which cProfile cannot see) and reports the CPU milliseconds per request spent in named parts: the
    signed-in user (token hash and lookup), the route's reads and writes (the service call), FastAPI's
    response handling (validating and serialising the returned models), the guardrails (an edited adopt),
    SQL execution and ORM row loading inside them; and the ten functions with the most time of their own.
The parts overlap where one calls another (SQL runs inside the service call); the total is all CPU of the
process during the requests, the test client's included. Writes eval/reports/profile_cards.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import yappi

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "eval"))

# (label, file suffix, function name): cumulative time of these functions, summed over the profile.
PARTS = [
    ("signed-in user", "app/http/deps.py", "current_user"),
    ("service call", "app/services.py", "query"),
    ("service call", "app/services.py", "write"),
    ("response validation + serialisation", "fastapi/routing.py", "serialize_response"),
    ("JSON rendering", "starlette/responses.py", "render"),
    ("guardrails", "app/review/service.py", "assess"),
    ("SQL execution", "sqlalchemy/engine/base.py", "_execute_context"),
    ("ORM row loading", "sqlalchemy/orm/loading.py", "instances"),
]


def part_times(stats: list) -> dict[str, float]:
    """Cumulative CPU seconds of the named parts. A function that calls itself (or is re-entered by a
    nested part of the same label) is counted once per outermost call by yappi's ttot."""
    found: dict[str, float] = {}
    for stat in stats:
        for label, suffix, function in PARTS:
            if stat.name.split(".")[-1] == function and stat.module.endswith(suffix):
                found[label] = found.get(label, 0.0) + stat.ttot
    return found


def own_time_top(stats: list, requests: int, n: int = 10) -> list[dict]:
    rows = sorted(stats, key=lambda stat: -stat.tsub)[:n]
    return [{"function": f"{Path(stat.module).name}:{stat.lineno} {stat.name}",
             "own_ms_per_request": round(stat.tsub * 1000 / requests, 3), "calls": stat.ncall} for stat in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "reports" / "profile_cards.json")
    args = parser.parse_args()
    yappi.set_clock_type("cpu")
    folder = Path(tempfile.mkdtemp(prefix="outreach-profile-"))
    # Drafts from the templates (the model endpoint is a closed port, so each draft falls back at once, and is
    # still reviewed): the routes read and write the same rows whoever wrote the text, and preparing a thousand
    # model-written drafts would take an hour here.
    env = {"DATA_DIR": str(folder), "DATABASE_URL": f"sqlite:///{folder}/outreach.db", "SERVE_BACKGROUND_WORK": "false",
           "MODEL_CACHE_DIR": os.environ.get("MODEL_CACHE_DIR", str(ROOT / "data" / "cache")),
           "LLM_BASE_URL": "http://127.0.0.1:9/v1", "LLM_MODEL": "none", "LLM_MAX_RETRIES": "0"}
    from load_test import prepare

    tokens = prepare(env, reps=20, customers=args.customers)
    from fastapi.testclient import TestClient

    from app.config import get_settings
    from app.main import create_app
    from app.services import Services

    get_settings.cache_clear()
    services = Services(get_settings())
    statements: list[str] = []
    from sqlalchemy import event

    event.listen(services.store.kw["bind"], "before_cursor_execute",
                 lambda _conn, _cursor, statement, *_: statements.append(" ".join(statement.split())[:160]))
    rng = random.Random(0)
    reps = [t for name, t in tokens.items() if name != "load-crm"]
    report: dict = {"customers": args.customers, "requests_per_route": args.requests, "routes": {}}
    with TestClient(create_app(services)) as client:
        def auth(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        def open_cards(token: str) -> list[dict]:
            return client.get("/api/cards", params={"status": "open", "limit": 20}, headers=auth(token)).json()

        # Each route gets fresh cards of its own where the action changes the card (adopt, then send, then outcome).
        pool = {t: open_cards(t) for t in reps}
        work = [(t, c["id"]) for t, cards in pool.items() for c in cards if c["draft"] is not None]
        rng.shuffle(work)
        needed = 3 * args.requests + args.requests
        if len(work) < needed:
            raise SystemExit(f"only {len(work)} drafted open cards for {needed} actions: raise --customers")
        adopt_on, reject_on = work[:args.requests], work[args.requests:2 * args.requests]

        def action(kind: str, body: dict):  # noqa: ANN202
            def go(token: str, card: str) -> int:
                return client.post(f"/api/cards/{card}/{kind}", json=body,
                                   headers={**auth(token), "Idempotency-Key": uuid.uuid4().hex}).status_code
            return go

        routes = [
            ("GET /api/cards?limit=20", [(t, None) for t in (reps * args.requests)[:args.requests]],
             lambda t, _c: client.get("/api/cards", params={"status": "open", "limit": 20}, headers=auth(t)).status_code),
            ("GET /api/cards/{id}", work[:args.requests],
             lambda t, c: client.get(f"/api/cards/{c}", headers=auth(t)).status_code),
            ("POST /api/cards/{id}/adopt", adopt_on, action("adopt", {})),
            ("POST /api/cards/{id}/send", adopt_on, action("send", {})),
            ("POST /api/cards/{id}/outcome", adopt_on, action("outcome", {"outcome": "replied"})),
            ("POST /api/cards/{id}/reject", reject_on, action("reject", {"reason": "bad_timing"})),
        ]
        for route, calls, request in routes:
            # Half the calls timed, the other half profiled (an action cannot run twice on one card).
            timed, profiled = calls[: len(calls) // 2], calls[len(calls) // 2:]
            if route.startswith("GET"):
                timed = profiled = calls
            latencies, statuses = [], {}
            for token, card in timed:
                started = time.perf_counter()
                status = request(token, card)
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
            statements.clear()
            yappi.clear_stats()
            yappi.start(builtins=True)
            for token, card in profiled:
                statuses_p = request(token, card)
                statuses[statuses_p] = statuses.get(statuses_p, 0) + 1
            yappi.stop()
            stats = list(yappi.get_func_stats())
            total = sum(stat.tsub for stat in stats)
            parts = part_times(stats)
            report["routes"][route] = {
                "status": {str(k): v for k, v in sorted(statuses.items())},
                "wall_ms": {"p50": round(float(np.percentile(latencies, 50)), 2),
                            "p95": round(float(np.percentile(latencies, 95)), 2)},
                "cpu_ms_per_request": round(total * 1000 / len(profiled), 2),
                "sql_statements_per_request": round(len(statements) / len(profiled), 1),
                "sql_statements_of_one_request": statements[: round(len(statements) / len(profiled))],
                "parts_cpu_ms_per_request": {label: round(seconds * 1000 / len(profiled), 2)
                                             for label, seconds in sorted(parts.items(), key=lambda kv: -kv[1])},
                "own_time_top": own_time_top(stats, len(profiled)),
            }
            print(route, json.dumps(report["routes"][route]["wall_ms"]), report["routes"][route]["cpu_ms_per_request"],
                  report["routes"][route]["parts_cpu_ms_per_request"], flush=True)
    services.close()
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
