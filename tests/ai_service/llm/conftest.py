"""Fixtures for the LLM layer: a use case's schema and local engine, the real prompt files, and
orchestrators wired to providers whose HTTP goes to in-process mock transports that answer in
the providers' real wire formats."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from ai_service.llm.base import LocalEngine, RenderedPrompt
from ai_service.llm.cache import MemoryCache
from ai_service.llm.config import DEFAULT_PROMPTS_DIR, LLMConfig
from ai_service.llm.orchestrator import Orchestrator
from ai_service.llm.prompts import PromptRegistry
from ai_service.llm.registry import ProviderFactory, ProviderRegistry

COMPANY = "company-a"


class Classification(BaseModel):
    """What the classification use case expects (mirrors prompts/classification/schema.json)."""

    model_config = ConfigDict(extra="forbid")

    account_code: str
    analytic_tags: list[str] = Field(default_factory=list)
    confidence: float = Field(ge=0, le=1)
    rationale: str


LOCAL_ANSWER = Classification(account_code="5101", confidence=0.6, rationale="regla: giro")
LLM_ANSWER: dict[str, Any] = {
    "account_code": "5203",
    "confidence": 0.91,
    "rationale": "combustible para flota",
}


@dataclass
class CountingEngine:
    """A deterministic local engine that counts how often it had to answer."""

    calls: int = 0
    answer: Classification = field(default_factory=lambda: LOCAL_ANSWER)

    def __call__(self) -> Classification:
        self.calls += 1
        return self.answer

    def engine(self) -> LocalEngine[Classification]:
        return LocalEngine(name="rules-v1", run=self)


@pytest.fixture
def local() -> CountingEngine:
    return CountingEngine()


@pytest.fixture(scope="session")
def prompts() -> PromptRegistry:
    return PromptRegistry(DEFAULT_PROMPTS_DIR)


def classification_input(n: int = 1) -> dict[str, Any]:
    return {
        "document": {
            "tipo_dte": 33,
            "folio": 1000 + n,
            "rut_emisor": "76086428-5",
            "giro_emisor": "VENTA DE COMBUSTIBLES",
            "items": [{"NmbItem": "PETROLEO DIESEL", "MontoItem": 84034}],
        },
        "accounts": [
            {"code": "5101", "name": "Gastos generales"},
            {"code": "5203", "name": "Combustibles"},
        ],
        "corrections": [],
    }


@pytest.fixture
def prompt(prompts: PromptRegistry) -> RenderedPrompt:
    return prompts.render("classification", classification_input())


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Sleeps:
    """Stands in for time.sleep in retries: records the waits instead of waiting."""

    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


MakeOrchestrator = Callable[..., Orchestrator]


def run(orchestrator: Orchestrator, prompt: Any, local: CountingEngine, **kw: Any) -> Any:
    """The classification use case's call through ``orchestrator``, ``local`` standing by."""
    return orchestrator.complete(
        "classification", prompt, Classification, company_id=COMPANY, local=local.engine(), **kw
    )


@pytest.fixture
def make_orchestrator(sleeps: Sleeps, clock: FakeClock) -> MakeOrchestrator:
    def make(factories: Mapping[str, ProviderFactory] | None = None, **config: Any) -> Orchestrator:
        registry = ProviderRegistry(LLMConfig(**config), factories=factories, clock=clock)
        return Orchestrator(registry, cache=MemoryCache(clock=clock), sleep=sleeps)

    return make
