"""Load on the served product over loopback, as reps feel it: 200 reps reading cards and posting actions.

    .venv/bin/python eval/load_test.py --mode open --reps 200 --think-time 3 --seconds 60 [--workers 2 --database-url URL]
    .venv/bin/python eval/load_test.py --mode saturate [--workers 2 --database-url URL]
    .venv/bin/python eval/load_test.py --mode closed --reps 200 --seconds 120 [--kill-at 60]

Prepares a store (seeded synthetic history, rule-based decisions, cards drafted from the templates), creates
one user per simulated rep (rep ids shared, so reps of a team touch the same cards), starts `outreach serve
[--workers N]` as separate processes, and runs the reps. Every action carries a fresh Idempotency-Key and a
failed request is retried with the same key, as a real client would.

- `open`: each rep acts every `--think-time` seconds (jittered), whether or not its last request has come back
  (open loop: a slow server does not slow the arrivals). An act is the rep's next step: list the inbox, open a
  card, adopt, send, record the outcome (a quarter of the cards are rejected instead). An integration posts
  service events at `--events-per-s` meanwhile, which the servers' background workers route through the job
  queue. Latency is measured from the moment a request was due, so waiting in the client counts too.
- `saturate`: open loop at a total rate that doubles each step, then bisects, to the highest rate whose p95
  stays under `--p95-target-ms` with no errors.
- `closed`: the original hammer: each rep sends its next request as soon as the last one answered.

Reported: requests, throughput, p50 / p95 / p99 overall and per route, status counts (any 5xx is a failure),
that every acknowledged action is in the store exactly once, and (open) that no background job ran twice.
With `--kill-at` (closed), the server is killed (SIGKILL) mid-load and restarted.
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
    """Store, cards and users; returns a token per simulated rep, and the CRM integration's as `load-crm`."""
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
        users.add(session=session, name="load-crm", role="integration", now=now)  # posts the service events
        tokens["load-crm"] = users.issue_token(session=session, name="load-crm", now=now, ttl_days=1)
    return tokens


