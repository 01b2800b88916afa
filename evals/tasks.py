"""The task registry: for each eval task, how its local engine and its LLM path run on a case,
and how the predictions are scored.

A task module registers an :class:`EvalTask` with :func:`register`; :func:`registry` imports
the known task modules and keeps those whose use case is importable (a use case still being
written is reported as unavailable, not an error), so adding a task is one module.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from ai_service.llm.base import LLMClient, LLMResult, LocalEngine, RenderedPrompt, Usage
from ai_service.llm.prompts import PromptRegistry
from evals.cases import Case

log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)

#: modules that register tasks; each may fail to import while its use case is unfinished
TASK_MODULES = ("evals.tasks_invoices", "evals.tasks_streams", "evals.tasks_documents")


@dataclass
class Prediction:
    """One engine's answer on one case, in the task's scoring terms."""

    label: Any  # the decision scored for accuracy/F1 (None: abstained or nothing found)
    confidence: float | None = None
    ranked: list[Any] = field(default_factory=list)  # candidates, best first (top-k)
    data: dict[str, Any] = field(default_factory=dict)  # task-specific fields
    engine: str = "local"
    fallback_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    latency_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "confidence": self.confidence,
            "ranked": self.ranked,
            "data": self.data,
            "engine": self.engine,
            "fallback_reason": self.fallback_reason,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "latency_ms": round(self.latency_ms, 3),
        }


class CaseRunner(Protocol):
    """Holds one company's engine state for one run."""

    def local(self, case: Case) -> Prediction: ...

    def llm(self, case: Case, client: LLMClient, prompts: PromptRegistry) -> Prediction: ...

    def after(self, case: Case) -> None: ...


@dataclass(frozen=True)
class Gate:
    """A metric the baseline holds: higher is better unless ``lower_is_better``."""

    metric: str
    lower_is_better: bool = False


@dataclass(frozen=True)
class EvalTask:
    name: str  # the dataset's name
    prompt: str  # prompts/<prompt>/ used by the LLM path
    output_model: type[BaseModel]
    runner: Callable[[str], CaseRunner]  # company -> runner
    score: Callable[[Sequence[Case], Sequence[Prediction]], dict[str, Any]]
    gates: tuple[Gate, ...]
    description: str = ""


_REGISTERED: dict[str, EvalTask] = {}
_UNAVAILABLE: dict[str, str] = {}


def register(task: EvalTask) -> EvalTask:
    _REGISTERED[task.name] = task
    return task


def registry() -> dict[str, EvalTask]:
    for module in TASK_MODULES:
        if module in _UNAVAILABLE:
            continue
        try:
            importlib.import_module(module)
        except ImportError as exc:  # a use case not landed yet
            _UNAVAILABLE[module] = str(exc)
            log.warning("eval tasks in %s unavailable: %s", module, exc)
    return dict(sorted(_REGISTERED.items()))


def unavailable() -> dict[str, str]:
    registry()
    return dict(_UNAVAILABLE)


def get(name: str) -> EvalTask:
    tasks = registry()
    if name not in tasks:
        raise KeyError(f"unknown eval task {name!r}; known: {', '.join(tasks)}")
    return tasks[name]


# ------------------------------------------------------------------ helpers for the LLM path


@dataclass
class Metered:
    """An LLMClient that keeps the last result, so a use case that returns only its own answer
    (chat) still yields tokens, cost, engine and fallback reason per case."""

    inner: LLMClient
    last: LLMResult[Any] | None = None

    def complete(
        self,
        task: str,
        prompt: RenderedPrompt,
        schema: type[T],
        *,
        company_id: str,
        local: LocalEngine[T],
        timeout: float | None = None,
    ) -> LLMResult[T]:
        result = self.inner.complete(
            task, prompt, schema, company_id=company_id, local=local, timeout=timeout
        )
        self.last = result
        return result


def stamp(prediction: Prediction, result: LLMResult[Any] | None, started: float) -> Prediction:
    """Attach the provider's accounting (or the local engine's zeros) to a prediction."""
    prediction.latency_ms = (time.perf_counter() - started) * 1000
    if result is None:
        return prediction
    usage: Usage = result.usage
    prediction.engine = str(result.engine)
    prediction.fallback_reason = result.fallback_reason
    prediction.input_tokens = usage.input_tokens + usage.cache_read_tokens
    prediction.input_tokens += usage.cache_write_tokens
    prediction.output_tokens = usage.output_tokens
    cost = result.cost_usd
    prediction.cost_usd = float(cost) if isinstance(cost, Decimal) else cost
    return prediction


def company_id(case: Case) -> str:
    return case.company or "evals"


def timed_local(fn: Callable[[], Prediction]) -> Prediction:
    started = time.perf_counter()
    prediction = fn()
    prediction.latency_ms = (time.perf_counter() - started) * 1000
    return prediction


def complete_llm(
    case: Case,
    client: LLMClient,
    prompts: PromptRegistry,
    *,
    prompt: str,
    variables: dict[str, Any],
    model: type[T],
    local_output: Callable[[], T],
    engine_name: str,
) -> tuple[T, LLMResult[T], float]:
    """Render the task's prompt for ``case`` and ask the client, the local engine standing by."""
    started = time.perf_counter()
    rendered = prompts.render(prompt, variables)
    result = client.complete(
        prompt,
        rendered,
        model,
        company_id=company_id(case),
        local=LocalEngine(engine_name, local_output),
    )
    return result.output, result, started
