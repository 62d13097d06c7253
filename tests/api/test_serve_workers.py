"""`outreach serve --workers 2` on PostgreSQL, end to end: two API processes, each with its background worker,
share one store and one job queue; every posted event is routed once, every acknowledged action stored once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text

from app.cards.tables import CardAction, EventJob
from app.jobs import queue as jobs
from app.jobs.tables import Job
from tests.api.conftest import CUSTOMERS, build_product, free_port
from tests.conftest import ROOT, own_postgres_database

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def fresh_postgres(postgres_url: str):  # noqa: ANN201
    with own_postgres_database(postgres_url, "outreach_serve") as url:
        yield url


def test_two_api_processes_on_postgresql_share_the_work_and_run_each_job_once(tmp_path: Path, embedder, reviewer,
                                                                              fresh_postgres: str) -> None:
    product = build_product(tmp_path, embedder, reviewer, database_url=fresh_postgres)
    settings, now = product.settings, product.clock.now()
    env = {**os.environ, "DATA_DIR": str(settings.data_dir), "DATABASE_URL": fresh_postgres,
           "PROMPTS_DIR": str(settings.prompts_dir), "LIBRARY_DIR": str(settings.library_dir),
           "GUARDRAILS_DIR": str(settings.guardrails_dir), "LLM_BASE_URL": settings.llm_base_url,
           "LLM_MODEL": "offline", "LLM_MAX_RETRIES": "0", "WORKER_INTERVAL_S": "0.3", "CARD_DAILY_CAP": "2"}
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--workers", "2", "--port", str(port)],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail(f"the server did not start: {(tmp_path / 'serve.log').read_text()[-2000:]}")
        crm = {"Authorization": f"Bearer {product.tokens['crm']}"}
        customers = [c[0] for c in CUSTOMERS]
        posted = []
        with httpx.Client(base_url=base, timeout=30) as client:
            for i in range(40):
                event = {"id": f"ev-multi-{i}", "customer_id": customers[i % len(customers)],
                         "occurred_at": (now - timedelta(minutes=1)).isoformat(), "type": "service_conversation",
                         "intent": "pricing_question", "product": "analytics", "text": "What would it cost?"}
                assert client.post("/api/events", json=event, headers=crm).status_code == 202
                posted.append(event["id"])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with product.factory() as session:
                waiting = session.scalar(select(text("count(*)")).select_from(EventJob).where(
                    EventJob.status == "pending"))
            if not waiting:
                break
            time.sleep(0.3)
        assert not waiting, f"{waiting} events still pending: {(tmp_path / 'serve.log').read_text()[-3000:]}"
        rep = {"Authorization": f"Bearer {product.tokens['rep1']}"}
        with httpx.Client(base_url=base, timeout=30) as client:
            while time.monotonic() < deadline:  # the workers draft the cards after the events
                drafted = [c for c in client.get("/api/cards", headers=rep, params={"status": "open"}).json()
                           if c.get("draft")]
                if drafted:
                    break
                time.sleep(0.3)
            assert drafted, "no card of rep1 was drafted"
            for key in ("adopt-once", "adopt-once"):  # a retried request: stored once
                answer = client.post(f"/api/cards/{drafted[0]['id']}/adopt", json={},
                                     headers={**rep, "Idempotency-Key": key})
                assert answer.status_code == 200, answer.text
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        log.close()
    with product.factory() as session:
        routed = session.scalars(select(Job).where(Job.kind == "route_event")).all()
        actions = session.scalars(select(CardAction).where(CardAction.idempotency_key == "adopt-once")).all()
        queue = jobs.counts(session=session)
    assert sorted(j.key for j in routed) == sorted(posted)
    assert all(j.status == "done" and j.attempts == 1 and j.runs == 1 for j in routed)  # each ran once
    assert len({j.claimed_by for j in routed}) == 2, "both processes took events from the queue"
    assert len(actions) == 1
    assert queue["retried"] == 0 and queue["failed"] == 0 and queue["done"] >= 41  # the events and the drafts
