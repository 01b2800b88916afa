"""With an LLM configured, abstentions get a checked second opinion through the real
orchestrator and Anthropic adapter (mocked Messages API); confident local answers are kept."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from ai_service.llm.cache import MemoryCache
from ai_service.llm.config import LLMConfig
from ai_service.llm.orchestrator import Orchestrator
from ai_service.llm.registry import ProviderRegistry
from tests.ai_service.llm.test_anthropic import FakeMessagesApi, anthropic_on, message
from tests.ai_service.test_ai_api import _company, company  # noqa: F401 - fixture

ODD = {
    "emisor_rut": "99500840-8",
    "emisor_name": "Servicios Esotéricos Nebulosa SpA",
    "tipo_dte": 33,
    "folio": 7,
    "fecha": "2026-06-01",
    "neto": 50000,
    "iva": 9500,
    "total": 59500,
    "lines": [{"line_no": 1, "name": "Lectura de tarot corporativa", "amount": 50000}],
}


def _with_llm(client: TestClient, api: FakeMessagesApi) -> None:
    wiring = anthropic_on(api)
    factories = wiring.pop("factories")
    registry = ProviderRegistry(LLMConfig(**wiring), factories=factories)
    client.app.state.ctx._llm = Orchestrator(registry, cache=MemoryCache(), sleep=lambda _s: None)


def _reply(payload: dict[str, Any]) -> httpx2.Response:
    return httpx2.Response(200, json=message(json.dumps(payload, ensure_ascii=False)))


def _odd(tenant: Any) -> dict[str, Any]:
    return {"invoice": {**ODD, "receptor_rut": tenant.rut}}


def test_local_engine_abstains_on_an_odd_invoice(client: TestClient, company: Any) -> None:  # noqa: F811
    body = client.post("/v1/classify", json=_odd(company), headers=company.headers).json()
    assert body["invoice"]["abstained"] and body["invoice"]["engine"] == "local"


@pytest.mark.parametrize(
    ("reply", "engine", "reason"),
    [
        ("valid", "anthropic", None),
        ("invented", "local", "invalid_output"),
        ("broken", "local", "invalid_output"),
    ],
)
def test_llm_second_opinion_is_checked(
    client: TestClient,
    company: Any,  # noqa: F811
    reply: str,
    engine: str,
    reason: str | None,
) -> None:
    accounts = [a["code"] for a in _company()[0]["accounts"]]
    payloads = {
        "valid": _reply(
            {"account_code": accounts[-1], "confidence": 0.9, "rationale": "servicios"}
        ),
        "invented": _reply({"account_code": "9999999", "confidence": 0.99, "rationale": "x"}),
        "broken": httpx2.Response(200, json=message("no es JSON")),
    }
    api = FakeMessagesApi(payloads[reply])
    _with_llm(client, api)
    body = client.post("/v1/classify", json=_odd(company), headers=company.headers).json()
    section = body["invoice"]
    assert section["engine"].startswith(engine)
    assert section["fallback_reason"] == reason
    if reply == "valid":
        assert section["decision"] == accounts[-1]
        assert not section["abstained"]
        sent = json.dumps(api.body(), ensure_ascii=False)
        assert "Lectura de tarot" in sent and accounts[0] in sent  # the document and the chart
    else:
        assert section["decision"] != "9999999" and section["abstained"]


def test_confident_local_answers_never_reach_the_llm(client: TestClient, company: Any) -> None:  # noqa: F811
    api = FakeMessagesApi(_reply({"account_code": "x", "confidence": 1, "rationale": "x"}))
    _with_llm(client, api)
    _, future, _ = _company()
    doc = next(d for d in future if d.label.decided)
    body = client.post(
        "/v1/classify",
        json={"invoice": doc.invoice.model_dump(mode="json")},
        headers=company.headers,
    ).json()
    assert not body["invoice"]["abstained"]
    assert body["invoice"]["engine"] == "local"
    assert api.requests == []
