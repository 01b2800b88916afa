"""Service configuration from ``DTE_AI_*`` environment variables, read only when asked for."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SECRET_KEY_FILE = "secret.key"  # noqa: S105 - a file name, not a secret
#: Shorter keys make the HKDF-derived encryption key only as strong as a guessable password.
MIN_SECRET_KEY_CHARS = 32
_GENERATE_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class ConfigurationError(RuntimeError):
    """The service is misconfigured; the message says which variable to set."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DTE_AI_", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str = Field(
        default="", description="SQLAlchemy URL; default sqlite:///<data_dir>/dte-ai.db"
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="encrypts certificates, their passwords and CAF private keys at rest, and "
        "keys the API-key HMAC; with the embedded SQLite default it is generated into "
        "<data_dir>/secret.key on first use",
    )
    admin_token: SecretStr | None = Field(
        default=None, description="required to create companies and API keys over HTTP"
    )
    trusted_sii_keys: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="extra CAF-signing public keys (PEM paths), for certification and tests; "
        "a JSON list or a comma-separated string",
    )
    folio_low_water_mark: int = Field(default=10, ge=0)
    max_request_bytes: int = Field(default=2 * 1024 * 1024, gt=0)
    sii_environment: Literal["certificacion", "produccion"] = "certificacion"
    sii_base_url: str | None = Field(
        default=None,
        description="where the SII services are; default the environment's host "
        "(point it at `dte-ai sii-sim` for tests and demos)",
    )
    outbox_batch_size: int = Field(default=50, ge=1, le=2000)
    outbox_recovery_grace_seconds: float = Field(
        default=120.0, ge=0, description="wait before settling an upload a dead worker left"
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for the LLM response cache and rate limits; none = in-memory",
    )
    redis_prefix: str = Field(
        default="dte-ai:",
        description="namespace of every Redis key (several deployments may share one)",
    )
    rate_limit: str = Field(
        default="600/minute", description="per API key, in `limits` notation (e.g. 100/second)"
    )
    llm_provider: Literal["local", "anthropic", "ollama"] = Field(
        default="local", description="who answers the AI tasks; local needs no network or key"
    )
    anthropic_api_key: SecretStr | None = None
    anthropic_model: str | None = Field(default=None, description="overrides the prompts' pins")
    ollama_host: str = "http://127.0.0.1:11434"
    ollama_model: str | None = None
    prompts_dir: Path | None = Field(default=None, description="default: prompts/ of the checkout")
    llm_allow_unevaluated_prompts: bool = Field(
        default=False,
        description="send prompts that have no passing recorded evaluation in evals/prompts.lock "
        "(off: such prompts run on the local engine, fallback_reason prompt_unevaluated)",
    )
    llm_prompts_lock: Path | None = Field(default=None, description="default evals/prompts.lock")
    celery_broker_url: str | None = Field(
        default=None, description="Redis for batch jobs on Celery; none = jobs run in-process"
    )
    celery_result_backend: str | None = Field(default=None, description="default the broker")
    jobs_in_process: bool = False
    jobs_workers: int = Field(default=2, ge=1, le=64)
    jobs_queue: str = "dte-ai-jobs"
    jobs_key_prefix: str = "dte-ai:"
    jobs_chunk_size: int = Field(default=50, ge=1)
    jobs_max_documents: int = Field(default=20000, ge=1)
    jobs_visibility_timeout: float = Field(default=3600.0, gt=0)
    chroma_path: Path | None = Field(default=None, description="default <data_dir>/chroma")
    chroma_host: str | None = Field(default=None, description="a Chroma server instead")
    chroma_port: int = Field(default=8000, gt=0, lt=65536)
    embedding_model_path: Path | None = Field(
        default=None, description="a local sentence-transformers model; default the bundled one"
    )
    extraction_max_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    extraction_max_pages: int = Field(default=20, gt=0)
    ocr_dpi: int = Field(default=300, ge=100, le=600)
    ocr_lang: str = "spa"
    confidence_threshold: float = Field(
        default=0.6, ge=0, le=1, description="below it an AI result abstains (needs review)"
    )

    @field_validator("trusted_sii_keys", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'dte-ai.db'}"
        return self

    def llm_config(self) -> Any:
        """The LLM layer's configuration (:class:`ai_service.llm.config.LLMConfig`)."""
        from ai_service.llm.config import AnthropicConfig, LLMConfig, OllamaConfig

        extra: dict[str, Any] = {"prompts_dir": self.prompts_dir} if self.prompts_dir else {}
        config = LLMConfig(
            provider=self.llm_provider,
            anthropic=AnthropicConfig(api_key=self.anthropic_api_key, model=self.anthropic_model),
            ollama=OllamaConfig(
                host=self.ollama_host,
                model=self.ollama_model,
                enabled=self.llm_provider == "ollama",
            ),
            redis_url=self.redis_url,
            **extra,
        )
        from evals.runtime import gated

        return gated(
            config,
            allow_unevaluated=self.llm_allow_unevaluated_prompts,
            lock=self.llm_prompts_lock,
        )

    def build_llm_client(self, config: Any = None) -> Any:
        """An orchestrator when a provider is configured, else False (local engines only);
        ``config`` is :meth:`llm_config`'s result when the caller already has it."""
        if self.llm_provider == "local":
            return False
        from ai_service.llm.orchestrator import build_llm_client

        return build_llm_client(config or self.llm_config())

    @property
    def is_embedded(self) -> bool:
        return self.database_url.startswith("sqlite")

    def secret_key_bytes(self) -> bytes:
        """The at-rest secret; generated once into ``<data_dir>/secret.key`` for the embedded DB.

        A shared database (PostgreSQL) is read by several hosts that must all hold the same key,
        so there the key has to be configured explicitly instead of generated per host.
        """
        if self.secret_key is not None:
            value = self.secret_key.get_secret_value().strip()
            if len(value) < MIN_SECRET_KEY_CHARS:
                raise ConfigurationError(
                    f"DTE_AI_SECRET_KEY must be at least {MIN_SECRET_KEY_CHARS} characters; "
                    f"generate one with: {_GENERATE_HINT}"
                )
            return value.encode()
        if not self.is_embedded:
            raise ConfigurationError(
                "DTE_AI_SECRET_KEY is not set: with a shared database every instance needs the "
                f"same key; generate one with: {_GENERATE_HINT}"
            )
        return _load_or_create_key(self.data_dir / SECRET_KEY_FILE)


def _load_or_create_key(path: Path) -> bytes:
    if path.exists():
        value = path.read_bytes().strip()
        if len(value) < MIN_SECRET_KEY_CHARS:
            raise ConfigurationError(f"{path} holds a key that is too short; delete it or fix it")
        return value
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32).encode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret.")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(value + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        # link() publishes the complete file or fails if another process won the race, so two
        # processes starting together never each use a different key.
        os.link(tmp, path)
    except FileExistsError:
        return _load_or_create_key(path)
    finally:
        os.unlink(tmp)
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first call."""
    return Settings()
