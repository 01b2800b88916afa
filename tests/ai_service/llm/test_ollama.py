"""The ollama provider against an in-process /api/chat speaking Ollama's real JSON format.

The ``ollama`` client builds its own httpx client and passes extra keyword arguments to it, so
the mock is ``transport=httpx.MockTransport(...)`` (``httpx`` here is whatever the client
imports: httpx, or httpx2 once an application has called ``httpx2.alias_httpx()``).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from ai_service.llm.config import OllamaConfig
from ai_service.llm.providers.ollama import OllamaProvider

from .conftest import COMPANY, LLM_ANSWER, Classification, CountingEngine, MakeOrchestrator, run


def chat_response(
    content: str, *, done_reason: str = "stop", model: str = "qwen3:8b"
) -> dict[str, Any]:
    """A non-streaming /api/chat body as Ollama sends it."""
    return {
        "model": model,
        "created_at": "2026-12-01T18:04:05.123456789Z",
        "message": {"role": "assistant", "content": content},
        "done": True,
        "done_reason": done_reason,
        "total_duration": 4_935_886_791,
        "load_duration": 534_986_708,
        "prompt_eval_count": 412,
        "prompt_eval_duration": 107_345_000,
        "eval_count": 38,
        "eval_duration": 4_289_432_000,
    }


class FakeOllama:
    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.script = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert (request.method, request.url.path) == ("POST", "/api/chat")
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        return step

    def body(self, index: int = -1) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.requests[index].content)
        return body


def ollama_on(api: FakeOllama, **config: Any) -> dict[str, Any]:
    def factory(cfg: Any) -> OllamaProvider:
        return OllamaProvider(cfg.ollama, transport=httpx.MockTransport(api))

    return {
        "factories": {"ollama": factory},
        "provider": "ollama",
        "ollama": OllamaConfig(enabled=True, host="http://127.0.0.1:11434", **config),
    }


def ok() -> httpx.Response:
    return httpx.Response(200, json=chat_response(json.dumps(LLM_ANSWER)))


def test_valid_answer_comes_from_ollama(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    api = FakeOllama(ok())
    orchestrator = make_orchestrator(**ollama_on(api))
    result = run(orchestrator, prompt, local)
    assert result.output == Classification.model_validate(LLM_ANSWER)
    assert str(result.engine) == "ollama/qwen3:8b" and result.fallback_reason is None
    assert (result.usage.input_tokens, result.usage.output_tokens) == (412, 38)
    assert result.cost_usd == 0  # own hardware
    assert local.calls == 0
    assert orchestrator.ledger.totals(COMPANY).usage.input_tokens == 412


def test_request_sends_schema_num_ctx_and_timeout(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    api = FakeOllama(ok())
    run(make_orchestrator(**ollama_on(api, num_ctx=16384)), prompt, local, timeout=7.0)
    body = api.body()
    assert body["model"] == "qwen3:8b"
    assert body["stream"] is False
    assert body["format"] == Classification.model_json_schema()
    assert body["options"]["num_ctx"] == 16384
    assert body["options"]["num_predict"] == 1024
    assert body["options"]["temperature"] == 0  # pinned in the prompt's params.ollama
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][1]["content"] == prompt.user
    assert api.requests[0].extensions["timeout"]["read"] == 7.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried_then_fall_back(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine, status: int
) -> None:
    api = FakeOllama(httpx.Response(status, json={"error": "llama runner process has terminated"}))
    result = run(make_orchestrator(**ollama_on(api)), prompt, local)
    assert result.fallback_reason == "provider_error"
    assert result.engine.provider == "local" and local.calls == 1
    assert len(api.requests) == 3


def test_server_error_then_success(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    api = FakeOllama(httpx.Response(500, json={"error": "busy"}), ok())
    result = run(make_orchestrator(**ollama_on(api)), prompt, local)
    assert result.engine.provider == "ollama" and result.attempts == 2


def test_busy_server_is_rate_limited(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine, sleeps: Any
) -> None:
    api = FakeOllama(httpx.Response(429, json={"error": "server busy, please try again"}))
    result = run(make_orchestrator(**ollama_on(api)), prompt, local)
    assert result.fallback_reason == "rate_limited" and len(api.requests) == 3
    assert len(sleeps.waits) == 2


def test_missing_model_is_not_retried(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    api = FakeOllama(
        httpx.Response(404, json={"error": 'model "qwen3:8b" not found, try pulling it first'})
    )
    result = run(make_orchestrator(**ollama_on(api)), prompt, local)
    assert result.fallback_reason == "provider_error" and len(api.requests) == 1


def test_timeout_falls_back(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    api = FakeOllama(httpx.ReadTimeout("model still loading"))
    result = run(make_orchestrator(**ollama_on(api)), prompt, local)
    assert result.fallback_reason == "timeout" and len(api.requests) == 1 and local.calls == 1


def test_unreachable_server_is_a_provider_error(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    api = FakeOllama(httpx.ConnectError("connection refused"))
    result = run(make_orchestrator(**ollama_on(api)), prompt, local)
    assert result.fallback_reason == "provider_error" and len(api.requests) == 3


def test_malformed_body_is_a_provider_error(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    api = FakeOllama(httpx.Response(200, content=b'{"model": "qwen3:8b", "message": {'))
    result = run(make_orchestrator(**ollama_on(api)), prompt, local)
    assert result.fallback_reason == "provider_error" and local.calls == 1


@pytest.mark.parametrize(
    "content",
    ['{"account_code": "5203"', "<think>hmm</think> 5203", '{"account_code": 5203, "x": 1}'],
)
def test_invalid_output_falls_back(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine, content: str
) -> None:
    api = FakeOllama(httpx.Response(200, json=chat_response(content)))
    result = run(make_orchestrator(**ollama_on(api)), prompt, local)
    assert result.fallback_reason == "invalid_output" and len(api.requests) == 1
    assert result.usage.output_tokens == 38  # the work was done, and is accounted


def test_length_stop_is_truncated(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    cut = chat_response('{"account_code": "52', done_reason="length")
    result = run(
        make_orchestrator(**ollama_on(FakeOllama(httpx.Response(200, json=cut)))), prompt, local
    )
    assert result.fallback_reason == "truncated"


def test_disabled_ollama_is_not_configured(
    make_orchestrator: MakeOrchestrator, prompt: Any, local: CountingEngine
) -> None:
    result = run(make_orchestrator(provider="ollama"), prompt, local)
    assert result.fallback_reason == "not_configured" and local.calls == 1


def test_configured_model_overrides_the_pin(prompt: Any) -> None:
    provider = OllamaProvider(OllamaConfig(enabled=True, model="llama3.1:8b"))
    assert provider.model_for(prompt) == "llama3.1:8b"
    assert OllamaProvider(OllamaConfig(enabled=True)).model_for(prompt) == "qwen3:8b"


ALIASED = r"""
import json, sys
import httpx2
httpx2.alias_httpx()  # what an application does first, before anything imports httpx
import httpx
assert httpx is httpx2
from pydantic import BaseModel
from ai_service.llm.base import LocalEngine
from ai_service.llm.config import LLMConfig, OllamaConfig
from ai_service.llm.orchestrator import Orchestrator
from ai_service.llm.prompts import PromptRegistry
from ai_service.llm.providers.ollama import OllamaProvider
from ai_service.llm.registry import ProviderRegistry

class Out(BaseModel):
    account_code: str

def handler(request):
    return httpx2.Response(200, json=json.loads(sys.argv[1]))

registry = ProviderRegistry(
    LLMConfig(provider="ollama", ollama=OllamaConfig(enabled=True)),
    factories={
        "ollama": lambda c: OllamaProvider(c.ollama, transport=httpx2.MockTransport(handler))
    },
)
prompt = PromptRegistry(LLMConfig().prompts_dir).render(
    "classification", {"document": "x", "accounts": [], "corrections": []}
)
result = Orchestrator(registry).complete(
    "classification", prompt, Out, company_id="c",
    local=LocalEngine("rules", lambda: Out(account_code="local")),
)
print(result.engine, result.fallback_reason, result.output.account_code)
"""


def test_ollama_works_on_httpx2_once_the_application_aliases_httpx() -> None:
    """In a fresh process (here httpx is already imported, so aliasing would be refused)."""
    import subprocess
    import sys

    body = json.dumps(chat_response('{"account_code": "5203"}'))
    out = subprocess.run(
        [sys.executable, "-c", ALIASED, body], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ollama/qwen3:8b None 5203"
