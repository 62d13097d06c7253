"""A real server on loopback and a real headless Chromium (Debian's package) driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.api.conftest import live, product  # noqa: F401 - the product and its live server
from tests.library.conftest import embedder  # noqa: F401
from tests.review.conftest import reviewer  # noqa: F401

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def browser() -> Iterator:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which("chromium") and not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed (apt-get install -y chromium); .ci/run installs it")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


def signed_in(browser, server, name: str):  # noqa: ANN001, ANN201 - a Playwright page signed in as `name`
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(f"{server.base}/login")
    page.fill("input[name=token]", server.tokens[name])
    page.click("button[type=submit]")
    return page
