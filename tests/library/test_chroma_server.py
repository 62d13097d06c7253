"""The template index on a real Chroma server (`chroma run`, as production runs it, set by CHROMA_URL)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.library import service
from app.library.index import TemplateIndex
from app.library.retrieval import RetrievalRequest, retrieve
from tests.conftest import read, write
from tests.drafting.conftest import free_port
from tests.library.conftest import LIBRARY
from tests.library.test_retrieval import NOW


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Chroma server of chromadb's own CLI on a free loopback port, stopped after the module."""
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent))
    assert chroma, "chromadb installs the `chroma` command next to the Python running the tests"
    folder, port = tmp_path_factory.mktemp("chroma-server"), free_port()
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen([chroma, "run", "--path", str(folder / "data"), "--host", "127.0.0.1",
                                "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                pytest.fail(f"chroma run exited with {process.returncode}: {(folder / 'server.log').read_text()}")
            time.sleep(0.1)
        else:
            pytest.fail("the Chroma server did not answer within 30 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_the_index_on_a_chroma_server_syncs_filters_and_finds_by_meaning(sqlite_store, embedder, chroma_url: str,
                                                                          tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, chroma_url=chroma_url)
    index = TemplateIndex.configured(settings, embedder=embedder)
    write(sqlite_store, service.import_directory, folder=LIBRARY, actor="content", now=NOW)
    report = index.sync(read(sqlite_store, service.live_versions))
    assert report.added == 36 and len(index.entries()) == 36
    assert not (tmp_path / "chroma").exists()  # nothing went to the embedded folder
    # A second client (another API process) sees the same collection.
    other = TemplateIndex.configured(settings, embedder=embedder)
    assert other.sync(read(sqlite_store, service.live_versions)).unchanged == 36
    with sqlite_store() as session:
        found = retrieve(session=session, index=other, request=RetrievalRequest(
            text="the customer asked what the price of the pro plan is", channel="email", product="pro"))
    assert found and all(r.channel == "email" for r in found)
    write(sqlite_store, service.retire, template_id=found[0].id, actor="content", now=NOW)
    assert index.sync(read(sqlite_store, service.live_versions)).removed == 1
    assert found[0].id not in other.entries()