def serve(env: dict[str, str], port: int, log: Path, workers: int = 1) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", str(workers)],
                               cwd=ROOT, env={**os.environ, **env}, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    for _ in range(1200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/login", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"server did not start; see {log}")


def route_of(method: str, url: str) -> str:
    """The route a request hit, ids folded: `POST /api/cards/{id}/adopt`."""
    parts = url.split("?")[0].strip("/").split("/")
    if len(parts) >= 3 and parts[:2] in (["api", "cards"], ["api", "events"]):
        parts[2] = "{id}"
    return f"{method} /{'/'.join(parts)}"


class Stats:
    def __init__(self) -> None:
        self.latency: list[float] = []
        self.by_route: dict[str, list[float]] = collections.defaultdict(list)
        self.status: collections.Counter = collections.Counter()
        self.acknowledged: dict[str, str] = {}  # idempotency key -> card id of every 2xx action
        self.errors: collections.Counter = collections.Counter()
        self.events_posted: list[str] = []

    def record(self, method: str, url: str, seconds: float, status: int) -> None:
        self.latency.append(seconds)
        self.by_route[route_of(method, url)].append(seconds)
        self.status[status] += 1

    def summary(self, elapsed: float) -> dict:
        ms = np.array(self.latency) * 1000
        quantiles = lambda values: {q: round(float(np.percentile(values, int(q[1:]))), 1)  # noqa: E731
                                    for q in ("p50", "p95", "p99")} if len(values) else {}
        return {"requests": int(len(ms)), "throughput_rps": round(len(ms) / elapsed, 1), "latency_ms": quantiles(ms),
                "by_route": {route: {"requests": len(v), **quantiles(np.array(v) * 1000)}
                             for route, v in sorted(self.by_route.items())},
                "status": {str(k): v for k, v in sorted(self.status.items())},
                "server_errors_5xx": sum(n for code, n in self.status.items() if code >= 500),
                "transport_errors": dict(self.errors)}


async def call(client: httpx.AsyncClient, stats: Stats, method: str, url: str, *, due: float | None = None,
               **kw) -> httpx.Response | None:
    """One request, retried with the same body and key until the server answers (a client's duty). The latency
    counts from `due` (when the request should have gone out) when given, so client-side waiting counts too."""
    for _attempt in range(20):
        started = due if due is not None else time.perf_counter()
        try:
            response = await client.request(method, url, **kw)
        except httpx.TransportError as exc:
            stats.errors[type(exc).__name__] += 1
            await asyncio.sleep(0.5)
            due = None
            continue
        stats.record(method, url, time.perf_counter() - started, response.status_code)
        return response
    return None


async def rep_loop(base: str, token: str, until: float, stats: Stats, rng: random.Random) -> None:
    """Closed loop: the next request goes as soon as the last one answered."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        while time.monotonic() < until:
            listing = await call(client, stats, "GET", "/api/cards", params={"status": "open", "limit": 20})
            if listing is None or listing.status_code != 200 or not listing.json():
                await asyncio.sleep(0.2)
                continue
            card = rng.choice(listing.json())
            await call(client, stats, "GET", f"/api/cards/{card['id']}")
            for kind, body in steps_for(rng):
                key = uuid.uuid4().hex
                response = await call(client, stats, "POST", f"/api/cards/{card['id']}/{kind}", json=body,
                                      headers={"Idempotency-Key": key})
                if response is not None and response.status_code == 200:
                    stats.acknowledged[key] = card["id"]
                    if rng.random() < 0.1:  # a retried request: must not be recorded twice
                        again = await call(client, stats, "POST", f"/api/cards/{card['id']}/{kind}", json=body,
                                           headers={"Idempotency-Key": key})
                        assert again is None or again.status_code == 200, again.text
                else:
                    break


def steps_for(rng: random.Random) -> list[tuple[str, dict]]:
    if rng.random() < 0.25:
        return [("reject", {"reason": "bad_timing", "note": "load test"})]
    return [("adopt", {}), ("send", {}), ("outcome", {"outcome": rng.choice(["replied", "no_answer", "converted"])})]


class OpenRep:
    """A rep in the open loop: each act is the next step of its work on one card; acts arrive on schedule."""

    def __init__(self, client: httpx.AsyncClient, stats: Stats, rng: random.Random) -> None:
        self.client, self.stats, self.rng = client, stats, rng
        self.card: str | None = None
        self.opened = False
        self.steps: list[tuple[str, dict]] = []
        self.busy = 0

    async def act(self, due: float) -> None:
        self.busy += 1
        try:
            if self.card is None:  # list the inbox, pick a card
                listing = await call(self.client, self.stats, "GET", "/api/cards", due=due,
                                     params={"status": "open", "limit": 20})
                if listing is not None and listing.status_code == 200 and listing.json():
                    self.card, self.opened, self.steps = self.rng.choice(listing.json())["id"], False, steps_for(self.rng)
            elif not self.opened:
                self.opened = True
                await call(self.client, self.stats, "GET", f"/api/cards/{self.card}", due=due)
            elif self.steps:
                card, (kind, body) = self.card, self.steps.pop(0)
                key = uuid.uuid4().hex
                response = await call(self.client, self.stats, "POST", f"/api/cards/{card}/{kind}", json=body,
                                      headers={"Idempotency-Key": key}, due=due)
                if response is not None and response.status_code == 200:
                    self.stats.acknowledged[key] = card
                if response is None or response.status_code != 200 or not self.steps:
                    self.card = None  # done with this card (or someone else took it): back to the inbox
            else:
                self.card = None
        finally:
            self.busy -= 1


async def open_loop(base: str, tokens: dict[str, str], *, seconds: float, rate: float, stats: Stats,
                    events_per_s: float = 0.0, integration: str | None = None, customers: list[str] = ()) -> float:
    """Acts arrive as a Poisson process at `rate` per second in total, each from a rep chosen at random (so each
    of R reps acts every R/rate seconds on average); returns the elapsed time. Acts of one rep that arrive
    while its last one is still out wait for it (a person does one thing at a time) and count that wait."""
    rng = random.Random(7)
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        reps = [OpenRep(RepClient(client, token), stats, random.Random(i)) for i, token in enumerate(tokens.values())]
        locks = [asyncio.Lock() for _ in reps]
        tasks: list[asyncio.Task] = []
        started = time.perf_counter()

        async def run_act(i: int, due: float) -> None:
            async with locks[i]:
                await reps[i].act(due)

        async def post_events() -> None:
            if not events_per_s or integration is None:
                return
            headers = {"Authorization": f"Bearer {integration}"}
            due = started
            n = 0
            while due < started + seconds:
                due += rng.expovariate(events_per_s)
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                event_id = f"ev-load-{uuid.uuid4().hex[:12]}"
                occurred = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
                body = {"id": event_id, "customer_id": customers[n % len(customers)], "occurred_at": occurred,
                        "type": "service_conversation", "intent": rng.choice(["pricing_question", "upsell_interest"]),
                        "text": "Could you tell me more about the plans?"}
                n += 1
                response = await call(client, stats, "POST", "/api/events", json=body, headers=headers, due=due)
                if response is not None and response.status_code == 202:
                    stats.events_posted.append(event_id)

        poster = asyncio.create_task(post_events())
        due = started
        while True:
            due += rng.expovariate(rate)
            if due >= started + seconds:
                break
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(run_act(rng.randrange(len(reps)), due)))
        await poster
        await asyncio.gather(*tasks)
        return time.perf_counter() - started


class RepClient:
    """One shared connection pool, each rep's own token."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    async def request(self, method: str, url: str, **kw) -> httpx.Response:
        return await self.client.request(method, url, headers={**self.headers, **kw.pop("headers", {})}, **kw)


async def run_load(base: str, tokens: dict[str, str], seconds: float, stats: Stats) -> None:
    until = time.monotonic() + seconds
    await asyncio.gather(*(rep_loop(base, t, until, stats, random.Random(i)) for i, t in enumerate(tokens.values())))


def saturate(base: str, tokens: dict[str, str], *, step_seconds: float, target_ms: float, start_rate: float,
             max_rate: float) -> dict:
    """The highest total rate (acts per second) with p95 under `target_ms` and no errors: doubling, then
    bisecting between the last rate that held and the first that did not."""
    steps = []

    def holds(rate: float) -> bool:
        stats = Stats()
        elapsed = asyncio.run(open_loop(base, tokens, seconds=step_seconds, rate=rate, stats=stats))
        summary = stats.summary(elapsed)
        ok = (summary["requests"] > 0 and summary["latency_ms"]["p95"] < target_ms
              and summary["server_errors_5xx"] == 0 and not summary["transport_errors"])
        steps.append({"rate": round(rate, 1), "ok": ok, "throughput_rps": summary["throughput_rps"],
                      "latency_ms": summary["latency_ms"], "server_errors_5xx": summary["server_errors_5xx"],
                      "p95_by_route_ms": {route: v.get("p95") for route, v in summary["by_route"].items()}})
        print(json.dumps(steps[-1]), flush=True)
        return ok

    good, bad, rate = 0.0, None, start_rate
    while rate <= max_rate:
        if holds(rate):
            good, rate = rate, rate * 2
        else:
            bad = rate
            break
    if bad is not None:
        for _ in range(3):
            middle = (good + bad) / 2
            if holds(middle):
                good = middle
            else:
                bad = middle
    return {"saturation_rate_rps": round(good, 1), "p95_target_ms": target_ms, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["open", "saturate", "closed"], default="open")
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--think-time", type=float, default=3.0, help="open: seconds between one rep's acts (mean).")
    parser.add_argument("--events-per-s", type=float, default=2.0, help="open: service events posted per second.")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--step-seconds", type=float, default=20, help="saturate: seconds per rate tried.")
    parser.add_argument("--p95-target-ms", type=float, default=100.0)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=1, help="API processes (more than 1 needs --database-url).")
    parser.add_argument("--separate-worker", action="store_true",
                        help="Background work in an `outreach worker` process of its own, not in the API processes.")
    parser.add_argument("--kill-at", type=float, help="closed: kill the server (SIGKILL) this many seconds in, then restart it.")
    parser.add_argument("--database-url", help="Default: SQLite in a temporary folder.")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="outreach-load-"))
    # Background rounds every second in open mode (events to route, drafts): the job queue works under load.
    env = {"DATA_DIR": str(folder), "LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1", "LLM_MODEL": "offline",
           "LLM_MAX_RETRIES": "0", "CARD_DAILY_CAP": "40",
           "WORKER_INTERVAL_S": "1" if args.mode == "open" else "3600",
           "MODEL_CACHE_DIR": os.environ.get("MODEL_CACHE_DIR", str(ROOT / "data" / "cache"))}
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    if args.separate_worker:
        env["SERVE_BACKGROUND_WORK"] = "false"
    tokens = prepare(env, args.reps, args.customers)
    integration = tokens.pop("load-crm")
    port = free_port()
    log = folder / "server.log"
    server = serve(env, port, log, args.workers)
    background = None
    if args.separate_worker:
        background = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env={**os.environ, **env},
                                      stdout=(folder / "worker.log").open("ab"), stderr=subprocess.STDOUT,
                                      start_new_session=True)
    stats = Stats()
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    killed_at = None
    extra: dict = {}

    async def orchestrate() -> None:
        nonlocal server, killed_at
        load = asyncio.create_task(run_load(base, tokens, args.seconds, stats))
        if args.kill_at:
            await asyncio.sleep(args.kill_at)
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
            killed_at = time.perf_counter() - started
            server = await asyncio.to_thread(serve, env, port, log, args.workers)
        await load

    if args.mode == "closed":
        asyncio.run(orchestrate())
        elapsed = time.perf_counter() - started
    elif args.mode == "open":
        customers = customer_ids(env)
        elapsed = asyncio.run(open_loop(base, tokens, seconds=args.seconds, rate=args.reps / args.think_time,
                                        stats=stats, events_per_s=args.events_per_s, integration=integration,
                                        customers=customers))
        time.sleep(5)  # the workers' last rounds: the events just posted get routed
    else:
        extra = saturate(base, tokens, step_seconds=args.step_seconds, target_ms=args.p95_target_ms,
                         start_rate=25.0, max_rate=3200.0)
        elapsed = time.perf_counter() - started
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=60)
    if background is not None:
        os.killpg(background.pid, signal.SIGTERM)
        background.wait(timeout=60)

    from app.audit import service as audit
    from app.cards.tables import CardAction, EventJob
    from app.config import get_settings
    from app.jobs import queue as jobs
    from app.jobs.tables import Job
    from app.services import Services

    get_settings.cache_clear()
    services = Services(get_settings())
    with services.read() as session:
        stored = dict(session.execute(select(CardAction.idempotency_key, CardAction.card_id)).all())
        total_actions = session.scalar(select(func.count()).select_from(CardAction))
        chain = audit.verify(session=session).__dict__
        queue = jobs.counts(session=session)
        route_jobs = dict(session.execute(select(Job.key, Job.attempts).where(Job.kind == "route_event")).all())
        claimers = session.scalar(select(func.count(func.distinct(Job.claimed_by))))
        events_left = session.scalar(select(func.count()).select_from(EventJob).where(EventJob.status == "pending"))
    lost = [k for k in stats.acknowledged if k not in stored]
    wrong = [k for k, c in stats.acknowledged.items() if k in stored and stored[k] != c]
    report = {
        "mode": args.mode, "reps": args.reps, "workers": args.workers, "separate_worker": args.separate_worker,
        "database": "postgresql" if args.database_url else "sqlite", "seconds": round(elapsed, 1),
        **({"think_time_s": args.think_time, "offered_rate_rps": round(args.reps / args.think_time, 1),
            "events_per_s": args.events_per_s} if args.mode == "open" else {}),
        **stats.summary(elapsed), **extra,
        "killed_at_s": round(killed_at, 1) if killed_at else None,
        "acknowledged_actions": len(stats.acknowledged), "stored_actions": total_actions,
        "lost_acknowledged": len(lost), "stored_on_wrong_card": len(wrong),
        "events_posted": len(stats.events_posted),
        "events_routed_once": sum(route_jobs.get(e) == 1 for e in stats.events_posted),
        "events_still_pending": events_left, "jobs": queue, "job_claimers": claimers,
        "audit_chain": chain,
    }
    out = args.out or ROOT / "eval" / "reports" / f"load_test_{args.mode}_{report['database']}_{args.workers}w{'_sw' if args.separate_worker else ''}.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    ok = (report["server_errors_5xx"] == 0 and not lost and not wrong and report["audit_chain"]["ok"]
          and queue["retried"] == 0 and queue["failed"] == 0)
    print("PASS" if ok else "FAIL")
    raise SystemExit(0 if ok else 1)


def customer_ids(env: dict[str, str]) -> list[str]:
    from app.config import get_settings
    from app.data.tables import Customer
    from app.services import Services

    os.environ.update(env)
    get_settings.cache_clear()
    with Services(get_settings()).read() as session:
        return list(session.scalars(select(Customer.id).order_by(Customer.id).limit(500)))


if __name__ == "__main__":
    main()
