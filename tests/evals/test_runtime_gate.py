"""The runtime half of the gate: a prompt with no passing recorded evaluation for the configured
provider and model is not sent; the local engine answers with fallback_reason
"prompt_unevaluated", unless an operator explicitly allows unevaluated prompts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx2
import pytest
from pydantic import SecretStr

from ai_service.llm.base import LLMResult
from ai_service.llm.cache import MemoryCache
from ai_service.llm.config import AnthropicConfig, LLMConfig
from ai_service.llm.orchestrator import Orchestrator
from ai_service.llm.prompts import PromptRegistry
from ai_service.llm.providers.anthropic import AnthropicProvider
from ai_service.llm.registry import ProviderRegistry
from ai_service.usecases.validation import ValidationExplanation, explain, validate_document
from evals import gate, lockfile, tasks
from evals.paths import Workspace
from evals.runtime import evaluated_fingerprints, gated

from .conftest import TASK, SyntheticExplainer

BROKEN = {
    "Encabezado": {
        "IdDoc": {"TipoDTE": 33, "Folio": 7, "FchEmis": "2026-11-20"},
        "Emisor": {
            "RUTEmisor": "76086428-K",
            "RznSoc": "Empresa Demo SpA",
            "GiroEmis": "Servicios",
            "Acteco": [620200],
            "DirOrigen": "Av. Apoquindo 4501",
            "CmnaOrigen": "Las Condes",
        },
        "Receptor": {
            "RUTRecep": "96790240-3",
            "RznSocRecep": "Cliente SpA",
            "GiroRecep": "Comercio",
            "DirRecep": "Matta 100",
            "CmnaRecep": "Santiago",
        },
    },
    "Detalle": [{"NmbItem": "Asesoria", "QtyItem": 1, "PrcItem": 100000}],
}


def _config() -> LLMConfig:
    return LLMConfig(provider="anthropic", anthropic=AnthropicConfig(api_key=SecretStr("sk-x")))


def _explain(config: LLMConfig, workspace: Workspace, api: SyntheticExplainer) -> LLMResult[Any]:
    def factory(cfg: LLMConfig) -> AnthropicProvider:
        client = httpx2.Client(transport=httpx2.MockTransport(api))
        return AnthropicProvider(cfg.anthropic, http_client=client)

    orchestrator = Orchestrator(
        ProviderRegistry(config, factories={"anthropic": factory}), cache=MemoryCache()
    )
    result = validate_document(BROKEN)
    assert result.findings
    return explain(
        result,
        BROKEN,
        llm=orchestrator,
        prompts=PromptRegistry(workspace.prompts),
        company_id="company-a",
    )


def test_an_unevaluated_prompt_is_not_sent(
    workspace: Workspace, explainer: SyntheticExplainer
) -> None:
    assert evaluated_fingerprints(workspace=workspace) == frozenset()

    answer = _explain(gated(_config(), workspace=workspace), workspace, explainer)

    assert answer.fallback_reason == "prompt_unevaluated"
    assert answer.engine.provider == "local"
    assert isinstance(answer.output, ValidationExplanation) and answer.output.fixes
    assert explainer.requests == []


def test_an_evaluated_prompt_is_sent_and_its_fingerprint_is_the_locked_one(
    workspace: Workspace, upstream: httpx2.MockTransport, explainer: SyntheticExplainer
) -> None:
    _, passed = gate.record(
        workspace,
        tasks.get(TASK),
        "anthropic",
        api_key="sk-x",
        upstream=upstream,
        synthetic=True,
    )
    assert passed
    [entry] = lockfile.load(workspace).values()
    explainer.requests.clear()

    answer = _explain(gated(_config(), workspace=workspace), workspace, explainer)

    assert answer.fallback_reason is None
    assert answer.engine.provider == "anthropic"
    assert answer.fingerprint == entry.runtime_fingerprint
    assert len(explainer.requests) == 1


def test_a_tampered_or_synthetic_entry_is_not_honoured(
    workspace: Workspace, upstream: httpx2.MockTransport, explainer: SyntheticExplainer
) -> None:
    gate.record(
        workspace, tasks.get(TASK), "anthropic", api_key="sk-x", upstream=upstream, synthetic=True
    )
    strict = replace(workspace, reject_synthetic=True)
    assert evaluated_fingerprints(workspace=strict) == frozenset()
    [entry] = lockfile.load(workspace).values()
    lockfile.resolve(workspace, entry.results).write_text("{}")
    assert evaluated_fingerprints(workspace=workspace) == frozenset()


@pytest.mark.parametrize("model", ["claude-sonnet-5-5"])
def test_another_model_than_the_evaluated_one_is_unevaluated(
    workspace: Workspace, upstream: httpx2.MockTransport, explainer: SyntheticExplainer, model: str
) -> None:
    gate.record(
        workspace, tasks.get(TASK), "anthropic", api_key="sk-x", upstream=upstream, synthetic=True
    )
    config = _config().model_copy(
        update={"anthropic": AnthropicConfig(api_key=SecretStr("sk-x"), model=model)}
    )
    answer = _explain(gated(config, workspace=workspace), workspace, explainer)
    assert answer.fallback_reason == "prompt_unevaluated"


def test_an_operator_may_allow_unevaluated_prompts(
    workspace: Workspace, explainer: SyntheticExplainer
) -> None:
    config = gated(_config(), allow_unevaluated=True, workspace=workspace)
    assert config.evaluated_fingerprints is None
    answer = _explain(config, workspace, explainer)
    assert answer.engine.provider == "anthropic" and len(explainer.requests) == 1
