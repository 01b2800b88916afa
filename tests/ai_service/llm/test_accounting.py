"""Prices per model and the per-company ledger."""

from __future__ import annotations

import threading
from decimal import Decimal

from ai_service.llm.accounting import CallRecord, InMemoryLedger, PriceTable
from ai_service.llm.base import Engine, Usage
from ai_service.llm.config import ModelPrice

HAIKU = Engine("anthropic", "claude-haiku-5-5")


def test_cost_counts_every_token_kind() -> None:
    usage = Usage(
        input_tokens=1_000_000,
        output_tokens=100_000,
        cache_write_tokens=200_000,
        cache_read_tokens=2_000_000,
    )
    # 1.00 + 0.50 + 0.25 + 0.20
    assert PriceTable().cost(HAIKU, usage) == Decimal("1.950000")
    assert PriceTable().cost(HAIKU, usage, batch=True) == Decimal("0.975000")


def test_unknown_model_is_unpriced_not_free() -> None:
    usage = Usage(input_tokens=10, output_tokens=10)
    assert PriceTable().cost(Engine("anthropic", "claude-future-9"), usage) is None
    assert PriceTable().cost(Engine("ollama", "qwen3:8b"), usage) == 0
    overrides = {"claude-future-9": ModelPrice(input=Decimal(2), output=Decimal(8))}
    # without cache prices, cached tokens are charged as input
    usage = Usage(input_tokens=500_000, output_tokens=0, cache_read_tokens=500_000)
    assert PriceTable(overrides).cost(Engine("anthropic", "claude-future-9"), usage) == Decimal(
        "2.000000"
    )


def test_ledger_keeps_companies_apart() -> None:
    ledger = InMemoryLedger()
    usage = Usage(input_tokens=100, output_tokens=10)
    ledger.record(CallRecord("a", "classification", HAIKU, usage, Decimal("0.000150")))
    ledger.record(
        CallRecord(
            "a",
            "classification",
            HAIKU,
            usage,
            Decimal("0.000150"),
            fallback_reason="invalid_output",
        )
    )
    ledger.record(CallRecord("a", "chat", Engine("anthropic", "claude-future-9"), usage, None))
    ledger.record(
        CallRecord(
            "a",
            "chat",
            Engine("local", "rules-v1"),
            Usage(),
            Decimal(0),
            fallback_reason="circuit_open",
        )
    )
    ledger.record(CallRecord("b", "chat", HAIKU, Usage(), Decimal(0), cached=True))

    a = ledger.totals("a")
    assert (a.calls, a.provider_calls, a.fallbacks, a.unpriced_calls) == (4, 3, 2, 1)
    assert a.cost_usd == Decimal("0.000300")
    assert a.usage == Usage(input_tokens=300, output_tokens=30)
    assert a.by_engine["anthropic/claude-haiku-5-5"] == Usage(input_tokens=200, output_tokens=20)
    b = ledger.totals("b")
    assert (b.calls, b.cache_hits, b.provider_calls, b.cost_usd) == (1, 1, 0, Decimal(0))
    a.calls = 99  # totals are a copy
    assert ledger.totals("a").calls == 4


def test_ledger_is_safe_across_threads() -> None:
    ledger = InMemoryLedger()
    record = CallRecord("a", "t", HAIKU, Usage(input_tokens=1), Decimal("0.000001"))

    def work() -> None:
        for _ in range(500):
            ledger.record(record)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    totals = ledger.totals("a")
    assert totals.calls == 2000 and totals.cost_usd == Decimal("0.002000")
