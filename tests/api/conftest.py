"""A product on a real store: library, customers in two teams, scored decisions, cards, users with tokens,
built through the composition root with a frozen clock (API and page tests are deterministic)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.cards import service as cards
from app.clock import FixedClock
from app.config import Settings
from app.data.tables import Customer
from app.library import service as library
from app.library.index import TemplateIndex
from app.main import create_app
from app.models.tables import Decision, ScoreRun
from app.services import Services
from app.store.db import unit_of_work
from app.users import service as users
from app.worker import Worker
from tests.conftest import ROOT, read, write
from tests.drafting.conftest import free_port
from tests.library.conftest import embedder  # noqa: F401 - the session's embedding model
from tests.review.conftest import reviewer  # noqa: F401 - the session's guardrails

PRODUCT_NOW = datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc)
# What scoring records when an uplift model chose the objective (app.models.objectives.choose).
OBJECTIVE_IMPACT = {"objective": "analytics", "label": "Add the Analytics Add-on", "contact_cost": 0.05, "value": 0.61,
                    "kpis": {"response": 0.12, "conversion": 0.04, "spend": 20.0},
                    "alternatives": [{"objective": "pro", "value": 0.2, "why": "Upgrade to the Pro Plan: predicted "
                                      "conversion change +0.010, against +0.040 for the chosen objective"}]}
CUSTOMERS = [  # id, rep, team, industry, stage, score
    ("cus-a1", "rep-01", "team-a", "retail", "active", 0.9), ("cus-a2", "rep-01", "team-a", "healthcare", "active", 0.8),
    ("cus-a3", "rep-01", "team-a", "retail", "lead", 0.7), ("cus-a4", "rep-02", "team-a", "retail", "active", 0.6),
    ("cus-b1", "rep-05", "team-b", "retail", "active", 0.95),
]
USERS = [("rep1", "rep", "rep-01", "team-a"), ("rep2", "rep", "rep-02", "team-a"), ("rep5", "rep", "rep-05", "team-b"),
         ("comp", "compliance", None, None), ("content", "content", None, None), ("content2", "content", None, None),
         ("ds", "data_scientist", None, None), ("crm", "integration", None, None), ("admin", "admin", None, None)]


def product_settings(folder: Path, **overrides: Any) -> Settings:
    # The LLM endpoint is down on purpose: drafts are the template (fast, and the real fallback path).
    return Settings(_env_file=None, data_dir=folder, prompts_dir=ROOT / "prompts", library_dir=ROOT / "script_library",
                    guardrails_dir=ROOT / "guardrails", llm_base_url=f"http://127.0.0.1:{free_port()}/v1",
                    llm_model="offline", llm_max_retries=0, card_daily_cap=2, **overrides)


def build_product(folder: Path, embedder, reviewer, **overrides: Any) -> TestClient:  # noqa: ANN001, F811
    clock = FixedClock(PRODUCT_NOW)
    now = clock.now()
    settings = product_settings(folder, **overrides)
    index = TemplateIndex.open(path=settings.chroma_path, embedder=embedder)
    services = Services(settings, clock=clock, embedder=embedder, reviewer=reviewer, index=index)
    factory = services.store
    write(factory, library.import_directory, folder=ROOT / "script_library", actor="test", now=now)
    index.sync(read(factory, library.live_versions))
    with unit_of_work(factory) as session:
        session.add(ScoreRun(id="run-test", kind="batch", started_at=now - timedelta(minutes=1), finished_at=now,
                             as_of=now, policy_version="policy-1", champion_version="m-1", stats={}))
        for i, (cid, rep, team, industry, stage, score) in enumerate(CUSTOMERS):
            session.add(Customer(id=cid, first_name=f"Kim{i}", last_name="Test", email=f"{cid}@example.org",
                                 owner_rep=rep, team=team, industry=industry, lifecycle_stage=stage, segment="smb_owner",
                                 attributes={}))
            session.flush()
            session.add(Decision(run_id="run-test", customer_id=cid, as_of=now, status="recommended", method="model",
                                 arm="champion" if i % 2 == 0 else "challenger", model_version="m-1",
                                 policy_version="policy-1", score=score, confidence=score / 2, channel="email",
                                 slot_local="Tue 10:00 UTC", product="analytics",
                                 reasons=[{"feature": "days_since_product_view", "text": "browsed Analytics Add-on 3 days ago"}],
                                 suppressed_by=[], requires_confirmation=industry == "healthcare",
                                 objective="analytics" if i == 0 else None, objectives_version="objectives-1" if i == 0 else None,
                                 impact=OBJECTIVE_IMPACT if i == 0 else None))
    write(factory, cards.build_cards, run_id="run-test", now=now, daily_cap=settings.card_daily_cap,
          sla_hours=settings.card_sla_hours)
    tokens = {}
    for name, role, rep, team in USERS:
        write(factory, users.add, name=name, role=role, now=now, rep_id=rep, team=team)
        tokens[name] = write(factory, users.issue_token, name=name, now=now, ttl_days=30)
    client = TestClient(create_app(services))
    client.factory, client.services, client.clock, client.tokens, client.settings = (
        factory, services, clock, tokens, settings)
    client.worker = Worker(services)
    return client


@pytest.fixture
def product(tmp_path: Path, embedder, reviewer):  # noqa: F811
    return build_product(tmp_path, embedder, reviewer)


def auth(client: TestClient, name: str, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {client.tokens[name]}"}
    if key:
        headers["Idempotency-Key"] = key
    return headers


@pytest.fixture
def live(product):
    """The product's app served by uvicorn on a free loopback port: real concurrent requests."""
    import threading
    import time

    import httpx
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(product.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{base}/login", timeout=0.5)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    product.base = base
    yield product
    server.should_exit = True
    thread.join(timeout=10)
