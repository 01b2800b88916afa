"""Chat through the real orchestrator and Anthropic adapter, over a mock of the Messages API."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from ai_service.llm.cache import MemoryCache
from ai_service.llm.config import LLMConfig
from ai_service.llm.orchestrator import Orchestrator
from ai_service.llm.prompts import PromptRegistry
from ai_service.llm.registry import ProviderRegistry
from ai_service.usecases.chat import answer
from ai_service.usecases.retrieval import build_retriever
from tests.ai_service.llm.test_anthropic import FakeMessagesApi, anthropic_on, api_error, message

QUESTION = "¿Cuántos días tengo para reclamar una factura?"
QUOTE = "el receptor tiene 8 días corridos desde la recepción del DTE en el SII"


def _orchestrator(api: FakeMessagesApi) -> Orchestrator:
    wiring = anthropic_on(api)
    factories = wiring.pop("factories")
    registry = ProviderRegistry(LLMConfig(**wiring), factories=factories)
    return Orchestrator(registry, cache=MemoryCache(), sleep=lambda _s: None)


def _reply(payload: dict[str, Any]) -> httpx2.Response:
    return httpx2.Response(200, json=message(json.dumps(payload, ensure_ascii=False)))


def _ask(api: FakeMessagesApi) -> Any:
    prompt = PromptRegistry.from_config(LLMConfig()).template("chat")
    return answer(
        QUESTION, build_retriever(None), llm=_orchestrator(api), prompt=prompt, company_id="c-a"
    )


def test_a_well_cited_llm_answer_is_used() -> None:
    api = FakeMessagesApi(
        _reply(
            {
                "answer": "Tiene 8 días corridos desde que el SII recibió la factura [1].",
                "answerable": True,
                "citations": [{"source_id": "sii:recepcion#1", "quote": QUOTE}],
            }
        )
    )
    result = _ask(api)
    assert result.engine.startswith("anthropic/")
    assert result.fallback_reason is None
    assert result.answer.startswith("Tiene 8 días")
    # the retrieved passages went to the model as data inside <sources>
    sent = json.dumps(api.body(), ensure_ascii=False)
    assert "sii:recepcion#1" in sent and "<sources>" in sent


@pytest.mark.parametrize(
    "citations",
    [
        [{"source_id": "company:invoice:77777777-7/33/1", "quote": QUOTE}],  # not retrieved
        [{"source_id": "sii:recepcion#1", "quote": "el plazo es de 30 días hábiles"}],  # invented
        [],  # no citation at all
    ],
)
def test_llm_answers_with_bad_citations_fall_back_to_the_passages(citations: list[Any]) -> None:
    api = FakeMessagesApi(
        _reply({"answer": "El plazo es de 30 días.", "answerable": True, "citations": citations})
    )
    result = _ask(api)
    assert result.engine == "local/retrieval-v1"
    assert result.fallback_reason == "invalid_citations"
    assert "8 días" in result.answer and "30 días" not in result.answer


def test_provider_failure_falls_back_with_its_reason() -> None:
    api = FakeMessagesApi(api_error(500, "api_error"))
    result = _ask(api)
    assert result.engine == "local/retrieval-v1"
    assert result.fallback_reason is not None
    assert result.citations[0].id == "sii:recepcion#1"
