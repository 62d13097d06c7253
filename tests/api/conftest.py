"""A product on a real store: library, customers in two teams, scored decisions, cards, users with tokens."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.api.workbench import Workbench
from app.cards import service as cards
from app.config import Settings
from app.library import service as library
from app.library.index import TemplateIndex
from app.store.db import open_store, transaction
from app.data.tables import Customer
from app.models.tables import Decision, ScoreRun
from app.users import service as users
from tests.conftest import ROOT
from tests.drafting.conftest import free_port
from tests.library.conftest import embedder  # noqa: F401 - the session's embedding model
from tests.review.conftest import reviewer  # noqa: F401 - the session's guardrails

CUSTOMERS = [  # id, rep, team, industry, stage, score
    ("cus-a1", "rep-01", "team-a", "retail", "active", 0.9), ("cus-a2", "rep-01", "team-a", "healthcare", "active", 0.8),
    ("cus-a3", "rep-01", "team-a", "retail", "lead", 0.7), ("cus-a4", "rep-02", "team-a", "retail", "active", 0.6),
    ("cus-b1", "rep-05", "team-b", "retail", "active", 0.95),
]


def product_settings(folder: Path, **overrides: Any) -> Settings:
    # The LLM endpoint is down on purpose: drafts are the template (fast, and the real fallback path).
    return Settings(_env_file=None, data_dir=folder, prompts_dir=ROOT / "prompts", library_dir=ROOT / "script_library",
                    guardrails_dir=ROOT / "guardrails", llm_base_url=f"http://127.0.0.1:{free_port()}/v1",
                    llm_model="offline", llm_max_retries=0, card_daily_cap=2, **overrides)


@pytest.fixture
def product(tmp_path: Path, embedder, reviewer):  # noqa: F811
    now = datetime.now(timezone.utc)
    settings = product_settings(tmp_path)
    factory = open_store(settings.resolved_database_url)
    library.import_directory(factory, ROOT / "script_library", actor="test", now=now)
    index = TemplateIndex.open(path=settings.chroma_path, embedder=embedder)
    index.sync(library.live_versions(factory))
    with transaction(factory) as session:
        session.add(ScoreRun(id="run-test", started_at=now - timedelta(minutes=1), finished_at=now, as_of=now,
                             policy_version="policy-1", champion_version="m-1", stats={}))
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
                                 suppressed_by=[], requires_confirmation=industry == "healthcare"))
    cards.build_cards(factory, "run-test", now=now, daily_cap=settings.card_daily_cap, sla_hours=settings.card_sla_hours)
    tokens = {}
    for name, role, rep, team in [("rep1", "rep", "rep-01", "team-a"), ("rep2", "rep", "rep-02", "team-a"),
                                  ("rep5", "rep", "rep-05", "team-b"), ("comp", "compliance", None, None),
                                  ("content", "content", None, None), ("ds", "data_scientist", None, None),
                                  ("admin", "admin", None, None)]:
        users.add(factory, name, role, now=now, rep_id=rep, team=team)
        tokens[name] = users.issue_token(factory, name)
    app = create_app(settings)
    app.state.template_index = index
    bench = Workbench(settings, factory, index)
    bench.reviewer = reviewer
    app.state.workbench = bench
    client = TestClient(app)
    client.factory, client.bench, client.tokens, client.settings = factory, bench, tokens, settings
    return client


def auth(client: TestClient, name: str, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {client.tokens[name]}"}
    if key:
        headers["Idempotency-Key"] = key
    return headers
