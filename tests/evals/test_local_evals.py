"""The local engines live on every dataset, held to the shipped baselines; a drop beyond the
margin fails, and the HTML report carries the confusion matrix and reliability diagram."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evals import baselines, tasks
from evals.paths import Workspace
from evals.run import RunOutcome, run_local

REAL = Workspace()


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunOutcome]:
    ws = REAL.under(tmp_path_factory.mktemp("results"), baselines=REAL.baselines)
    return {name: run_local(task, ws) for name, task in tasks.registry().items()}


def test_every_task_of_the_issue_is_registered() -> None:
    assert set(tasks.registry()) >= {
        "classification",
        "project_matching",
        "po_reconciliation",
        "anomalies",
        "validation",
        "extraction",
        "chat",
    }
    assert tasks.unavailable() == {}


@pytest.mark.parametrize("task", sorted(tasks.registry()))
def test_local_engine_holds_its_baseline(outcomes: dict[str, RunOutcome], task: str) -> None:
    outcome = outcomes[task]
    assert baselines.load(REAL, task) is not None, f"bless a baseline for {task}"
    assert outcome.regressions == []
    assert outcome.results["n_cases"] >= 300
    assert all(c["engine"] == "local" for c in outcome.results["cases"])


def test_a_drop_beyond_the_margin_fails(outcomes: dict[str, RunOutcome]) -> None:
    task = tasks.get("classification")
    document: dict[str, Any] = outcomes["classification"].results
    worse = {
        **document,
        "aggregate": {**document["aggregate"], "metrics": {**document["aggregate"]["metrics"]}},
    }
    baseline = baselines.load(REAL, "classification")
    assert baseline is not None
    worse["aggregate"]["metrics"]["accuracy"] = baseline["metrics"]["accuracy"] - 0.03
    worse["aggregate"]["metrics"]["ece"] = baseline["metrics"]["ece"] + 0.03
    problems = baselines.regressions(task, worse, baseline)
    assert len(problems) == 2
    assert any("accuracy" in p for p in problems) and any("ece" in p for p in problems)
    worse["aggregate"]["metrics"]["accuracy"] = baseline["metrics"]["accuracy"] - 0.01
    worse["aggregate"]["metrics"]["ece"] = baseline["metrics"]["ece"]
    assert baselines.regressions(task, worse, baseline) == []


def test_a_broken_engine_is_caught(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from evals import tasks_documents

    real_local = tasks_documents.ValidationRunner.local

    def never_blocks(self, case):  # type: ignore[no-untyped-def]
        prediction = real_local(self, case)
        prediction.label, prediction.data = "sendable", {"errors": []}
        return prediction

    monkeypatch.setattr(tasks_documents.ValidationRunner, "local", never_blocks)
    outcome = run_local(tasks.get("validation"), REAL.under(tmp_path, baselines=REAL.baselines))
    assert any("errors_exact_match" in r for r in outcome.regressions)


def test_results_and_report_are_written(outcomes: dict[str, RunOutcome]) -> None:
    outcome = outcomes["classification"]
    assert outcome.path is not None and outcome.report is not None
    assert outcome.path.name.endswith("-classification-local.json")
    html = outcome.report.read_text()
    assert "<svg" in html and "reliability diagram" in html
    assert "Confusion matrix" in html and "Per class" in html and "baseline" in html
    agg = outcome.results["aggregate"]
    assert {"input_tokens", "output_tokens", "cost_usd", "latency_ms_p50"} <= set(agg["accounting"])
    first = outcome.results["cases"][0]
    assert {"id", "expected", "label", "confidence", "engine", "latency_ms"} <= set(first)
