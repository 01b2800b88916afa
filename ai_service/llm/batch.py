"""Bulk work through Anthropic's Message Batches API: create, poll, read results.

Batches cost half and may take up to 24 hours, so they suit nightly classification of a whole
month, not a user waiting in Odoo. :func:`complete_batch` gives every item the same guarantees
as :meth:`Orchestrator.complete`: cached answers are reused, and every item the batch could not
answer usably is answered by the local engine with its ``fallback_reason``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from ai_service.llm.accounting import PriceTable
from ai_service.llm.base import Engine, LLMResult, LocalEngine, ProviderResponse, RenderedPrompt
from ai_service.llm.cache import CachedResponse, CacheKey
from ai_service.llm.errors import (
    FallbackReason,
    NotConfigured,
    ProviderError,
    ProviderFailure,
    ProviderTimeout,
)
from ai_service.llm.prompts import prompt_fingerprint
from ai_service.llm.providers.anthropic import AnthropicProvider, parse_message, translate_error

if TYPE_CHECKING:
    from anthropic.types.messages import MessageBatch

    from ai_service.llm.orchestrator import Orchestrator

T = TypeVar("T", bound=BaseModel)
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True)
class BatchItem(Generic[T]):
    custom_id: str
    prompt: RenderedPrompt
    local: LocalEngine[T]


class AnthropicBatches:
    def __init__(
        self,
        provider: AnthropicProvider,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._provider = provider
        self._sleep = sleep
        self._clock = clock

    def submit(
        self,
        items: Sequence[tuple[str, RenderedPrompt]],
        output_schema: Mapping[str, Any],
        *,
        model: str | None = None,
    ) -> str:
        """Create the batch; returns its id. ``custom_id`` must be unique, ``[a-zA-Z0-9_-]``."""
        requests = []
        for custom_id, prompt in items:
            if not _CUSTOM_ID.match(custom_id):
                raise ValueError(f"custom_id {custom_id!r} must match {_CUSTOM_ID.pattern}")
            chosen = model or self._provider.model_for(prompt)
            params = self._provider.request_params(prompt, output_schema, model=chosen)
            requests.append({"custom_id": custom_id, "params": params})
        try:
            batch = self._provider.client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        except Exception as exc:
            raise translate_error(exc) from exc
        return batch.id

    def wait(
        self, batch_id: str, *, poll_seconds: float = 60.0, max_wait_seconds: float = 86_400.0
    ) -> MessageBatch:
        """Poll until the batch ends; ProviderTimeout if it has not within ``max_wait_seconds``."""
        deadline = self._clock() + max_wait_seconds
        while True:
            try:
                batch = self._provider.client.messages.batches.retrieve(batch_id)
            except Exception as exc:
                raise translate_error(exc) from exc
            if batch.processing_status == "ended":
                return batch
            if self._clock() + poll_seconds > deadline:
                raise ProviderTimeout(f"batch {batch_id} still {batch.processing_status}")
            self._sleep(poll_seconds)

    def results(self, batch_id: str) -> dict[str, ProviderResponse | ProviderFailure]:
        """Each request's parsed answer, or why it has none (results come in any order)."""
        try:
            lines = list(self._provider.client.messages.batches.results(batch_id))
        except Exception as exc:
            raise translate_error(exc) from exc
        outcome: dict[str, ProviderResponse | ProviderFailure] = {}
        for line in lines:
            result = line.result
            if result.type == "succeeded":
                try:
                    outcome[line.custom_id] = parse_message(result.message)
                except ProviderFailure as exc:
                    outcome[line.custom_id] = exc
            elif result.type == "errored":
                error_type = getattr(getattr(result.error, "error", None), "type", "error")
                outcome[line.custom_id] = ProviderError(
                    f"batch request errored ({error_type})",
                    transient=error_type in {"api_error", "overloaded_error"},
                )
            elif result.type == "expired":
                outcome[line.custom_id] = ProviderTimeout("batch request expired unprocessed")
            else:
                outcome[line.custom_id] = ProviderError(f"batch request {result.type}")
        return outcome


