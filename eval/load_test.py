"""Load on the served product over loopback: 200 concurrent reps reading cards and posting actions.

    .venv/bin/python eval/load_test.py --reps 200 --seconds 120 [--kill-at 60] [--database-url URL]

Prepares a store (seeded synthetic history, rule-based decisions, cards drafted from the templates),
creates one user per simulated rep (rep ids shared, so reps of a team touch the same cards), starts
`outreach serve` as a separate process, and runs the reps: each lists its cards, opens one, and posts
adopt / send / outcome / reject with a fresh Idempotency-Key, retrying a failed request with the same
key, as a real client would. With `--kill-at`, the server is killed (SIGKILL) mid-load and restarted.
Reported: requests, throughput, p50 / p95 / p99 latency, status counts (any 5xx is a failure), and
that every acknowledged action is in the store exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(env: dict[str, str], reps: int, customers: int) -> dict[str, str]:
    """Store, cards and users; returns a token per simulated rep."""
    os.environ.update(env)
    from app.cards import service as cards
    from app.config import get_settings
    from app.data.synthetic import default_now, generate, load_into_store
    from app.library import service as library
    from app.models.scoring import score_all
    from app.services import Services
    from app.users import service as users
    from app.worker import draft_cards

    get_settings.cache_clear()
    services = Services(get_settings())
    settings, factory, now = services.settings, services.store, services.now()
    load_into_store(generate(customers=customers, seed=0, now=default_now(now)), factory)
    with services.unit_of_work() as session:
        library.import_directory(session=session, folder=ROOT / "script_library", actor="load", now=now)
    with services.read() as session:
        services.index.sync(library.live_versions(session=session))
    summary = score_all(factory, now=now, policy=services.contact_policy, reasons=services.reason_table,
                        challenger_share=0.0)
    with services.unit_of_work() as session:
        cards.build_cards(session=session, run_id=summary.run_id, now=now, daily_cap=settings.card_daily_cap,
                          sla_hours=24)
    drafted = draft_cards(services, limit=10_000)
    print(f"prepared {customers} customers, {drafted} drafted cards", flush=True)
    tokens = {}
    with services.unit_of_work() as session:
        for i in range(reps):
            rep_id = f"rep-{i % 20 + 1:02d}"
            team = f"team-{'abcd'[(i % 20) // 5]}"
            name = f"load-{i:03d}"
            users.add(session=session, name=name, role="rep", now=now, rep_id=rep_id, team=team)
            tokens[name] = users.issue_token(session=session, name=name, now=now, ttl_days=1)
    return tokens


def serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)], cwd=ROOT,
                               env={**os.environ, **env}, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/login", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"server did not start; see {log}")


class Stats:
    def __init__(self) -> None:
        self.latency: list[float] = []
        self.status: collections.Counter = collections.Counter()
        self.acknowledged: dict[str, str] = {}  # idempotency key -> card id of every 2xx action
        self.errors: collections.Counter = collections.Counter()


async def rep_loop(base: str, token: str, until: float, stats: Stats, rng: random.Random) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        async def call(method: str, url: str, **kw) -> httpx.Response | None:
            for _attempt in range(20):  # a client retries with the same key until the server answers
                started = time.perf_counter()
                try:
                    response = await client.request(method, url, **kw)
                except httpx.TransportError as exc:
                    stats.errors[type(exc).__name__] += 1
                    await asyncio.sleep(0.5)
                    continue
                stats.latency.append(time.perf_counter() - started)
                stats.status[response.status_code] += 1
                return response
            return None

        while time.monotonic() < until:
            listing = await call("GET", "/api/cards", params={"status": "open", "limit": 20})
            if listing is None or listing.status_code != 200 or not listing.json():
                await asyncio.sleep(0.2)
                continue
            card = rng.choice(listing.json())
            await call("GET", f"/api/cards/{card['id']}")
            steps = [("adopt", {}), ("send", {}), ("outcome", {"outcome": rng.choice(["replied", "no_answer", "converted"])})]
            if rng.random() < 0.25:
                steps = [("reject", {"reason": "bad_timing", "note": "load test"})]
            for kind, body in steps:
                key = uuid.uuid4().hex
                response = await call("POST", f"/api/cards/{card['id']}/{kind}", json=body,
                                      headers={"Idempotency-Key": key})
                if response is not None and response.status_code == 200:
                    stats.acknowledged[key] = card["id"]
                    if rng.random() < 0.1:  # a retried request: must not be recorded twice
                        again = await call("POST", f"/api/cards/{card['id']}/{kind}", json=body,
                                           headers={"Idempotency-Key": key})
                        assert again is None or again.status_code == 200, again.text
                else:
                    break


async def run_load(base: str, tokens: dict[str, str], seconds: float, stats: Stats) -> None:
    until = time.monotonic() + seconds
    await asyncio.gather(*(rep_loop(base, t, until, stats, random.Random(i)) for i, t in enumerate(tokens.values())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--kill-at", type=float, help="Kill the server (SIGKILL) this many seconds in, then restart it.")
    parser.add_argument("--database-url", help="Default: SQLite in a temporary folder.")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "reports" / "load_test.json")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="outreach-load-"))
    env = {"DATA_DIR": str(folder), "LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1", "LLM_MODEL": "offline",
           "LLM_MAX_RETRIES": "0", "CARD_DAILY_CAP": "40", "WORKER_INTERVAL_S": "3600"}
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    tokens = prepare(env, args.reps, args.customers)
    port = free_port()
    log = folder / "server.log"
    server = serve(env, port, log)
    stats = Stats()
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    killed_at = None

    async def orchestrate() -> None:
        nonlocal server, killed_at
        load = asyncio.create_task(run_load(base, tokens, args.seconds, stats))
        if args.kill_at:
            await asyncio.sleep(args.kill_at)
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
            killed_at = time.perf_counter() - started
            server = await asyncio.to_thread(serve, env, port, log)
        await load

    asyncio.run(orchestrate())
    elapsed = time.perf_counter() - started
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)

    from app.audit import service as audit
    from app.cards.tables import CardAction
    from app.config import get_settings
    from app.services import Services

    get_settings.cache_clear()
    services = Services(get_settings())
    with services.read() as session:
        stored = dict(session.execute(select(CardAction.idempotency_key, CardAction.card_id)).all())
        total_actions = session.scalar(select(func.count()).select_from(CardAction))
        chain = audit.verify(session=session).__dict__
    lost = [k for k in stats.acknowledged if k not in stored]
    wrong = [k for k, c in stats.acknowledged.items() if k in stored and stored[k] != c]
    ms = np.array(stats.latency) * 1000
    server_errors = sum(n for s, n in stats.status.items() if s >= 500)
    report = {
        "reps": args.reps, "seconds": round(elapsed, 1), "requests": int(len(ms)),
        "throughput_rps": round(len(ms) / elapsed, 1),
        "latency_ms": {q: round(float(np.percentile(ms, int(q[1:]))), 1) for q in ("p50", "p95", "p99")},
        "status": {str(k): v for k, v in sorted(stats.status.items())}, "server_errors_5xx": server_errors,
        "transport_errors": dict(stats.errors), "killed_at_s": round(killed_at, 1) if killed_at else None,
        "acknowledged_actions": len(stats.acknowledged), "stored_actions": total_actions,
        "lost_acknowledged": len(lost), "stored_on_wrong_card": len(wrong),
        "audit_chain": chain, "database": "postgresql" if args.database_url else "sqlite",
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    ok = server_errors == 0 and not lost and not wrong and report["audit_chain"]["ok"]
    print("PASS" if ok else "FAIL")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
