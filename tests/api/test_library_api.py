"""The content team's HTTP API and pages over a real store and a real index."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from app.clock import FixedClock
from app.config import Settings
from app.data.tables import Customer, OutreachAttempt
from app.library import service
from app.library.index import TemplateIndex
from app.main import create_app
from app.services import Services
from app.store.db import unit_of_work
from app.users import service as users
from tests.conftest import read, write
from tests.library.conftest import LIBRARY

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedder):
    folder = tmp_path_factory.mktemp("api")
    settings = Settings(_env_file=None, data_dir=folder)
    index = TemplateIndex.open(path=settings.chroma_path, embedder=embedder)
    services = Services(settings, clock=FixedClock(NOW), embedder=embedder, index=index)
    factory = services.store
    write(factory, service.import_directory, folder=LIBRARY, actor="content", now=NOW)
    index.sync(read(factory, service.live_versions))
    write(factory, users.add, name="writer", role="content", now=NOW)
    token = write(factory, users.issue_token, name="writer", now=NOW, ttl_days=1)
    with unit_of_work(factory) as session:
        for i in range(4):
            session.add(Customer(id=f"c{i}", segment="smb_owner", attributes={}))
            session.flush()
            session.add(OutreachAttempt(id=f"a{i}", customer_id=f"c{i}", attempted_at=NOW - timedelta(days=i + 1),
                                        channel="email", outcome="converted" if i == 0 else "no_answer",
                                        template_id="email-renewal-reminder", attributes={}))
    client = TestClient(create_app(services), headers={"Authorization": f"Bearer {token}"})
    client.factory, client.token = factory, token
    return client


@pytest.fixture(scope="module")
def embedder():
    from app.library.index import default_embedder

    return default_embedder()


def test_list_and_filter(client: TestClient) -> None:
    assert len(client.get("/api/templates").json()) == 39
    drafts = client.get("/api/templates", params={"status": "draft"}).json()
    assert [t["id"] for t in drafts] == ["email-upsell-payments-draft"]
    bad = client.get("/api/templates", params={"status": "published"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("query.status:")
    assert bad.json()["errors"][0]["field"] == "query.status"


def test_show_has_usage_and_results(client: TestClient) -> None:
    info = client.get("/api/templates/email-renewal-reminder").json()
    assert info["usage"] == [{"segment": "smb_owner", "contacts": 4, "positive": 1, "converted": 1, "positive_rate": 0.25}]
    missing = client.get("/api/templates/nope")
    assert missing.status_code == 404 and "no template 'nope'" in missing.json()["detail"]


def test_search(client: TestClient) -> None:
    found = client.get("/api/templates/search", params={"text": "they asked what it costs", "channel": "sms",
                                                        "stage": "follow_up", "k": 2}).json()
    assert [f["id"] for f in found][0] == "sms-follow-up-pricing" and found[0]["why"]
    bad = client.get("/api/templates/search", params={"channel": "fax"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.channel"


def test_template_page_shows_usage_and_escapes_text(client: TestClient) -> None:
    client.cookies.set("outreach_token", client.token)
    page = client.get("/library/email-renewal-reminder")
    assert page.status_code == 200
    assert "Usage and results" in page.text and "smb_owner" in page.text and "25%" in page.text
    assert "{{ customer.first_name }}" in page.text
    write(client.factory, service.edit, template_id="chat-win-back",
          changes={"body": "Hi {{ customer.first_name }} <script>alert(1)</script>"}, actor="content", now=NOW)
    page = client.get("/library/chat-win-back").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert client.get("/library").status_code == 200
    assert client.get("/library/nope").status_code == 404
    client.cookies.clear()
    assert client.get("/library", follow_redirects=False).headers["location"] == "/login"
