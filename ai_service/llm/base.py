"""The provider interface every use case talks to, and the values crossing it.

Use cases depend only on :class:`LLMClient`: they hand it a rendered prompt, the pydantic model
the answer must satisfy and their deterministic local engine, and get back an
:class:`LLMResult` that says which engine produced the answer and, if the local engine stood
in, why.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

T = TypeVar("T", bound=BaseModel)

LOCAL = "local"


@dataclass(frozen=True)
class Usage:
    """Tokens billed for one call (zero for the local engine and for cache hits)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
        )

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_write_tokens
            + self.cache_read_tokens
        )


@dataclass(frozen=True)
class Engine:
    """Who produced a result: ``provider`` is local/anthropic/ollama, ``model`` the exact model
    (for the local engine, the use case's engine name, e.g. ``rules-v3``)."""

    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


def canonical_json(value: Any) -> str:
    """One spelling per value, so hashes of equal inputs are equal."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RenderedPrompt:
    """A prompt template filled with one input.

    ``system`` is the template's stable part (no input in it, so providers can cache it);
    ``user`` carries the input. ``template_text`` is the unfilled template: together with the
    output schema, provider, model and generation parameters it makes the fingerprint
    (:func:`ai_service.llm.prompts.prompt_fingerprint`), which names what an eval measured.
    """

    task: str
    prompt_id: str
    version: int
    system: str
    user: str
    template_text: str
    input_sha256: str
    max_tokens: int
    models: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def params_for(self, provider: str) -> dict[str, Any]:
        return dict(self.params.get(provider, {}))


@dataclass(frozen=True)
class ProviderResponse:
    """What a provider returns: parsed JSON, not yet validated against the task's schema."""

    data: Any
    model: str
    usage: Usage = field(default_factory=Usage)
    stop_reason: str | None = None


class LLMProvider(Protocol):
    """One remote backend. ``generate`` raises :class:`~ai_service.llm.errors.ProviderFailure`
    subclasses only; retries, breaker, cache and fallback live in the orchestrator."""

    name: str

    def model_for(self, prompt: RenderedPrompt) -> str: ...

    def generate(
        self,
        prompt: RenderedPrompt,
        output_schema: Mapping[str, Any],
        *,
        model: str,
        timeout: float,
    ) -> ProviderResponse: ...


@dataclass(frozen=True)
class LocalEngine(Generic[T]):
    """A use case's deterministic engine for one input: ``run()`` must not touch the network."""

    name: str
    run: Callable[[], T]


@dataclass(frozen=True)
class LLMResult(Generic[T]):
    output: T
    engine: Engine
    fallback_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    #: USD; None when the model has no entry in the price table (never a guessed zero).
    cost_usd: Decimal | None = Decimal(0)
    latency_ms: float = 0.0
    cached: bool = False
    attempts: int = 0
    #: The prompt fingerprint sent to the provider (None when no provider was asked).
    fingerprint: str | None = None


class LLMClient(Protocol):
    """What use cases receive. Implemented by :class:`ai_service.llm.orchestrator.Orchestrator`."""

    def complete(
        self,
        task: str,
        prompt: RenderedPrompt,
        schema: type[T],
        *,
        company_id: str,
        local: LocalEngine[T],
        timeout: float | None = None,
    ) -> LLMResult[T]: ...
