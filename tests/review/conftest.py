"""Review fixtures: the real policy and embedding model, drafts made through the real drafting path."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.drafting.facts import load_profile
from app.drafting import service as drafting
from app.drafting.service import Drafter, DraftRequest, DraftResult
from app.library import service as library
from app.review import service as review
from app.review.service import ReviewResult
from app.library.index import default_embedder
from app.review.checks import Reviewer
from app.review.validators import ReviewContext
from app.store.db import reading, unit_of_work
from app.models.tables import Decision, ScoreRun
from tests.conftest import NOW, ROOT
from tests.drafting.conftest import add_customer, drafting_settings, free_port

PROFILE_FILE = ROOT / "script_library" / "company.yaml"


@pytest.fixture(scope="session")
def reviewer() -> Reviewer:
    checker = Reviewer.from_folder(ROOT / "guardrails", default_embedder(), Path(os.environ["MODEL_CACHE_DIR"]))
    checker.warm()
    return checker


@pytest.fixture(scope="session")
def profile():
    return load_profile(PROFILE_FILE)


def sms_context(**overrides: Any) -> ReviewContext:
    values = dict(channel="sms", recipient={"first_name": "Ana", "email": "ana@lima.example", "phone": "+351 912 345 678"},
                  allowed_contacts=["+1 555 0103", "jordan@brightwave.example", "Brightwave"],
                  template_text="Hi Ana, Jordan from Brightwave here. Any questions about Pro Plan? Happy to help. Reply STOP to opt out.",
                  template_disclosures=["Reply STOP to opt out."], facts=["browsed Pro Plan 3 days ago", "Pro Plan", "Ana"],
                  product_names={"pro": "Pro Plan", "payments": "Payments", "analytics": "Analytics Add-on"},
                  product_key="pro", company_domains=["brightwave.example"])
    return ReviewContext(**{**values, **overrides})


@pytest.fixture
def review_store(store: sessionmaker[Session]) -> sessionmaker[Session]:
    """A store (SQLite and PostgreSQL) with the library, two customers and a finished scoring run."""
    with unit_of_work(store) as session:
        library.import_directory(session=session, folder=ROOT / "script_library", actor="test", now=NOW)
    add_customer(store)
    add_customer(store, conversation=None, id="cus-health", industry="healthcare", email="h@clinic.example",
                 phone="+1 202 555 0147", attributes={})
    with unit_of_work(store) as session:
        session.add(ScoreRun(id="run-1", started_at=NOW - timedelta(minutes=5), finished_at=NOW, as_of=NOW, stats={},
                             policy_version="p1", champion_version="m1"))
        session.flush()
        for i, customer in enumerate(("cus-42", "cus-health")):
            session.add(Decision(id=i + 1, run_id="run-1", customer_id=customer, as_of=NOW, status="recommended",
                                 method="model", arm="champion", model_version="m1", policy_version="p1", score=0.4,
                                 confidence=0.4, channel="email", product="analytics",
                                 reasons=[{"feature": "days_since_product_view", "text": "browsed Analytics Add-on 3 days ago"}],
                                 suppressed_by=[], requires_confirmation=False))
    return store


def make_draft(factory: sessionmaker[Session], tmp_path: Path, customer: str, decision_id: int, reviewer: Reviewer,
               profile, template: str = "email-upsell-analytics") -> tuple[DraftResult, ReviewResult]:  # noqa: ANN001
    """A template-only draft (the LLM endpoint is down on purpose: fast, and the real fallback path), stored and
    reviewed as the worker does: prepare and assess first, then one unit of work."""
    settings = drafting_settings(tmp_path, llm_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_model="down",
                                 llm_max_retries=0)
    request = DraftRequest(customer_id=customer, channel="email", template_id=template, product="analytics",
                           decision_id=decision_id, reasons=["browsed Analytics Add-on 3 days ago"])
    with reading(factory) as session:
        prepared = Drafter(settings).prepare(session=session, request=request, now=NOW)
        assessment = review.assess(session=session, reviewer=reviewer, profile=profile, draft=prepared, now=NOW)
    with unit_of_work(factory) as session:
        stored = drafting.save(session=session, prepared=prepared, now=NOW)
        return stored, review.record(session=session, draft=stored, assessment=assessment, actor="system", now=NOW)
