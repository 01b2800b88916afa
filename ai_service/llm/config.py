"""Configuration of the LLM layer, as plain pydantic models the service settings fill in.

Nothing here reads the environment: ``ai_service.settings.Settings`` (or a test) builds an
:class:`LLMConfig` and injects it, so importing the LLM layer does no work.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

ProviderName = Literal["local", "anthropic", "ollama"]

#: prompts/ at the repository root (the service runs from a checkout or a copied tree).
DEFAULT_PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AnthropicConfig(_Frozen):
    api_key: SecretStr | None = None
    base_url: str | None = Field(default=None, description="None = the SDK's default endpoint")
    #: Overrides the model a prompt pins; None keeps the prompt's pin.
    model: str | None = None
    default_model: str = "claude-haiku-5-5"
    timeout_seconds: float = Field(default=30.0, gt=0)


class OllamaConfig(_Frozen):
    host: str = "http://127.0.0.1:11434"
    model: str | None = None
    default_model: str = "qwen3:8b"
    timeout_seconds: float = Field(default=60.0, gt=0)
    #: Context window; Ollama's small default silently cuts long documents.
    num_ctx: int = Field(default=8192, gt=0)
    keep_alive: str = "10m"
    enabled: bool = Field(
        default=False, description="Ollama needs no key, so it is used only when switched on"
    )


class RetryConfig(_Frozen):
    max_attempts: int = Field(default=3, ge=1)
    initial_wait_seconds: float = Field(default=0.5, ge=0)
    max_wait_seconds: float = Field(default=8.0, ge=0)
    #: A Retry-After longer than this is not waited for: the local engine answers instead.
    max_retry_after_seconds: float = Field(default=20.0, ge=0)


class BreakerConfig(_Frozen):
    failure_threshold: int = Field(default=5, ge=1)
    reset_after_seconds: float = Field(default=30.0, gt=0)


class ModelPrice(_Frozen):
    """USD per million tokens."""

    input: Decimal
    output: Decimal
    cache_write: Decimal | None = None
    cache_read: Decimal | None = None


class LLMConfig(_Frozen):
    provider: ProviderName = "local"
    #: Per-task override of ``provider`` (e.g. chat on anthropic, the rest local).
    task_providers: dict[str, ProviderName] = Field(default_factory=dict)
    anthropic: AnthropicConfig = Field(default_factory=AnthropicConfig)
    ollama: OllamaConfig = Field(default_factory=OllamaConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    prompts_dir: Path = DEFAULT_PROMPTS_DIR
    #: Active prompt version per task; a task not listed uses version 1.
    prompt_versions: dict[str, int] = Field(default_factory=dict)
    #: When set, only prompts whose fingerprint an eval approved may reach a provider.
    evaluated_fingerprints: frozenset[str] | None = None
    redis_url: str | None = None
    cache_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0)
    cache_prefix: str = "dte-ai:llm:"
    #: Extra or corrected prices, merged over :data:`ai_service.llm.accounting.DEFAULT_PRICES`.
    prices: dict[str, ModelPrice] = Field(default_factory=dict)

    def provider_for(self, task: str) -> ProviderName:
        return self.task_providers.get(task, self.provider)
