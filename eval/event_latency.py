"""How fast a service conversation becomes a handoff card, with the worker running.

    .venv/bin/python eval/event_latency.py [--events 40] [--customers 400] [--json]

A store of synthetic customers (the first ones given an email and consent, as a CRM would have them); the
worker runs in its thread every 0.1 s, as `outreach serve` runs it. Measured in one run:
- classification alone, one message at a time: the product's `classify` (redaction, embedding, head, the
  out-of-scope check) against the raw library (the same embedding and logistic head, nothing else);
- event to card: from the unit of work that accepts the event (identity resolved) to its card, each event a
  different customer, through redaction, classification, routing and a fresh decision.
The issue's budgets: classification under 800 ms per event (aim: 30 ms p95), event to card under 5 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MESSAGES = [
    "What would the Pro plan cost us for {n} people on a yearly contract?",
    "Can you send a quote for {n} seats of the analytics add-on?",
    "We are comparing you with another vendor, what discount can you give for {n} users?",
    "How much is it per month if we grow to {n} people next quarter?",
    "Our procurement team needs pricing for {n} licences before Friday.",
]


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1)


def run(events: int, customers: int) -> dict:
    from sqlalchemy import select, update

    from app.cards import events as event_flow
    from app.cards.tables import EventJob
    from app.config import Settings
    from app.data.synthetic import default_now, generate, load_into_store
    from app.data.tables import Consent, Customer
    from app.domain import ServiceEventRecord
    from app.services import Services
    from app.users.tables import User
    from app.worker import Worker

    folder = Path(tempfile.mkdtemp(prefix="event-latency-"))
    settings = Settings(_env_file=None, data_dir=folder, library_dir=ROOT / "script_library",
                        guardrails_dir=ROOT / "guardrails", prompts_dir=ROOT / "prompts", worker_interval_s=0.1,
                        llm_base_url="http://127.0.0.1:9/v1", llm_model="offline", llm_max_retries=0)
    services = Services(settings)
    now = services.now()
    load_into_store(generate(customers=customers, seed=0, now=default_now(now)), services.store)
    with services.unit_of_work() as session:
        ids = list(session.scalars(select(Customer.id).order_by(Customer.id).limit(events)))
        for i, customer_id in enumerate(ids):
            session.execute(update(Customer).where(Customer.id == customer_id)
                            .values(email=f"bench-{i}@example.org", lifecycle_stage="lead", do_not_contact=False))
            for channel in ("email", "sms", "call", "chat"):
                session.merge(Consent(customer_id=customer_id, channel=channel, granted=True))

    texts = [MESSAGES[i % len(MESSAGES)].format(n=10 + i) for i in range(200)]
    intents = services.intents
    model = intents.model()  # trained once, before timing
    product, raw = [], []
    for text in texts:
        t0 = time.perf_counter()
        intents.classify(text)
        product.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        model.head.predict_proba(model.embedder.embed([text]))
        raw.append((time.perf_counter() - t0) * 1000)

    operator = User(name="bench", role="integration")
    worker = Worker(services)
    worker.start()
    to_card, outcomes = [], []
    try:
        for i in range(len(ids)):
            record = ServiceEventRecord(event_id=f"bench-ev-{i}", event_type="chat_message", channel="chat",
                                        timestamp=services.now() - timedelta(seconds=5), email=f"bench-{i}@example.org",
                                        message=texts[i])
            t0 = time.perf_counter()
            services.write(lambda s, r=record: event_flow.accept_service_event(
                session=s, user=operator, record=r, now=services.now(), skew_s=300,
                hash_key=settings.identity_hash_key, match_threshold=settings.identity_match_threshold))
            while True:
                with services.read() as session:
                    job = session.get(EventJob, record.event_id)
                    done = job is not None and job.status != "pending"
                    result = job.result if done else None
                if done or time.perf_counter() - t0 > 30:
                    break
                time.sleep(0.01)
            to_card.append(time.perf_counter() - t0)
            outcomes.append(result or "timed out")
    finally:
        worker.stop()
        services.close()
    cards = sum(o.startswith("card ") for o in outcomes)
    return {
        "classify_ms": {"p50": percentile(product, 50), "p95": percentile(product, 95)},
        "raw_library_ms": {"p50": percentile(raw, 50), "p95": percentile(raw, 95)},
        "classify_vs_raw_p50": round(float(np.median(product) / np.median(raw)), 2),
        "classify_p95_vs_800ms_budget": round(float(np.percentile(product, 95)) / 800, 3),
        "event_to_card_s": {"p50": round(float(np.median(to_card)), 2), "p95": round(float(np.percentile(to_card, 95)), 2),
                            "max": round(max(to_card), 2)},
        "events": len(to_card), "cards": cards,
        "other_outcomes": sorted({o.split(" (")[0] for o in outcomes if not o.startswith("card ")})[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--customers", type=int, default=400)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.events, args.customers)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>30}: {value}")


if __name__ == "__main__":
    main()
