"""The gate: an evaluated prompt passes; editing it without recording, or tampering with what
was recorded, fails `check`; `replay` catches a parser regression; recording needs a provider.
Every recording here is made through a SYNTHETIC upstream and is marked so."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import httpx2
import pytest
from typer.testing import CliRunner

from ai_service.cli import evals as evals_cli
from ai_service.llm import prompts as prompts_module
from ai_service.llm.providers import anthropic as anthropic_adapter
from evals import gate, lockfile, scorers, tasks
from evals.paths import Workspace

from .conftest import TASK, SyntheticExplainer


def _record(workspace: Workspace, upstream: httpx2.MockTransport) -> lockfile.LockEntry:
    outcome, passed = gate.record(
        workspace,
        tasks.get(TASK),
        "anthropic",
        api_key="sk-synthetic",
        upstream=upstream,
        synthetic=True,
    )
    assert passed, outcome.regressions
    [entry] = lockfile.load(workspace).values()
    return entry


def test_recorded_prompt_passes_check_and_replay(
    workspace: Workspace, upstream: httpx2.MockTransport, explainer: SyntheticExplainer
) -> None:
    entry = _record(workspace, upstream)
    assert entry.synthetic and entry.passed and entry.provider == "anthropic"
    recordings = lockfile.resolve(workspace, entry.recordings).read_text().splitlines()
    assert recordings and all(json.loads(line)["synthetic"] for line in recordings)
    asked = len(explainer.requests)
    assert asked > 0  # documents with findings were sent; clean ones need no explanation

    assert gate.check(workspace).ok
    report = gate.replay(workspace)
    assert report.ok, report.problems
    assert len(explainer.requests) == asked, "replay must not call the provider"


def test_synthetic_recordings_do_not_count_outside_tests(
    workspace: Workspace, upstream: httpx2.MockTransport
) -> None:
    _record(workspace, upstream)
    strict = replace(workspace, reject_synthetic=True)
    report = gate.check(strict)
    assert not report.ok
    assert any("SYNTHETIC" in p for p in report.problems)


def test_editing_an_evaluated_prompt_without_recording_fails_check(
    workspace: Workspace, upstream: httpx2.MockTransport
) -> None:
    _record(workspace, upstream)
    template = workspace.prompts / "validation_explain" / "v1.md"
    template.write_text(template.read_text().replace("plain Spanish", "simple Spanish"))

    report = gate.check(workspace)

    assert not report.ok
    [problem] = report.problems
    assert "prompts/validation_explain/v1.md" in problem
    assert "changed since its recorded evaluation" in problem
    assert "dte-ai eval record --task validation --provider anthropic" in problem
    # the untouched provider is not affected, and re-recording clears the failure
    _record(workspace, upstream)
    assert gate.check(workspace).ok


def test_changing_the_dataset_invalidates_the_evaluation(
    workspace: Workspace, upstream: httpx2.MockTransport
) -> None:
    _record(workspace, upstream)
    path = workspace.datasets / f"{TASK}.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    report = gate.check(workspace)
    assert not report.ok
    assert "its dataset did" in report.problems[0]


@pytest.mark.parametrize("which", ["results", "recordings"])
def test_tampering_a_recorded_file_fails_check(
    workspace: Workspace, upstream: httpx2.MockTransport, which: str
) -> None:
    entry = _record(workspace, upstream)
    path = lockfile.resolve(workspace, getattr(entry, which))
    if which == "results":
        doc = json.loads(path.read_text())
        doc["aggregate"]["metrics"]["errors_exact_match"] = 0.123  # a better-looking figure
        doc["cases"][0]["label"] = "edited"
        path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    else:
        path.write_text(path.read_text().replace("observación", "observacion"))

    report = gate.check(workspace)

    assert not report.ok
    assert any(f"recorded {which}" in p and "edited" in p for p in report.problems)
    assert not gate.replay(workspace).ok


def test_replay_catches_a_parser_regression(
    workspace: Workspace, upstream: httpx2.MockTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(workspace, upstream)
    real_parse = anthropic_adapter.parse_message

    def mangled(message):  # type: ignore[no-untyped-def]
        response = real_parse(message)
        data = dict(response.data)
        data["fixes"] = data["fixes"][1:]  # a parser that drops the first item
        return replace(response, data=data)

    monkeypatch.setattr(anthropic_adapter, "parse_message", mangled)
    report = gate.replay(workspace)
    assert not report.ok
    assert any("answered differently" in p for p in report.problems)
    assert any("explanation_mismatch" in p for p in report.problems)


def test_replay_catches_a_change_in_how_inputs_are_rendered(
    workspace: Workspace, upstream: httpx2.MockTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same template, same fingerprint, but the requests no longer match what was recorded."""
    _record(workspace, upstream)
    real_encode = prompts_module.encode_value
    monkeypatch.setattr(
        prompts_module, "encode_value", lambda value: real_encode(value).replace(", ", ",")
    )
    report = gate.replay(workspace)
    assert not report.ok
    assert any("requests differ from the recorded ones" in p for p in report.problems)


def test_replay_catches_a_scorer_regression(
    workspace: Workspace, upstream: httpx2.MockTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(workspace, upstream)
    monkeypatch.setattr(scorers, "field_exact_match", lambda p, e: {"all_fields": 0.5})
    report = gate.replay(workspace)
    assert not report.ok
    assert any("figures differ" in p and "errors_exact_match" in p for p in report.problems)


def test_a_stale_entry_is_check_s_business_not_replay_s(
    workspace: Workspace, upstream: httpx2.MockTransport
) -> None:
    _record(workspace, upstream)
    template = workspace.prompts / "validation_explain" / "v1.md"
    template.write_text(template.read_text().replace("plain Spanish", "simple Spanish"))
    assert any("stale entry" in n for n in gate.replay(workspace).notes)
    assert not gate.check(workspace).ok


def test_record_without_a_provider_fails_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(gate.NoProviderError, match="no provider reachable/configured"):
        gate.record(Workspace().under(tmp_path), tasks.get(TASK), "anthropic")

    result = CliRunner().invoke(evals_cli.app, ["record", "--task", TASK])

    assert result.exit_code == 2
    assert "no provider reachable/configured" in result.output
    assert "ANTHROPIC_API_KEY" in result.output and "Ollama" in result.output


def test_shipped_lock_is_honest() -> None:
    """The repository's lock may be empty, but nothing in it may be synthetic or edited."""
    report = gate.check(Workspace())
    assert report.ok, report.problems
    assert not any(e.synthetic for e in lockfile.load(Workspace()).values())
