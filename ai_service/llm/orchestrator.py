"""The :class:`~ai_service.llm.base.LLMClient` use cases receive.

One call goes: configured provider for the task -> prompt fingerprint (and, when configured,
the eval gate) -> response cache -> circuit breaker -> provider with tenacity retries on
429/5xx/transport errors -> validation against the task's pydantic schema. Any failure on that
way makes the use case's local engine answer, and the result says so in ``fallback_reason``.
Tokens and cost are recorded per company whichever engine answered, since a truncated or
invalid answer is billed too.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_base, wait_exponential_jitter

from ai_service.llm.accounting import CallRecord, InMemoryLedger, PriceTable, UsageLedger
from ai_service.llm.base import (
    LOCAL,
    Engine,
    LLMProvider,
    LLMResult,
    LocalEngine,
    ProviderResponse,
    RenderedPrompt,
    Usage,
)
from ai_service.llm.cache import CachedResponse, CacheKey, ResponseCache, cache_from_url
from ai_service.llm.config import LLMConfig, RetryConfig
from ai_service.llm.errors import (
    FallbackReason,
    InvalidOutput,
    NotConfigured,
    ProviderFailure,
    RateLimited,
)
from ai_service.llm.prompts import prompt_fingerprint
from ai_service.llm.providers.local import run_local
from ai_service.llm.registry import ProviderRegistry

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)


def output_schema_of(schema: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema, a fresh dict each call (generating it costs ~0.15 ms)."""
    loaded: dict[str, Any] = json.loads(_schema_json(schema))
    return loaded


@functools.lru_cache(maxsize=256)
def _schema_json(schema: type[BaseModel]) -> str:
    return json.dumps(schema.model_json_schema())


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, ProviderFailure) and exc.transient


class _WaitForProvider(wait_base):
    """Honour Retry-After when the provider sends one, else exponential back-off with jitter."""

    def __init__(self, config: RetryConfig) -> None:
        self._backoff = wait_exponential_jitter(
            multiplier=config.initial_wait_seconds,
            max=config.max_wait_seconds,
            jitter=config.initial_wait_seconds,
        )

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return exc.retry_after
        return float(self._backoff(state))


