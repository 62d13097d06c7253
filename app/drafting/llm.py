"""LLM clients: one small interface, LangChain's chat models behind it.

`LangChainClient.configured` builds any chat model LangChain's `init_chat_model` knows (OpenAI, any
OpenAI-compatible server such as vLLM or llama.cpp, Ollama, Anthropic, ... with the provider's package
installed); the local llama.cpp server is the default. The provider's client retries connection errors, 429
and 5xx with backoff (`max_retries`) and stops at `timeout`; the concurrency limit is a semaphore per endpoint
so a burst of cards cannot flood a small server.
"""

from __future__ import annotations

import json
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


class LangChainClient:
    """One chat completion from a LangChain chat model, with its output held to the draft's JSON schema.

    `schema_style` says how: `structured` (LangChain's `with_structured_output`, each provider's own way:
    OpenAI's json_schema, Anthropic's tools, Ollama's format) or `json_object` (llama.cpp's server, which
    compiles `{"type": "json_object", "schema": ...}` into a grammar and takes no json_schema)."""

    def __init__(self, chat_model: Any, *, model: str, endpoint: str, schema_style: str = "structured",
                 concurrency: int = 4) -> None:
        self.model = model
        self.endpoint = endpoint
        self.schema_style = schema_style
        self._chat = chat_model
        self._slots = _semaphore(endpoint, concurrency)

    @classmethod
    def configured(cls, *, provider: str, model: str, base_url: str | None = None, api_key: str | None = None,
                   timeout_s: float = 30.0, max_retries: int = 2, concurrency: int = 4,
                   schema_style: str = "structured", http_client: httpx.Client | None = None) -> LangChainClient:
        """The chat model `init_chat_model` builds for `provider`; a provider whose package is missing is an
        LLMError naming the package, raised when the client is built (the draft then falls back to the template
        and says why)."""
        from langchain.chat_models import init_chat_model

        options: dict[str, Any] = {"timeout": timeout_s, "max_retries": max_retries}
        if base_url:
            options["base_url"] = base_url
        if api_key or (provider == "openai" and base_url):
            # The openai client insists on a key even for a local server that ignores it.
            options["api_key"] = api_key or "not-needed"
        if http_client is not None:
            options["http_client"] = http_client
        try:
            chat = init_chat_model(model, model_provider=provider, **options)
        except ImportError as exc:
            raise LLMError("unavailable", f"LLM_PROVIDER={provider} needs its LangChain package: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - an unknown provider, a client that wants a key it was not given
            raise LLMError("unavailable", f"LLM_PROVIDER={provider}: {type(exc).__name__}: {exc}") from None
        return cls(chat, model=model, endpoint=base_url or provider, schema_style=schema_style,
                   concurrency=concurrency)

    def _runnable(self, schema: dict[str, Any] | None, max_tokens: int, temperature: float) -> Any:
        chat = self._chat.bind(max_tokens=max_tokens, temperature=temperature)
        if schema is None:
            return chat
        if self.schema_style == "json_object":
            return chat.bind(response_format={"type": "json_object", "schema": schema})
        # LangChain names the output after the schema's title; a schema without one is named `draft`.
        return chat.with_structured_output({"title": "draft", **schema}, include_raw=True)

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int, schema: dict[str, Any] | None = None,
                 temperature: float = 0.2) -> Completion:
        started = time.perf_counter()
        try:
            runnable = self._runnable(schema, max_tokens, temperature)
            with self._slots:
                answer = runnable.invoke([(m["role"], m["content"]) for m in messages])
        except Exception as exc:  # noqa: BLE001 - each provider raises its own; a draft falls back either way
            raise _failure(exc, self.endpoint) from None
        latency_ms = (time.perf_counter() - started) * 1000
        if isinstance(answer, dict):  # with_structured_output(include_raw=True): the message and the parsed value
            message, parsed = answer.get("raw"), answer.get("parsed")
            text = json.dumps(parsed, ensure_ascii=False) if parsed is not None else _text(message)
        else:
            message = answer
            text = _text(message)
        if not text.strip():
            raise LLMError("empty", f"{self.endpoint} returned no text")
        usage = getattr(message, "usage_metadata", None) or {}
        metadata = getattr(message, "response_metadata", None) or {}
        return Completion(text=text, model=metadata.get("model_name") or metadata.get("model") or self.model,
                          prompt_tokens=usage.get("input_tokens", 0), completion_tokens=usage.get("output_tokens", 0),
                          latency_ms=latency_ms)


def _text(message: Any) -> str:
    content = getattr(message, "content", "") if message is not None else ""
    if isinstance(content, list):  # content blocks (Anthropic): the text parts
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return content or ""


def _failure(exc: Exception, endpoint: str) -> LLMError:
    """What a provider's exception means for a draft: timeout, refused (the server answered an error) or
    unavailable (anything else: cannot connect, a broken answer)."""
    name, detail = type(exc).__name__, str(exc)[:200]
    if "timeout" in name.lower():
        return LLMError("timeout", f"no answer from {endpoint} in time ({name}: {detail})")
    status = getattr(exc, "status_code", None)
    if status is not None:
        return LLMError("refused", f"{endpoint} answered {status}: {detail}")
    return LLMError("unavailable", f"cannot reach {endpoint} or use its answer ({name}: {detail})")
