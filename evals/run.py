"""The runner: every case of a task through the local engine or an LLM path, scored, written as
``evals/results/<timestamp>-<task>-<provider>.json`` (per case and aggregate) plus an HTML
report next to it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ai_service.llm.base import LLMClient
from ai_service.llm.prompts import PromptRegistry
from evals import baselines
from evals.cases import Case, by_company, dataset_sha256, load_cases
from evals.paths import Workspace
from evals.scorers import SCORER_VERSION
from evals.scoring import accounting
from evals.tasks import EvalTask, Prediction

ClientFor = Callable[[Case], LLMClient]


@dataclass
class RunOutcome:
    results: dict[str, Any]
    path: Path | None
    report: Path | None
    regressions: list[str]


def predict(
    task: EvalTask,
    cases: Sequence[Case],
    *,
    client: LLMClient | None = None,
    prompts: PromptRegistry | None = None,
    before_case: Callable[[Case], None] | None = None,
) -> list[Prediction]:
    """Predictions in case order; each company's runner sees its cases in file order."""
    out: dict[str, Prediction] = {}
    for company, group in by_company(cases).items():
        runner = task.runner(company)
        for case in group:
            if before_case is not None:
                before_case(case)
            if client is None:
                out[case.id] = runner.local(case)
            else:
                assert prompts is not None
                out[case.id] = runner.llm(case, client, prompts)
            runner.after(case)
    return [out[c.id] for c in cases]


def score(task: EvalTask, cases: Sequence[Case], preds: Sequence[Prediction]) -> dict[str, Any]:
    scored = task.score(cases, preds)
    scored["accounting"] = accounting(preds)
    return scored


def results_document(
    task: EvalTask,
    provider: str,
    cases: Sequence[Case],
    preds: Sequence[Prediction],
    workspace: Workspace,
    *,
    seconds: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    scored = score(task, cases, preds)
    expected_labels = scored.pop("expected_labels", [None] * len(cases))
    scored_labels = scored.pop("scored_labels", [None] * len(cases))
    return {
        "task": task.name,
        "prompt": task.prompt,
        "provider": provider,
        "dataset_sha256": dataset_sha256(workspace.datasets, task.name),
        "scorer_version": SCORER_VERSION,
        "n_cases": len(cases),
        "seconds": round(seconds, 3),
        **(extra or {}),
        "aggregate": scored,
        "cases": [
            {
                "id": c.id,
                "split": c.split,
                "expected": c.expected,
                "expected_label": e,
                "scored_label": s,
                **p.as_dict(),
            }
            for c, p, e, s in zip(cases, preds, expected_labels, scored_labels, strict=True)
        ],
    }


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def write_results(document: dict[str, Any], workspace: Workspace) -> tuple[Path, Path]:
    from evals.report import write_report

    workspace.results.mkdir(parents=True, exist_ok=True)
    stem = f"{timestamp()}-{document['task']}-{document['provider']}"
    path = workspace.results / f"{stem}.json"
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False, default=str) + "\n")
    baseline = baselines.load(workspace, document["task"])
    report = write_report(document, baseline, workspace.results / f"{stem}.html")
    return path, report


def run_local(
    task: EvalTask, workspace: Workspace, *, limit: int | None = None, write: bool = True
) -> RunOutcome:
    """The local engine live on the whole dataset, held to the task's baseline."""
    cases = load_cases(workspace.datasets, task.name, limit=limit)
    started = time.perf_counter()
    preds = predict(task, cases)
    document = results_document(
        task, "local", cases, preds, workspace, seconds=time.perf_counter() - started
    )
    baseline = baselines.load(workspace, task.name)
    regressions = baselines.regressions(task, document, baseline) if limit is None else []
    document["baseline_regressions"] = regressions
    path = report = None
    if write:
        path, report = write_results(document, workspace)
    return RunOutcome(document, path, report, regressions)


def run_llm(
    task: EvalTask,
    provider: str,
    client: LLMClient,
    workspace: Workspace,
    *,
    prompts: PromptRegistry | None = None,
    limit: int | None = None,
    before_case: Callable[[Case], None] | None = None,
    extra: dict[str, Any] | None = None,
    write: bool = True,
) -> RunOutcome:
    cases = load_cases(workspace.datasets, task.name, limit=limit)
    prompts = prompts or PromptRegistry(workspace.prompts)
    started = time.perf_counter()
    preds = predict(task, cases, client=client, prompts=prompts, before_case=before_case)
    document = results_document(
        task,
        provider,
        cases,
        preds,
        workspace,
        seconds=time.perf_counter() - started,
        extra=extra,
    )
    baseline = baselines.load(workspace, task.name)
    regressions = baselines.regressions(task, document, baseline)
    document["baseline_regressions"] = regressions
    path = report = None
    if write:
        path, report = write_results(document, workspace)
    return RunOutcome(document, path, report, regressions)