class _StopOnLongRetryAfter(stop_base):
    """Give up at once when the provider asks us to come back later than we will wait."""

    def __init__(self, limit: float) -> None:
        self._limit = limit

    def __call__(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return (
            isinstance(exc, RateLimited)
            and exc.retry_after is not None
            and exc.retry_after > self._limit
        )


class Orchestrator:
    def __init__(
        self,
        registry: ProviderRegistry,
        *,
        cache: ResponseCache | None = None,
        ledger: UsageLedger | None = None,
        prices: PriceTable | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``sleep`` is what retries wait with (tests pass a recorder instead of sleeping)."""
        self.registry = registry
        self.config: LLMConfig = registry.config
        self.cache = cache if cache is not None else cache_from_url(None)
        self.ledger: UsageLedger = ledger if ledger is not None else InMemoryLedger()
        self.prices = prices if prices is not None else PriceTable(self.config.prices)
        self._sleep = sleep

    def complete(
        self,
        task: str,
        prompt: RenderedPrompt,
        schema: type[T],
        *,
        company_id: str,
        local: LocalEngine[T],
        timeout: float | None = None,
    ) -> LLMResult[T]:
        if not company_id:
            # Cache keys and accounting are per company; an unscoped call would share both.
            raise ValueError("company_id is required")
        if prompt.task != task:
            raise ValueError(f"prompt {prompt.prompt_id} is for task {prompt.task!r}, not {task!r}")
        started = time.perf_counter()
        name = self.config.provider_for(task)
        if name == LOCAL:
            return self._local(task, schema, local, company_id, started, reason=None)
        try:
            provider = self.registry.get(name)
        except NotConfigured as exc:
            log.warning("llm %s for task %s not configured: %s", name, task, exc.message)
            return self._local(
                task, schema, local, company_id, started, reason=FallbackReason.NOT_CONFIGURED
            )
        model = provider.model_for(prompt)
        output_schema = output_schema_of(schema)
        fingerprint = prompt_fingerprint(
            prompt, output_schema=output_schema, provider=name, model=model
        )
        gate = self.config.evaluated_fingerprints
        if gate is not None and fingerprint not in gate:
            return self._local(
                task,
                schema,
                local,
                company_id,
                started,
                reason=FallbackReason.PROMPT_UNEVALUATED,
                fingerprint=fingerprint,
            )
        key = CacheKey(company_id, fingerprint, name, model, prompt.input_sha256)
        hit = self._from_cache(key, schema)
        if hit is not None:
            result = LLMResult(
                output=hit[0],
                engine=Engine(name, hit[1]),
                latency_ms=_ms_since(started),
                cached=True,
                fingerprint=fingerprint,
            )
            self._record(task, company_id, result, billed=result.engine)
            return result

        breaker = self.registry.breaker(name)
        if not breaker.allow():
            return self._local(
                task,
                schema,
                local,
                company_id,
                started,
                reason=FallbackReason.CIRCUIT_OPEN,
                fingerprint=fingerprint,
            )
        call_timeout = timeout if timeout is not None else _default_timeout(self.config, name)
        attempts = 0
        billed = Engine(name, model)
        try:
            response, attempts = self._call_with_retries(
                provider, prompt, output_schema, model=model, timeout=call_timeout
            )
            billed = Engine(name, response.model or model)
            output = _validate(schema, response)
        except ProviderFailure as exc:
            if exc.unhealthy:
                breaker.record_failure()
            else:
                breaker.record_success()  # it answered; the answer was the problem
            log.info(
                "llm fallback task=%s provider=%s model=%s reason=%s company=%s",
                task,
                name,
                model,
                exc.code,
                company_id,
            )
            return self._local(
                task,
                schema,
                local,
                company_id,
                started,
                reason=exc.reason,
                fingerprint=fingerprint,
                usage=exc.usage,
                billed=billed,
                attempts=max(attempts, exc.attempts),
            )
        except BaseException:
            breaker.release()
            raise
        breaker.record_success()
        self.cache.set(
            key,
            CachedResponse(data=output.model_dump(mode="json"), model=billed.model),
            ttl_seconds=self.config.cache_ttl_seconds,
        )
        result = LLMResult(
            output=output,
            engine=billed,
            usage=response.usage,
            cost_usd=self.prices.cost(billed, response.usage),
            latency_ms=_ms_since(started),
            attempts=attempts,
            fingerprint=fingerprint,
        )
        self._record(task, company_id, result, billed=billed)
        return result

    def _call_with_retries(
        self,
        provider: LLMProvider,
        prompt: RenderedPrompt,
        output_schema: Mapping[str, Any],
        *,
        model: str,
        timeout: float,
    ) -> tuple[ProviderResponse, int]:
        retry_config = self.config.retry
        retrying = Retrying(
            stop=stop_after_attempt(retry_config.max_attempts)
            | _StopOnLongRetryAfter(retry_config.max_retry_after_seconds),
            wait=_WaitForProvider(retry_config),
            retry=retry_if_exception(_is_transient),
            sleep=self._sleep,
            reraise=True,
        )
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    response = provider.generate(
                        prompt, output_schema, model=model, timeout=timeout
                    )
        except ProviderFailure as exc:
            exc.attempts = attempts
            raise
        return response, attempts

    def _from_cache(self, key: CacheKey, schema: type[T]) -> tuple[T, str] | None:
        cached = self.cache.get(key)
        if cached is None:
            return None
        try:
            return schema.model_validate(cached.data), cached.model
        except ValidationError:
            log.warning("llm cache entry no longer matches %s; ignoring it", schema.__name__)
            return None

    def _local(
        self,
        task: str,
        schema: type[T],
        local: LocalEngine[T],
        company_id: str,
        started: float,
        *,
        reason: FallbackReason | None,
        fingerprint: str | None = None,
        usage: Usage | None = None,
        billed: Engine | None = None,
        attempts: int = 0,
        batch: bool = False,
    ) -> LLMResult[T]:
        output, engine = run_local(local, schema)
        usage = usage or Usage()
        cost = (
            self.prices.cost(billed, usage, batch=batch)
            if billed and usage.total_tokens
            else Decimal(0)
        )
        result = LLMResult(
            output=output,
            engine=engine,
            fallback_reason=reason.value if reason else None,
            usage=usage,
            cost_usd=cost,
            latency_ms=_ms_since(started),
            attempts=attempts,
            fingerprint=fingerprint,
        )
        self._record(task, company_id, result, billed=billed or engine)
        return result

    def _record(
        self, task: str, company_id: str, result: LLMResult[Any], *, billed: Engine
    ) -> None:
        self.ledger.record(
            CallRecord(
                company_id=company_id,
                task=task,
                engine=billed,
                usage=result.usage,
                cost_usd=result.cost_usd,
                fallback_reason=result.fallback_reason,
                cached=result.cached,
            )
        )


def _validate(schema: type[T], response: ProviderResponse) -> T:
    try:
        return schema.model_validate(response.data)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "<root>" for e in exc.errors())
        raise InvalidOutput(
            f"answer does not match {schema.__name__} ({fields})", usage=response.usage
        ) from exc


def _default_timeout(config: LLMConfig, provider: str) -> float:
    if provider == "anthropic":
        return config.anthropic.timeout_seconds
    if provider == "ollama":
        return config.ollama.timeout_seconds
    return 30.0


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def build_llm_client(
    config: LLMConfig,
    *,
    ledger: UsageLedger | None = None,
    factories: Mapping[str, Any] | None = None,
) -> Orchestrator:
    """The production wiring: registry from config, Redis cache when ``redis_url`` is set."""
    return Orchestrator(
        ProviderRegistry(config, factories=factories),
        cache=cache_from_url(config.redis_url, prefix=config.cache_prefix),
        ledger=ledger,
    )
