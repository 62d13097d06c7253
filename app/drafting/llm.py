"""LLM clients: one small interface, the OpenAI-compatible implementation behind it.

The same client talks to the local llama.cpp server, vLLM, OpenAI or any compatible endpoint. The
`openai` library retries connection errors, 408/409/429 and 5xx with exponential backoff; the
concurrency limit is a semaphore per endpoint so a burst of cards cannot flood a small server.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx


class LLMError(Exception):
    """The model could not give an answer; `kind` says why (unavailable, timeout, refused, empty)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / (self.latency_ms / 1000) if self.latency_ms > 0 else 0.0


class LLMClient(Protocol):
    """What drafting needs from a model: a name for the audit trail and one chat completion."""

    model: str

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int, schema: dict[str, Any] | None = None,
                 temperature: float = 0.2) -> Completion: ...


_SEMAPHORES: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_SEMAPHORES_LOCK = threading.Lock()


def _semaphore(base_url: str, limit: int) -> threading.BoundedSemaphore:
    with _SEMAPHORES_LOCK:
        return _SEMAPHORES.setdefault((base_url, limit), threading.BoundedSemaphore(limit))


class OpenAICompatibleClient:
    """Chat completions against `base_url`; JSON output constrained by a schema where the server can."""

    def __init__(self, *, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 30.0,
                 max_retries: int = 2, concurrency: int = 4, json_style: str = "json_schema",
                 http_client: httpx.Client | None = None) -> None:
        from openai import OpenAI

        self.model = model
        self.base_url = base_url
        # llama.cpp's server takes a schema inside `json_object`; OpenAI and vLLM take `json_schema`.
        self.json_style = json_style
        self._client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s,
                              max_retries=max_retries, http_client=http_client)
        self._slots = _semaphore(base_url, concurrency)

    def _response_format(self, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is None:
            return None
        if self.json_style == "json_object":
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema", "json_schema": {"name": "draft", "schema": schema}}

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int, schema: dict[str, Any] | None = None,
                 temperature: float = 0.2) -> Completion:
        import openai

        extra: dict[str, Any] = {}
        response_format = self._response_format(schema)
        if response_format:
            extra["response_format"] = response_format
        started = time.perf_counter()
        try:
            with self._slots:
                response = self._client.chat.completions.create(model=self.model, messages=messages,  # type: ignore[arg-type]
                                                                max_tokens=max_tokens, temperature=temperature,
                                                                **extra)
        except openai.APITimeoutError as exc:
            raise LLMError("timeout", f"no answer from {self.base_url} in time ({exc})") from None
        except openai.APIConnectionError as exc:
            raise LLMError("unavailable", f"cannot reach {self.base_url} ({exc})") from None
        except openai.APIStatusError as exc:
            raise LLMError("refused", f"{self.base_url} answered {exc.status_code}: {exc.message[:200]}") from None
        latency_ms = (time.perf_counter() - started) * 1000
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or "") if choice else ""
        if not text.strip():
            raise LLMError("empty", f"{self.base_url} returned no text")
        usage = response.usage
        return Completion(text=text, model=response.model or self.model,
                          prompt_tokens=usage.prompt_tokens if usage else 0,
                          completion_tokens=usage.completion_tokens if usage else 0, latency_ms=latency_ms)