def complete_batch(
    orchestrator: Orchestrator,
    task: str,
    items: Sequence[BatchItem[T]],
    schema: type[T],
    *,
    company_id: str,
    poll_seconds: float = 60.0,
    max_wait_seconds: float = 86_400.0,
    batches: AnthropicBatches | None = None,
) -> dict[str, LLMResult[T]]:
    """Answer every item, through one Message Batch when the task's provider is anthropic."""
    from ai_service.llm.orchestrator import _validate, output_schema_of

    if not company_id:
        raise ValueError("company_id is required")
    if len({item.custom_id for item in items}) != len(items):
        raise ValueError("custom_id values must be unique within a batch")
    config = orchestrator.config
    if config.provider_for(task) != "anthropic":
        return {
            item.custom_id: orchestrator.complete(
                task, item.prompt, schema, company_id=company_id, local=item.local
            )
            for item in items
        }
    started = time.perf_counter()
    results: dict[str, LLMResult[T]] = {}

    def fall_back(item: BatchItem[T], reason: FallbackReason, **extra: Any) -> None:
        results[item.custom_id] = orchestrator._local(
            task, schema, item.local, company_id, started, reason=reason, **extra
        )

    try:
        provider = orchestrator.registry.get("anthropic")
    except NotConfigured:
        for item in items:
            fall_back(item, FallbackReason.NOT_CONFIGURED)
        return results
    assert isinstance(provider, AnthropicProvider)
    runner = batches or AnthropicBatches(provider)
    output_schema = output_schema_of(schema)
    keys: dict[str, CacheKey] = {}
    pending: list[BatchItem[T]] = []
    for item in items:
        model = provider.model_for(item.prompt)
        fingerprint = prompt_fingerprint(
            item.prompt, output_schema=output_schema, provider="anthropic", model=model
        )
        gate = config.evaluated_fingerprints
        if gate is not None and fingerprint not in gate:
            fall_back(item, FallbackReason.PROMPT_UNEVALUATED, fingerprint=fingerprint)
            continue
        key = CacheKey(company_id, fingerprint, "anthropic", model, item.prompt.input_sha256)
        hit = orchestrator._from_cache(key, schema)
        if hit is not None:
            result = LLMResult(
                output=hit[0],
                engine=Engine("anthropic", hit[1]),
                cached=True,
                fingerprint=fingerprint,
            )
            orchestrator._record(task, company_id, result, billed=result.engine)
            results[item.custom_id] = result
        else:
            keys[item.custom_id] = key
            pending.append(item)
    if not pending:
        return results
    breaker = orchestrator.registry.breaker("anthropic")
    if not breaker.allow():
        for item in pending:
            fall_back(
                item, FallbackReason.CIRCUIT_OPEN, fingerprint=keys[item.custom_id].fingerprint
            )
        return results
    try:
        batch_id = runner.submit([(i.custom_id, i.prompt) for i in pending], output_schema)
        runner.wait(batch_id, poll_seconds=poll_seconds, max_wait_seconds=max_wait_seconds)
        answers = runner.results(batch_id)
    except ProviderFailure as exc:
        if exc.unhealthy:
            breaker.record_failure()
        else:
            breaker.record_success()
        for item in pending:
            fall_back(item, exc.reason, fingerprint=keys[item.custom_id].fingerprint)
        return results
    breaker.record_success()
    prices: PriceTable = orchestrator.prices
    for item in pending:
        key = keys[item.custom_id]
        answer = answers.get(item.custom_id) or ProviderError("batch returned no result for it")
        billed = Engine("anthropic", key.model)
        try:
            if isinstance(answer, ProviderFailure):
                raise answer
            billed = Engine("anthropic", answer.model or key.model)
            output = _validate(schema, answer)
        except ProviderFailure as exc:
            fall_back(
                item,
                exc.reason,
                fingerprint=key.fingerprint,
                usage=exc.usage,
                billed=billed,
                attempts=1,
                batch=True,
            )
            continue
        orchestrator.cache.set(
            key,
            CachedResponse(data=output.model_dump(mode="json"), model=billed.model),
            ttl_seconds=config.cache_ttl_seconds,
        )
        result = LLMResult(
            output=output,
            engine=billed,
            usage=answer.usage,
            cost_usd=prices.cost(billed, answer.usage, batch=True),
            attempts=1,
            fingerprint=key.fingerprint,
        )
        orchestrator._record(task, company_id, result, billed=billed)
        results[item.custom_id] = result
    return results
