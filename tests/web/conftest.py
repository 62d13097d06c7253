"""A real server on loopback and a real headless Chromium (Debian's package) driven by Playwright."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from tests.api.conftest import product  # noqa: F401 - the product fixture
from tests.drafting.conftest import free_port
from tests.library.conftest import embedder  # noqa: F401
from tests.review.conftest import reviewer  # noqa: F401

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def live(product):  # noqa: F811
    """The product's app served by uvicorn on a free loopback port."""
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


@pytest.fixture(scope="session")
def browser() -> Iterator:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which("chromium") and not __import__("os").path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed (apt-get install -y chromium); .ci/run installs it")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


def signed_in(browser, live, name: str):  # noqa: ANN001, ANN201 - a Playwright page signed in as `name`
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live.base}/login")
    page.fill("input[name=token]", live.tokens[name])
    page.click("button[type=submit]")
    return page
