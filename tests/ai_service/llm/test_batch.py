"""Bulk work through the Message Batches API: create, poll, JSONL results, per-item fallback."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx2
import pytest

from ai_service.llm.base import LocalEngine
from ai_service.llm.batch import AnthropicBatches, BatchItem, complete_batch
from ai_service.llm.orchestrator import Orchestrator
from ai_service.llm.prompts import PromptRegistry

from .conftest import (
    COMPANY,
    LLM_ANSWER,
    Classification,
    CountingEngine,
    FakeClock,
    MakeOrchestrator,
    classification_input,
)
from .test_anthropic import anthropic_on, message

BATCH_ID = "msgbatch_01HkcTjaV5uDC8jWR4ZsDV8d"
RESULTS_URL = f"https://api.anthropic.com/v1/messages/batches/{BATCH_ID}/results"


def batch_body(status: str) -> dict[str, Any]:
    ended = status == "ended"
    return {
        "id": BATCH_ID,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {
            "processing": 0 if ended else 5,
            "succeeded": 3 if ended else 0,
            "errored": 1 if ended else 0,
            "canceled": 0,
            "expired": 1 if ended else 0,
        },
        "ended_at": "2026-12-01T19:10:00Z" if ended else None,
        "created_at": "2026-12-01T19:00:00Z",
        "expires_at": "2026-12-02T19:00:00Z",
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": RESULTS_URL if ended else None,
    }


def jsonl_results() -> bytes:
    lines = [
        {
            "custom_id": "doc-1",
            "result": {"type": "succeeded", "message": message(json.dumps(LLM_ANSWER))},
        },
        {
            "custom_id": "doc-2",
            "result": {
                "type": "errored",
                "error": {
                    "type": "error",
                    "error": {"type": "invalid_request_error", "message": "prompt is too long"},
                },
            },
        },
        {"custom_id": "doc-3", "result": {"type": "expired"}},
        {
            "custom_id": "doc-4",
            "result": {
                "type": "succeeded",
                "message": message('{"account_code"', stop_reason="max_tokens"),
            },
        },
        {"custom_id": "doc-5", "result": {"type": "succeeded", "message": message("no JSON here")}},
    ]
    return "\n".join(json.dumps(line) for line in reversed(lines)).encode() + b"\n"


class FakeBatchesApi:
    def __init__(self, polls_before_end: int = 2) -> None:
        self.polls_before_end = polls_before_end
        self.created: list[dict[str, Any]] = []
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        path = request.url.path
        if request.method == "POST" and path == "/v1/messages/batches":
            self.created.append(json.loads(request.content))
            return httpx2.Response(200, json=batch_body("in_progress"))
        if request.method == "GET" and path == f"/v1/messages/batches/{BATCH_ID}":
            self.polls_before_end -= 1
            status = "ended" if self.polls_before_end < 0 else "in_progress"
            return httpx2.Response(200, json=batch_body(status))
        if request.method == "GET" and str(request.url) == RESULTS_URL:
            return httpx2.Response(
                200, content=jsonl_results(), headers={"content-type": "application/binary"}
            )
        return httpx2.Response(
            404, json={"type": "error", "error": {"type": "not_found_error", "message": path}}
        )


def items(
    prompts: PromptRegistry, local: CountingEngine, n: int = 5
) -> list[BatchItem[Classification]]:
    return [
        BatchItem(
            custom_id=f"doc-{i}",
            prompt=prompts.render("classification", classification_input(i)),
            local=LocalEngine("rules-v1", local),
        )
        for i in range(1, n + 1)
    ]


def make(make_orchestrator: MakeOrchestrator, api: FakeBatchesApi) -> Orchestrator:
    return make_orchestrator(**anthropic_on(api))


def test_batch_answers_each_item_or_falls_back_with_its_reason(
    make_orchestrator: MakeOrchestrator, prompts: PromptRegistry, local: CountingEngine, sleeps: Any
) -> None:
    api = FakeBatchesApi(polls_before_end=2)
    orchestrator = make(make_orchestrator, api)
    provider = orchestrator.registry.get("anthropic")
    runner = AnthropicBatches(provider, sleep=sleeps, clock=FakeClock())  # type: ignore[arg-type]

    results = complete_batch(
        orchestrator,
        "classification",
        items(prompts, local),
        Classification,
        company_id=COMPANY,
        poll_seconds=30,
        batches=runner,
    )

    assert results["doc-1"].engine.provider == "anthropic"
    assert results["doc-1"].output == Classification.model_validate(LLM_ANSWER)
    # half the interactive price of test_anthropic's 0.000480
    assert results["doc-1"].cost_usd == Decimal("0.000240")
    reasons = {cid: r.fallback_reason for cid, r in results.items()}
    assert reasons == {
        "doc-1": None,
        "doc-2": "provider_error",
        "doc-3": "timeout",
        "doc-4": "truncated",
        "doc-5": "invalid_output",
    }
    assert all(results[c].engine.provider == "local" for c in ("doc-2", "doc-3", "doc-4", "doc-5"))
    assert local.calls == 4
    assert sleeps.waits == [30, 30]  # polled three times, slept between

    [created] = api.created
    assert [r["custom_id"] for r in created["requests"]] == [f"doc-{i}" for i in range(1, 6)]
    params = created["requests"][0]["params"]
    assert params["model"] == "claude-haiku-5-5" and params["max_tokens"] == 1024
    assert params["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert params["output_config"]["format"]["type"] == "json_schema"

    totals = orchestrator.ledger.totals(COMPANY)
    assert totals.calls == 5 and totals.fallbacks == 4
    assert totals.cost_usd == Decimal("0.000720")  # three billed answers at the batch rate


def test_answered_items_are_cached_for_the_next_batch(
    make_orchestrator: MakeOrchestrator, prompts: PromptRegistry, local: CountingEngine
) -> None:
    api = FakeBatchesApi(polls_before_end=0)
    orchestrator = make(make_orchestrator, api)
    runner = AnthropicBatches(orchestrator.registry.get("anthropic"), sleep=lambda _: None)  # type: ignore[arg-type]
    complete_batch(
        orchestrator,
        "classification",
        items(prompts, local),
        Classification,
        company_id=COMPANY,
        batches=runner,
    )
    again = complete_batch(
        orchestrator,
        "classification",
        items(prompts, local)[:1],
        Classification,
        company_id=COMPANY,
        batches=runner,
    )
    assert again["doc-1"].cached and len(api.created) == 1


def test_batch_that_never_ends_falls_back_with_timeout(
    make_orchestrator: MakeOrchestrator, prompts: PromptRegistry, local: CountingEngine
) -> None:
    api = FakeBatchesApi(polls_before_end=10**6)
    orchestrator = make(make_orchestrator, api)
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        clock.now += seconds

    runner = AnthropicBatches(orchestrator.registry.get("anthropic"), sleep=sleep, clock=clock)  # type: ignore[arg-type]
    results = complete_batch(
        orchestrator,
        "classification",
        items(prompts, local, 2),
        Classification,
        company_id=COMPANY,
        poll_seconds=600,
        max_wait_seconds=3600,
        batches=runner,
    )
    assert {r.fallback_reason for r in results.values()} == {"timeout"}
    assert clock.now - 1000.0 <= 3600


def test_batch_on_another_provider_goes_item_by_item(
    make_orchestrator: MakeOrchestrator, prompts: PromptRegistry, local: CountingEngine
) -> None:
    orchestrator = make_orchestrator(provider="local")
    results = complete_batch(
        orchestrator, "classification", items(prompts, local, 3), Classification, company_id=COMPANY
    )
    assert [r.engine.provider for r in results.values()] == ["local"] * 3


def test_custom_ids_are_checked(
    make_orchestrator: MakeOrchestrator, prompts: PromptRegistry, local: CountingEngine
) -> None:
    orchestrator = make(make_orchestrator, FakeBatchesApi())
    twice = items(prompts, local, 1) * 2
    with pytest.raises(ValueError, match="unique"):
        complete_batch(orchestrator, "classification", twice, Classification, company_id=COMPANY)
    runner = AnthropicBatches(orchestrator.registry.get("anthropic"))  # type: ignore[arg-type]
    prompt = prompts.render("classification", classification_input())
    with pytest.raises(ValueError, match="custom_id"):
        runner.submit([("folio 12/33", prompt)], Classification.model_json_schema())
