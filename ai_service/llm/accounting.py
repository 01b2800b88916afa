"""Token and cost accounting per call and per company.

:class:`UsageLedger` is the interface; :class:`InMemoryLedger` keeps totals for one process
(tests, the CLI, a single worker). A database-backed ledger implements the same two methods.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from ai_service.llm.base import Engine, Usage
from ai_service.llm.config import ModelPrice

_MILLION = Decimal(1_000_000)
#: Message Batches are billed at half the interactive price.
BATCH_DISCOUNT = Decimal("0.5")


def _price(input_: str, output: str) -> ModelPrice:
    # Anthropic bills a 5-minute cache write at 1.25x and a cache read at 0.1x the input price.
    unit = Decimal(input_)
    return ModelPrice(
        input=unit,
        output=Decimal(output),
        cache_write=unit * Decimal("1.25"),
        cache_read=unit * Decimal("0.1"),
    )


#: USD per million tokens, by exact model id. Verify against the provider's price page when a
#: model is pinned, and correct here or through ``LLMConfig.prices``; a model missing from the
#: table is reported with cost ``None``, never as free.
DEFAULT_PRICES: Mapping[str, ModelPrice] = {
    "claude-haiku-4-5": _price("1", "5"),
    "claude-haiku-4-5-20251001": _price("1", "5"),
    "claude-sonnet-4-6": _price("3", "15"),
    "claude-opus-4-6": _price("5", "25"),
    "claude-haiku-5-5": _price("1", "5"),
    "claude-sonnet-5-5": _price("3", "15"),
    "claude-opus-5-5": _price("5", "25"),
}

#: Providers that run on our own hardware: no per-token bill.
FREE_PROVIDERS = frozenset({"local", "ollama"})


class PriceTable:
    def __init__(self, overrides: Mapping[str, ModelPrice] | None = None) -> None:
        self._prices = {**DEFAULT_PRICES, **(overrides or {})}

    def cost(self, engine: Engine, usage: Usage, *, batch: bool = False) -> Decimal | None:
        """USD for ``usage`` on ``engine``; None when the model is not priced."""
        if engine.provider in FREE_PROVIDERS:
            return Decimal(0)
        price = self._prices.get(engine.model)
        if price is None:
            return None
        cache_write = price.cache_write if price.cache_write is not None else price.input
        cache_read = price.cache_read if price.cache_read is not None else price.input
        total = (
            usage.input_tokens * price.input
            + usage.output_tokens * price.output
            + usage.cache_write_tokens * cache_write
            + usage.cache_read_tokens * cache_read
        ) / _MILLION
        if batch:
            total *= BATCH_DISCOUNT
        return total.quantize(Decimal("0.000001"))


@dataclass(frozen=True)
class CallRecord:
    company_id: str
    task: str
    engine: Engine
    usage: Usage
    cost_usd: Decimal | None
    fallback_reason: str | None = None
    cached: bool = False


@dataclass
class CompanyTotals:
    calls: int = 0
    provider_calls: int = 0
    fallbacks: int = 0
    cache_hits: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: Decimal = Decimal(0)
    #: Calls whose model had no price; their cost is missing from ``cost_usd``.
    unpriced_calls: int = 0
    by_engine: dict[str, Usage] = field(default_factory=dict)


class UsageLedger(Protocol):
    def record(self, record: CallRecord) -> None: ...

    def totals(self, company_id: str) -> CompanyTotals: ...


class InMemoryLedger:
    """Per-company running totals, safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[str, CompanyTotals] = {}

    def record(self, record: CallRecord) -> None:
        with self._lock:
            totals = self._totals.setdefault(record.company_id, CompanyTotals())
            totals.calls += 1
            totals.fallbacks += record.fallback_reason is not None
            totals.cache_hits += record.cached
            if record.usage.total_tokens:
                totals.provider_calls += 1
                totals.usage = totals.usage + record.usage
                key = str(record.engine)
                totals.by_engine[key] = totals.by_engine.get(key, Usage()) + record.usage
            if record.cost_usd is None:
                totals.unpriced_calls += 1
            else:
                totals.cost_usd += record.cost_usd

    def totals(self, company_id: str) -> CompanyTotals:
        with self._lock:
            current = self._totals.get(company_id, CompanyTotals())
            return CompanyTotals(
                calls=current.calls,
                provider_calls=current.provider_calls,
                fallbacks=current.fallbacks,
                cache_hits=current.cache_hits,
                usage=current.usage,
                cost_usd=current.cost_usd,
                unpriced_calls=current.unpriced_calls,
                by_engine=dict(current.by_engine),
            )
