"""All settings in one place: environment variables and `.env`, with embedded defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRET = "change-me"


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
    challenger_share: float = Field(default=0.1, ge=0.0, le=1.0)
    score_chunk_size: int = Field(default=20_000, ge=100)
    # Share of each chunk (by confidence) that gets reasons; the rest is ranked, not offered this run.
    score_explain_top: float = Field(default=1.0, gt=0.0, le=1.0)
    mlflow_tracking_uri: str | None = None
    demo_customers: int = Field(default=20_000, ge=100)

    # Template library: the files `outreach demo` imports, and the vector store (embedded folder by
    # default, a Chroma server when set).
    library_dir: Path = Path("script_library")
    chroma_url: str | None = None
    embedding_model: str = "all-MiniLM-L6-v2"

    # LLM: a local OpenAI-compatible server by default, any compatible endpoint in production.
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout_s: float = 30.0

    @model_validator(mode="after")
    def _no_placeholder_secret_in_production(self) -> Settings:
        if self.environment == "production" and self.secret_key == PLACEHOLDER_SECRET:
            raise ValueError("SECRET_KEY must be set to a real secret when ENVIRONMENT=production")
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
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests build their own `Settings` instead."""
    return Settings()
