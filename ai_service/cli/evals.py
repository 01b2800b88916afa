"""``dte-ai eval``: run the evals, and the gate that keeps unevaluated prompts from providers.

* ``run --task T|all --provider local|anthropic|ollama|replay``: results JSON + HTML report in
  evals/results/; a local run also fails (exit 1) when a figure falls below its baseline;
* ``check``: exit 1 when a tracked prompt changed without a recorded passing run, or when
  recorded results or recordings were edited; needs no network;
* ``replay``: the recorded raw responses through the real provider adapters, re-scored;
* ``record``: a real run against Anthropic (ANTHROPIC_API_KEY) or Ollama; exit 2 when neither
  is reachable; writes recordings, results and lock entries;
* ``bless``: make the local engine's current figures the baseline, on purpose.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from evals.gate import Report
    from evals.paths import Workspace
    from evals.tasks import EvalTask

app = typer.Typer(no_args_is_help=True, add_completion=False)

TaskOpt = Annotated[str, typer.Option("--task", "-t", help="an eval task, or all")]


def _evals() -> None:
    """``evals/`` lives at the repository root next to ``prompts/``, not inside the installed
    packages: make it importable when the command runs from an editable checkout."""
    try:
        import evals  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def _workspace() -> Workspace:
    _evals()
    from evals.paths import Workspace

    return Workspace()


def _tasks(name: str) -> list[EvalTask]:
    _evals()
    from evals import tasks

    registry = tasks.registry()
    if name == "all":
        for module, reason in tasks.unavailable().items():
            typer.echo(f"skipped {module}: {reason}", err=True)
        return list(registry.values())
    if name not in registry:
        typer.echo(f"unknown eval task {name!r}; known: {', '.join(registry)}, all", err=True)
        raise typer.Exit(2)
    return [registry[name]]


def _figures(metrics: dict[str, object], keys: int = 8) -> str:
    shown = [(k, v) for k, v in metrics.items() if isinstance(v, float)][:keys]
    return " ".join(f"{k}={v:.4f}" for k, v in shown)


@app.command("run")
def run(
    task: TaskOpt = "all",
    provider: Annotated[
        str, typer.Option("--provider", "-p", help="local, anthropic, ollama or replay")
    ] = "local",
    no_fail: Annotated[bool, typer.Option("--no-fail", help="report regressions, exit 0")] = False,
) -> None:
    """Run the evals of TASK on PROVIDER and write results and reports."""
    workspace = _workspace()
    from evals import gate
    from evals.report import write_index
    from evals.run import run_local

    started = time.perf_counter()
    if provider == "replay":
        names = None if task == "all" else [task]
        report = gate.replay(workspace, task_names=names, write=True)
        _print(report)
        raise typer.Exit(0 if report.ok else 1)
    regressions: list[str] = []
    reports: list[Path] = []
    for t in _tasks(task):
        if provider == "local":
            outcome = run_local(t, workspace)
        elif provider in ("anthropic", "ollama"):
            try:
                outcome, _ = gate.record(
                    # a run is not a recording: it never touches the lock
                    workspace.under(workspace.results / "unlocked", baselines=workspace.baselines),
                    t,
                    provider,
                    api_key=os.environ.get("ANTHROPIC_API_KEY"),
                    ollama_host=os.environ.get("OLLAMA_HOST"),
                )
            except gate.NoProviderError as exc:
                typer.echo(str(exc), err=True)
                raise typer.Exit(2) from exc
        else:
            typer.echo("--provider must be local, anthropic, ollama or replay", err=True)
            raise typer.Exit(2)
        metrics = outcome.results["aggregate"]["metrics"]
        typer.echo(f"{t.name}: {outcome.results['n_cases']} cases, {_figures(metrics)}")
        typer.echo(f"  results {outcome.path}\n  report  {outcome.report}")
        if outcome.report:
            reports.append(outcome.report)
        regressions += outcome.regressions
    if len(reports) > 1:
        index = write_index(reports, workspace.results / "index.html")
        typer.echo(f"index   {index}")
    typer.echo(f"{time.perf_counter() - started:.1f} s")
    for line in regressions:
        typer.echo(f"REGRESSION {line}", err=True)
    if regressions and not no_fail:
        raise typer.Exit(1)


def _print(report: Report) -> None:
    for note in report.notes:
        typer.echo(note)
    for problem in report.problems:
        typer.echo(f"FAIL {problem}", err=True)


@app.command("check")
def check(
    require: Annotated[
        list[str] | None,
        typer.Option("--require", help="a provider every prompt must be evaluated for"),
    ] = None,
) -> None:
    """Fail when a prompt changed without a recorded passing run, or recordings were edited."""
    workspace = _workspace()
    from evals import gate

    report = gate.check(workspace, require=require or ())
    _print(report)
    typer.echo("eval check: OK" if report.ok else f"eval check: {len(report.problems)} problem(s)")
    raise typer.Exit(0 if report.ok else 1)


@app.command("replay")
def replay(task: TaskOpt = "all") -> None:
    """Re-score the recorded provider responses through the real adapters."""
    workspace = _workspace()
    from evals import gate

    report = gate.replay(workspace, task_names=None if task == "all" else [task])
    _print(report)
    typer.echo(
        "eval replay: OK" if report.ok else f"eval replay: {len(report.problems)} problem(s)"
    )
    raise typer.Exit(0 if report.ok else 1)


@app.command("record")
def record(
    task: TaskOpt = "all",
    provider: Annotated[
        str, typer.Option("--provider", "-p", help="anthropic, ollama or auto (the first usable)")
    ] = "auto",
    only_unevaluated: Annotated[
        bool,
        typer.Option("--only-unevaluated", help="skip prompts already evaluated as they are"),
    ] = False,
) -> None:
    """Run TASK against a real provider, record its responses and lock the passing prompts."""
    workspace = _workspace()
    from evals import gate

    reasons = []
    for candidate in ("anthropic", "ollama") if provider == "auto" else (provider,):
        reason = gate.provider_reachable(
            candidate,
            api_key=os.environ.get("ANTHROPIC_API_KEY"),
            ollama_host=os.environ.get("OLLAMA_HOST"),
        )
        if reason is None:
            provider = candidate
            break
        reasons.append(reason)
    else:
        typer.echo(f"no provider reachable/configured: {'; '.join(reasons)}", err=True)
        raise typer.Exit(2)
    failed = []
    todo = _tasks(task)
    if only_unevaluated:
        from evals import lockfile
        from evals.fingerprints import identify

        locked = lockfile.load(workspace)
        todo = [t for t in todo if identify(t, provider, workspace).eval not in locked]
        typer.echo(f"unevaluated on {provider}: {', '.join(t.name for t in todo) or 'none'}")
    for t in todo:
        outcome, passed = gate.record(
            workspace,
            t,
            provider,
            api_key=os.environ.get("ANTHROPIC_API_KEY"),
            ollama_host=os.environ.get("OLLAMA_HOST"),
        )
        verdict = "passed: locked" if passed else "did NOT pass: not locked"
        typer.echo(f"{t.name} on {provider}: {verdict}; report {outcome.report}")
        for line in outcome.regressions:
            typer.echo(f"  {line}", err=True)
        if not passed:
            failed.append(t.name)
    raise typer.Exit(1 if failed else 0)


@app.command("bless")
def bless(
    task: TaskOpt,
    reason: Annotated[str, typer.Option("--reason", help="why the baseline changes")] = "",
    margin: Annotated[float, typer.Option("--margin", help="allowed drop")] = 0.02,
) -> None:
    """Make the local engine's current figures TASK's baseline (on purpose, with a reason)."""
    workspace = _workspace()
    from evals import baselines
    from evals.run import run_local

    for t in _tasks(task):
        outcome = run_local(t, workspace)
        baseline = baselines.bless(workspace, t, outcome.results, margin=margin, reason=reason)
        typer.echo(f"{t.name}: baseline blessed ({_figures(baseline['metrics'])})")
