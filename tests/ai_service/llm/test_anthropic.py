"""The anthropic provider against an in-process Messages API speaking the real JSON format.

The SDK (>= 2) is built on httpx2, so the mock is an ``httpx2.MockTransport`` inside an
``httpx2.Client`` given as ``http_client``: the SDK refuses an ``httpx.Client`` outright, and
with those objects ``httpx2.alias_httpx()`` is not needed (it is only for code that says
``import httpx``, such as respx, and must run before anything imports httpx).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx2
import pytest
from pydantic import SecretStr

from ai_service.llm.config import AnthropicConfig
from ai_service.llm.providers.anthropic import AnthropicProvider

from .conftest import COMPANY, LLM_ANSWER, Classification, CountingEngine, MakeOrchestrator, run

Handler = Callable[[httpx2.Request], httpx2.Response]
KEY = SecretStr("sk-ant-test-key-not-real")


def message(
    text: str,
    *,
    stop_reason: str = "end_turn",
    model: str = "claude-haiku-5-5",
    input_tokens: int = 180,
    output_tokens: int = 42,
    cache_read: int = 900,
    cache_write: int = 0,
) -> dict[str, Any]:
    """A Messages API response body as the API sends it."""
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": cache_write,
            "cache_read_input_tokens": cache_read,
            "service_tier": "standard",
        },
    }


def api_error(status: int, kind: str, headers: dict[str, str] | None = None) -> httpx2.Response:
    body = {
        "type": "error",
        "error": {"type": kind, "message": f"{kind} for the test"},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }
    return httpx2.Response(status, json=body, headers=headers or {})


class FakeMessagesApi:
    """Answers each POST /v1/messages with the next scripted response; records requests."""

    def __init__(self, *responses: httpx2.Response | Exception) -> None:
        self.script = list(responses)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        assert request.url.path == "/v1/messages"
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        return step

    def body(self, index: int = -1) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.requests[index].content)
        return body


def anthropic_on(handler: Handler, **config: Any) -> dict[str, Any]:
    def factory(cfg: Any) -> AnthropicProvider:
        client = httpx2.Client(transport=httpx2.MockTransport(handler))
        return AnthropicProvider(cfg.anthropic, http_client=client)

    return {
        "factories": {"anthropic": factory},
        "provider": "anthropic",
        "anthropic": AnthropicConfig(api_key=KEY, **config),
    }


def ok() -> httpx2.Response:
    return httpx2.Response(200, json=message(json.dumps(LLM_ANSWER)))


def test_valid_answer_comes_from_anthropic_with_usage_and_cost(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    api = FakeMessagesApi(ok())
    orchestrator = make_orchestrator(**anthropic_on(api))

    result = run(orchestrator, prompt, local, timeout=12.5)

    assert result.output == Classification.model_validate(LLM_ANSWER)
    assert (result.engine.provider, result.engine.model) == ("anthropic", "claude-haiku-5-5")
    assert result.fallback_reason is None
    assert local.calls == 0
    assert (result.usage.input_tokens, result.usage.output_tokens) == (180, 42)
    assert result.usage.cache_read_tokens == 900
    # 180 x $1 + 42 x $5 + 900 x $0.10 per million tokens
    assert result.cost_usd == Decimal("0.000480")
    assert result.attempts == 1
    assert len(result.fingerprint or "") == 64
    totals = orchestrator.ledger.totals(COMPANY)
    assert (totals.calls, totals.provider_calls, totals.cost_usd) == (1, 1, Decimal("0.000480"))
    assert orchestrator.ledger.totals("company-b").calls == 0


def test_request_uses_structured_output_prompt_caching_and_explicit_limits(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    api = FakeMessagesApi(ok())
    run(make_orchestrator(**anthropic_on(api)), prompt, local, timeout=12.5)

    request = api.requests[0]
    body = api.body()
    assert request.headers["authorization"] == f"Bearer {KEY.get_secret_value()}"
    assert body["model"] == "claude-haiku-5-5"  # pinned by prompts/classification/v1.md
    assert body["max_tokens"] == 1024
    assert "temperature" not in body
    [system] = body["system"]
    assert system["cache_control"] == {"type": "ephemeral"}
    assert system["text"] == prompt.system and "$" not in system["text"]
    assert body["messages"] == [{"role": "user", "content": prompt.user}]
    schema = body["output_config"]["format"]
    assert schema["type"] == "json_schema"
    assert set(schema["schema"]["required"]) == {"account_code", "confidence", "rationale"}
    assert schema["schema"]["additionalProperties"] is False
    timeout = request.extensions["timeout"]
    assert timeout["read"] == 12.5


def test_configured_model_overrides_the_prompt_pin(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    api = FakeMessagesApi(
        httpx2.Response(200, json=message(json.dumps(LLM_ANSWER), model="claude-sonnet-5-5"))
    )
    result = run(make_orchestrator(**anthropic_on(api, model="claude-sonnet-5-5")), prompt, local)
    assert api.body()["model"] == "claude-sonnet-5-5"
    assert str(result.engine) == "anthropic/claude-sonnet-5-5"
    assert result.cost_usd == Decimal("0.001440")  # 180x3 + 42x15 + 900x0.3 per million


def test_429_waits_for_retry_after_then_succeeds(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine, sleeps: Any
) -> None:
    api = FakeMessagesApi(api_error(429, "rate_limit_error", {"retry-after": "3"}), ok())
    result = run(make_orchestrator(**anthropic_on(api)), prompt, local)
    assert result.engine.provider == "anthropic" and result.fallback_reason is None
    assert result.attempts == 2 and len(api.requests) == 2
    assert sleeps.waits == [3.0]


def test_429_with_a_long_retry_after_falls_back_at_once(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine, sleeps: Any
) -> None:
    api = FakeMessagesApi(api_error(429, "rate_limit_error", {"retry-after": "600"}))
    result = run(make_orchestrator(**anthropic_on(api)), prompt, local)
    assert result.fallback_reason == "rate_limited"
    assert result.engine.provider == "local" and result.engine.model == "rules-v1"
    assert result.output == local.answer and local.calls == 1
    assert len(api.requests) == 1 and sleeps.waits == []


@pytest.mark.parametrize(
    ("status", "kind"), [(500, "api_error"), (529, "overloaded_error"), (503, "api_error")]
)
def test_5xx_is_retried_then_falls_back(
    make_orchestrator: MakeOrchestrator,
    prompt: Any,
    local: CountingEngine,
    sleeps: Any,
    status: int,
    kind: str,
) -> None:
    api = FakeMessagesApi(api_error(status, kind))
    result = run(make_orchestrator(**anthropic_on(api)), prompt, local)
    assert result.fallback_reason == "provider_error"
    assert result.engine.provider == "local" and local.calls == 1
    assert len(api.requests) == 3 and result.attempts == 3
    assert len(sleeps.waits) == 2 and all(0 < w <= 8 for w in sleeps.waits)


def test_5xx_then_success_returns_the_llm_answer(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    api = FakeMessagesApi(api_error(529, "overloaded_error"), ok())
    result = run(make_orchestrator(**anthropic_on(api)), prompt, local)
    assert result.engine.provider == "anthropic" and result.attempts == 2 and local.calls == 0


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error")],
)
def test_client_errors_are_not_retried(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine, status: int, kind: str
) -> None:
    api = FakeMessagesApi(api_error(status, kind))
    result = run(make_orchestrator(**anthropic_on(api)), prompt, local)
    assert result.fallback_reason == "provider_error" and len(api.requests) == 1


def test_transport_error_is_retried(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    api = FakeMessagesApi(httpx2.ConnectError("connection refused"), ok())
    result = run(make_orchestrator(**anthropic_on(api)), prompt, local)
    assert result.engine.provider == "anthropic" and len(api.requests) == 2


def test_timeout_falls_back_without_retrying(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    api = FakeMessagesApi(httpx2.ReadTimeout("the model took too long"))
    result = run(make_orchestrator(**anthropic_on(api)), prompt, local, timeout=2.0)
    assert result.fallback_reason == "timeout"
    assert result.engine.provider == "local" and local.calls == 1
    assert len(api.requests) == 1


def test_unreadable_response_body_is_a_provider_error(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    garbage = httpx2.Response(
        200, content=b"<html>502 Bad Gateway</html>", headers={"content-type": "application/json"}
    )
    result = run(make_orchestrator(**anthropic_on(FakeMessagesApi(garbage))), prompt, local)
    assert result.fallback_reason == "provider_error" and local.calls == 1


@pytest.mark.parametrize(
    "text",
    [
        '{"account_code": "5203", "confidence": 0.9',  # cut JSON
        "Claro, la cuenta es 5203.",  # prose
        '{"account_code": "5203", "confidence": 7, "rationale": "x"}',  # violates the schema
        '{"account_code": "5203", "rationale": "x"}',  # misses a required field
    ],
)
def test_invalid_output_falls_back_and_is_still_billed(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine, text: str
) -> None:
    api = FakeMessagesApi(httpx2.Response(200, json=message(text)))
    orchestrator = make_orchestrator(**anthropic_on(api))
    result = run(orchestrator, prompt, local)
    assert result.fallback_reason == "invalid_output"
    assert result.output == local.answer and result.engine.provider == "local"
    assert len(api.requests) == 1
    assert result.usage.output_tokens == 42 and result.cost_usd == Decimal("0.000480")
    totals = orchestrator.ledger.totals(COMPANY)
    assert totals.fallbacks == 1 and totals.cost_usd == Decimal("0.000480")
    assert totals.by_engine["anthropic/claude-haiku-5-5"].output_tokens == 42


def test_max_tokens_stop_is_truncated(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    cut = message('{"account_code": "52', stop_reason="max_tokens", output_tokens=1024)
    result = run(
        make_orchestrator(**anthropic_on(FakeMessagesApi(httpx2.Response(200, json=cut)))),
        prompt,
        local,
    )
    assert result.fallback_reason == "truncated" and result.usage.output_tokens == 1024


def test_refusal_falls_back_and_does_not_trip_the_breaker(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    refusal = message("", stop_reason="refusal", output_tokens=3)
    api = FakeMessagesApi(httpx2.Response(200, json=refusal))
    orchestrator = make_orchestrator(**anthropic_on(api), breaker={"failure_threshold": 1})
    for _ in range(3):
        assert run(orchestrator, prompt, local).fallback_reason == "refusal"
    assert len(api.requests) == 3  # still calling: a refusal says nothing about health


def test_circuit_opens_after_failures_and_recovers(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine, clock: Any
) -> None:
    api = FakeMessagesApi(api_error(500, "api_error"))
    orchestrator = make_orchestrator(
        **anthropic_on(api),
        retry={"max_attempts": 1},
        breaker={"failure_threshold": 2, "reset_after_seconds": 30},
    )
    reasons = [run(orchestrator, prompt, local).fallback_reason for _ in range(4)]
    assert reasons == ["provider_error", "provider_error", "circuit_open", "circuit_open"]
    assert len(api.requests) == 2  # the open circuit spared two doomed calls

    clock.now += 31
    api.script = [ok()]
    result = run(orchestrator, prompt, local)
    assert result.engine.provider == "anthropic" and len(api.requests) == 3
    assert orchestrator.registry.breaker("anthropic").state == "closed"


def test_missing_api_key_is_not_configured(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    result = run(make_orchestrator(provider="anthropic"), prompt, local)
    assert result.fallback_reason == "not_configured"
    assert result.engine.provider == "local" and local.calls == 1


def test_same_input_is_answered_from_the_cache_per_company(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    api = FakeMessagesApi(ok())
    orchestrator = make_orchestrator(**anthropic_on(api))
    first = run(orchestrator, prompt, local)
    second = run(orchestrator, prompt, local)
    assert len(api.requests) == 1
    assert second.cached and not first.cached
    assert second.output == first.output and second.engine == first.engine
    assert second.cost_usd == 0 and second.usage.total_tokens == 0

    other = orchestrator.complete(
        "classification", prompt, Classification, company_id="company-b", local=local.engine()
    )
    assert not other.cached and len(api.requests) == 2  # no sharing across companies
    assert orchestrator.ledger.totals(COMPANY).cache_hits == 1


def test_unevaluated_prompt_is_not_sent(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    api = FakeMessagesApi(ok())
    gated = make_orchestrator(**anthropic_on(api), evaluated_fingerprints=frozenset({"0" * 64}))
    result = run(gated, prompt, local)
    assert result.fallback_reason == "prompt_unevaluated" and api.requests == []

    approved = make_orchestrator(
        **anthropic_on(api), evaluated_fingerprints=frozenset({result.fingerprint})
    )
    assert run(approved, prompt, local).engine.provider == "anthropic"


def test_local_provider_makes_no_call(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    api = FakeMessagesApi(ok())
    config = anthropic_on(api)
    config["provider"] = "local"
    result = run(make_orchestrator(**config), prompt, local)
    assert result.engine.provider == "local" and result.fallback_reason is None
    assert api.requests == [] and local.calls == 1


def test_task_override_selects_the_provider(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    api = FakeMessagesApi(ok())
    config = anthropic_on(api)
    config["provider"] = "local"
    config["task_providers"] = {"classification": "anthropic"}
    assert run(make_orchestrator(**config), prompt, local).engine.provider == "anthropic"


def test_provider_refuses_to_build_without_a_key() -> None:
    from ai_service.llm.errors import NotConfigured

    with pytest.raises(NotConfigured):
        AnthropicProvider(AnthropicConfig(api_key=SecretStr("  ")))


def test_calls_must_name_the_company(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    with pytest.raises(ValueError, match="company_id"):
        make_orchestrator(provider="local").complete(
            "classification", prompt, Classification, company_id="", local=local.engine()
        )
