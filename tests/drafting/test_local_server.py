"""The local model server: one per data folder, reused while healthy, stopped by the process that started it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.drafting.local import LocalServer, default_port
from app.main import create_app
from app.services import Services
from tests.drafting.conftest import drafting_settings


def test_each_checkout_gets_its_own_port_and_every_process_of_one_checkout_the_same(tmp_path: Path) -> None:
    one, two = tmp_path / "checkout-a" / "data", tmp_path / "checkout-b" / "data"
    assert default_port(one) == default_port(one) != default_port(two)
    assert 20_000 <= default_port(one) < 40_000
    configured = LocalServer.configured(Settings(_env_file=None, data_dir=one))
    assert configured.port == default_port(one) and configured.folder == one / "llm"
    pinned = LocalServer.configured(Settings(_env_file=None, data_dir=one, llm_local_port=9123))
    assert pinned.port == 9123


def test_a_server_this_process_did_not_start_is_left_running(tmp_path: Path) -> None:
    server = LocalServer(port=1, threads=1, folder=tmp_path)
    assert server.stop_if_started_here() is False  # nothing started here: nothing stopped


@pytest.mark.slow
def test_shutting_the_served_product_down_stops_the_model_server_it_started(tmp_path: Path) -> None:
    from tests.drafting.conftest import free_port

    settings = drafting_settings(tmp_path, llm_local_port=free_port())
    services = Services(settings)
    server = services.drafter.local
    with TestClient(create_app(services)):  # the served product (lifespan) up
        services.drafter.client()  # the first draft starts the local model
        assert server.is_ready() and server.started_here
    assert not server.is_ready()  # Ctrl-C / SIGTERM run the same shutdown: the server went with it

    other = LocalServer(port=settings.llm_local_port, threads=1, folder=tmp_path / "elsewhere")
    other.ensure_running()  # started by someone else (another command)
    try:
        services = Services(settings)
        with TestClient(create_app(services)):
            assert services.drafter.client() is not None and services.drafter.startup_s == 0.0  # reused
        assert other.is_ready()  # not ours to stop
    finally:
        other.stop()
