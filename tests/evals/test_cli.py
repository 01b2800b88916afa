"""``dte-ai eval``: exit codes and messages of run, check, replay and bless."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest
from typer.testing import CliRunner

from ai_service.cli import evals as evals_cli
from evals import gate, lockfile, tasks
from evals.paths import Workspace

from .conftest import TASK

runner = CliRunner()


@pytest.fixture
def cli_workspace(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setattr(evals_cli, "_workspace", lambda: workspace)
    return workspace


def test_check_and_replay_of_the_shipped_lock_pass() -> None:
    for command in ("check", "replay"):
        result = runner.invoke(evals_cli.app, [command])
        assert result.exit_code == 0, result.output
        assert f"eval {command}: OK" in result.output


def test_run_local_writes_results_and_report(cli_workspace: Workspace) -> None:
    result = runner.invoke(evals_cli.app, ["run", "--task", TASK, "--provider", "local"])
    assert result.exit_code == 0, result.output
    [path] = list(cli_workspace.results.glob(f"*-{TASK}-local.json"))
    assert json.loads(path.read_text())["aggregate"]["metrics"]["accuracy"] == 1.0
    assert path.with_suffix(".html").is_file()


def test_run_local_fails_on_a_regression(cli_workspace: Workspace) -> None:
    path = cli_workspace.baselines / f"{TASK}.json"
    baseline = json.loads(path.read_text())
    baseline["metrics"]["errors_exact_match"] = 1.5  # unreachable: any run is a regression
    path.write_text(json.dumps(baseline))
    result = runner.invoke(evals_cli.app, ["run", "--task", TASK])
    assert result.exit_code == 1
    assert "REGRESSION validation: errors_exact_match" in result.output


def test_check_names_the_prompt_and_the_command(
    cli_workspace: Workspace, upstream: httpx2.MockTransport
) -> None:
    gate.record(
        cli_workspace, tasks.get(TASK), "anthropic", api_key="k", upstream=upstream, synthetic=True
    )
    assert runner.invoke(evals_cli.app, ["check"]).exit_code == 0
    template = cli_workspace.prompts / "validation_explain" / "v1.md"
    template.write_text(template.read_text() + "\nSé breve.\n")

    result = runner.invoke(evals_cli.app, ["check"])

    assert result.exit_code == 1
    assert "prompts/validation_explain/v1.md" in result.output
    assert "dte-ai eval record --task validation --provider anthropic" in result.output


def test_check_fails_on_an_edited_recording(
    cli_workspace: Workspace, upstream: httpx2.MockTransport
) -> None:
    gate.record(
        cli_workspace, tasks.get(TASK), "anthropic", api_key="k", upstream=upstream, synthetic=True
    )
    [entry] = lockfile.load(cli_workspace).values()
    results = lockfile.resolve(cli_workspace, entry.results)
    results.write_text(results.read_text().replace('"sendable"', '"blocked"'))
    result = runner.invoke(evals_cli.app, ["check"])
    assert result.exit_code == 1
    assert "were edited" in result.output
    assert runner.invoke(evals_cli.app, ["replay"]).exit_code == 1


def test_bless_rewrites_the_baseline_on_purpose(cli_workspace: Workspace, tmp_path: Path) -> None:
    path = cli_workspace.baselines / f"{TASK}.json"
    path.unlink()
    result = runner.invoke(evals_cli.app, ["bless", "--task", TASK, "--reason", "new rules"])
    assert result.exit_code == 0, result.output
    baseline = json.loads(path.read_text())
    assert baseline["reason"] == "new rules" and baseline["metrics"]["accuracy"] == 1.0


def test_unknown_task_is_a_usage_error() -> None:
    result = runner.invoke(evals_cli.app, ["run", "--task", "nope"])
    assert result.exit_code == 2 and "unknown eval task" in result.output
