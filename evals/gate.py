"""The gate that keeps unevaluated prompts away from providers (no network needed in CI).

* :func:`check`: every (task, provider) the lock tracks must have an entry for the prompt's
  *current* fingerprint, and every entry's recorded files must hash to what the lock says;
* :func:`replay`: the recorded raw responses go through the real provider adapters again and
  are re-scored: the figures must be the recorded ones (a parser or scorer regression fails);
* :func:`record`: a real run against a provider (key or Ollama server needed) that writes the
  recordings, the results and, when it passes the baseline, the lock entry.
The local engine's live run against the baselines is :func:`evals.run.run_local`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from ai_service.llm.cache import CachedResponse, CacheKey
from ai_service.llm.config import AnthropicConfig, LLMConfig, OllamaConfig, RetryConfig
from ai_service.llm.orchestrator import Orchestrator
from ai_service.llm.registry import ProviderRegistry
from evals import lockfile, tasks
from evals.cases import dataset_path
from evals.fingerprints import PROVIDERS, PromptIdentity, identify
from evals.lockfile import LockEntry
from evals.paths import Workspace
from evals.run import RunOutcome, run_llm
from evals.wire import FACTORIES, Tape


class NoCache:
    """Every case is asked (record) and answered from its own recording (replay)."""

    def get(self, key: CacheKey) -> CachedResponse | None:
        return None

    def set(self, key: CacheKey, value: CachedResponse, *, ttl_seconds: int) -> None:
        return None


class NoProviderError(RuntimeError):
    code = "no_provider"


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _record_hint(task: str, provider: str) -> str:
    return f"run `dte-ai eval record --task {task} --provider {provider}`"


def _what_changed(entry: LockEntry | None, ident: PromptIdentity) -> str:
    if entry is None:
        return "has no recorded passing evaluation"
    if entry.runtime_fingerprint != ident.runtime:
        return (
            "changed since its recorded evaluation (template, output schema, model or "
            f"generation parameters; v{entry.version} was evaluated, v{ident.version} is active)"
        )
    if entry.dataset_sha256 != ident.dataset_sha256:
        return (
            "changed since its recorded evaluation: its dataset did "
            f"({entry.dataset_sha256[:12]} -> {ident.dataset_sha256[:12]})"
        )
    return (
        "changed since its recorded evaluation: the scorers did "
        f"({entry.scorer_version} -> {ident.scorer_version})"
    )


def check(workspace: Workspace, *, require: Sequence[str] = ()) -> Report:
    """Fails on a tracked prompt that changed, on edited recordings, and (``require``) on a
    prompt with no passing recorded run for a required provider."""
    report = Report()
    entries = lockfile.load(workspace)
    for fp, entry in entries.items():
        report.problems += lockfile.verify(workspace, fp, entry)
    tracked = {(e.task, e.provider): e for e in entries.values()}
    registry = tasks.registry()
    for name, task in registry.items():
        if not dataset_path(workspace.datasets, name).is_file():
            message = f"{name}: no dataset in {workspace.datasets} (`python -m evals.generate`)"
            tracked_here = any(t == name for t, _ in tracked)
            (report.problems if tracked_here else report.notes).append(message)
            continue
        for provider in PROVIDERS:
            ident = identify(task, provider, workspace)
            if ident.eval in entries:
                report.notes.append(f"{name} {ident.path} on {provider}/{ident.model}: evaluated")
            elif (name, provider) in tracked or provider in require:
                what = _what_changed(tracked.get((name, provider)), ident)
                report.problems.append(
                    f"prompt {ident.path} (task {name}) for {provider}/{ident.model} {what} "
                    f"(fingerprint {ident.eval[:12]}): {_record_hint(name, provider)}"
                )
            else:
                report.notes.append(
                    f"{name} {ident.path} on {provider}: not evaluated (the runtime gate keeps "
                    "it on the local engine)"
                )
    for name in {e.task for e in entries.values()} - set(registry):
        report.problems.append(f"prompts.lock names task {name!r}, which is not registered")
    return report


def _client(
    provider: str,
    tape: Tape,
    mode: str,
    *,
    upstream: Any = None,
    api_key: str | None = None,
    ollama_host: str | None = None,
    attempts: int = 1,
) -> Orchestrator:
    config = LLMConfig(
        provider=provider,  # type: ignore[arg-type]
        anthropic=AnthropicConfig(api_key=SecretStr(api_key or "replay-no-key")),
        ollama=OllamaConfig(enabled=True, host=ollama_host or OllamaConfig().host),
        retry=RetryConfig(max_attempts=attempts),
    )
    factory = FACTORIES[provider](tape, mode, upstream)
    registry = ProviderRegistry(config, factories={provider: factory})
    if mode == "replay":  # nothing to wait for: every answer is on the tape
        return Orchestrator(registry, cache=NoCache(), sleep=lambda _seconds: None)
    return Orchestrator(registry, cache=NoCache())


def _extra(ident: PromptIdentity, synthetic: bool) -> dict[str, Any]:
    return {
        "model": ident.model,
        "prompt_version": ident.version,
        "eval_fingerprint": ident.eval,
        "runtime_fingerprint": ident.runtime,
        "synthetic": synthetic,
    }


def replay(
    workspace: Workspace, *, task_names: Sequence[str] | None = None, write: bool = False
) -> Report:
    """``write``: also write the replayed run's results and report (``eval run -p replay``)."""
    report = Report()
    entries = lockfile.load(workspace)
    if not entries:
        report.notes.append("prompts.lock has no recorded runs: nothing to replay")
    for fp, entry in sorted(entries.items(), key=lambda kv: (kv[1].task, kv[1].provider)):
        if task_names and entry.task not in task_names:
            continue
        problems = lockfile.verify(workspace, fp, entry)
        task = tasks.registry().get(entry.task)
        if problems or task is None:
            report.problems += problems or [f"task {entry.task} is not registered"]
            continue
        ident = identify(task, entry.provider, workspace, model=entry.model)
        if ident.eval != fp:
            report.notes.append(f"{entry.task}/{entry.provider}: stale entry (see `eval check`)")
            continue
        tape = Tape.from_lines(lockfile.resolve(workspace, entry.recordings).read_text())
        outcome = run_llm(
            task,
            entry.provider,
            _client(entry.provider, tape, "replay"),
            workspace,
            before_case=lambda case, tape=tape: tape.at(case.id),  # type: ignore[misc]
            write=write,
        )
        recorded = json.loads(lockfile.resolve(workspace, entry.results).read_text())
        report.problems += _compare(entry, recorded, outcome, tape)
        if outcome.report is not None:
            report.notes.append(f"{entry.task}/{entry.provider}: report {outcome.report}")
        if not report.problems:
            report.notes.append(
                f"{entry.task}/{entry.provider}: {len(tape.entries)} recorded responses replayed, "
                "figures identical"
            )
    return report


def _compare(
    entry: LockEntry, recorded: dict[str, Any], outcome: RunOutcome, tape: Tape
) -> list[str]:
    name = f"replay {entry.task} ({entry.provider}/{entry.model})"
    problems = []
    if tape.mismatches:
        problems.append(
            f"{name}: {len(tape.mismatches)} requests differ from the recorded ones "
            f"(e.g. {tape.mismatches[0]}): the prompt or its input changed; re-record"
        )
    if tape.missing:
        problems.append(
            f"{name}: {len(tape.missing)} cases have no recording (e.g. {tape.missing[0]})"
        )
    want = recorded["aggregate"]["metrics"]
    got = outcome.results["aggregate"]["metrics"]
    changed = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    if changed:
        diffs = ", ".join(f"{k} {want.get(k)} -> {got.get(k)}" for k in changed[:6])
        problems.append(f"{name}: figures differ from the recorded run: {diffs}")
    fallbacks = recorded["aggregate"]["accounting"]["fallbacks"]
    now = outcome.results["aggregate"]["accounting"]["fallbacks"]
    if fallbacks != now:
        problems.append(f"{name}: fallbacks to the local engine changed: {fallbacks} -> {now}")

    def answer(c: dict[str, Any]) -> tuple[Any, ...]:
        return c["label"], c["data"], c["engine"], c["fallback_reason"]

    before = {c["id"]: answer(c) for c in recorded["cases"]}
    replayed = json.loads(json.dumps(outcome.results["cases"], default=str))
    after = {c["id"]: answer(c) for c in replayed}
    differing = [k for k in before if before[k] != after.get(k)]
    if differing:
        problems.append(
            f"{name}: {len(differing)} cases answered differently (e.g. {differing[:3]})"
        )
    problems += [f"{name}: {r}" for r in outcome.regressions]
    return problems


def provider_reachable(
    provider: str, *, api_key: str | None, ollama_host: str | None
) -> str | None:
    """Why ``provider`` cannot be recorded against (None when it can)."""
    if provider == "anthropic":
        return None if api_key else "no Anthropic API key (set ANTHROPIC_API_KEY)"
    if provider == "ollama":
        import httpx

        host = ollama_host or os.environ.get("OLLAMA_HOST") or OllamaConfig().host
        try:
            httpx.get(f"{host.rstrip('/')}/api/version", timeout=2.0).raise_for_status()
        except (httpx.HTTPError, OSError) as exc:
            return f"no Ollama server reachable at {host} ({type(exc).__name__})"
        return None
    return f"unknown provider {provider!r}"


def record(
    workspace: Workspace,
    task: tasks.EvalTask,
    provider: str,
    *,
    api_key: str | None = None,
    ollama_host: str | None = None,
    upstream: Any = None,
    synthetic: bool = False,
    limit: int | None = None,
) -> tuple[RunOutcome, bool]:
    """Run ``task`` against ``provider`` for real (``upstream`` is the transport to it),
    recording every raw response; a run that holds the baseline goes into the lock."""
    if upstream is None:
        reason = provider_reachable(provider, api_key=api_key, ollama_host=ollama_host)
        if reason:
            raise NoProviderError(f"no provider reachable/configured for {provider}: {reason}")
        upstream = _real_transport(provider)
    ident = identify(task, provider, workspace)
    tape = Tape(synthetic=synthetic)
    client = _client(
        provider,
        tape,
        "record",
        upstream=upstream,
        api_key=api_key,
        ollama_host=ollama_host,
        attempts=3,
    )
    outcome = run_llm(
        task,
        provider,
        client,
        workspace,
        limit=limit,
        before_case=lambda case: tape.at(case.id),
        extra=_extra(ident, synthetic),
    )
    folder = workspace.recordings / task.name / f"{provider}-{ident.eval[:16]}"
    folder.mkdir(parents=True, exist_ok=True)
    recordings = folder / "responses.jsonl"
    recordings.write_text("".join(line + "\n" for line in tape.lines()), encoding="utf-8")
    results = folder / "results.json"
    results.write_text(json.dumps(outcome.results, indent=1, sort_keys=True, default=str) + "\n")
    passed = not outcome.regressions and limit is None
    if passed:
        entries = {
            fp: e
            for fp, e in lockfile.load(workspace).items()
            if (e.task, e.provider) != (task.name, provider)
        }
        metrics = outcome.results["aggregate"]["metrics"]
        entries[ident.eval] = LockEntry(
            task=task.name,
            prompt=ident.prompt,
            version=ident.version,
            provider=provider,
            model=ident.model,
            runtime_fingerprint=ident.runtime,
            dataset_sha256=ident.dataset_sha256,
            scorer_version=ident.scorer_version,
            results=lockfile.relative(workspace, results),
            results_sha256=lockfile.file_sha256(results),
            recordings=lockfile.relative(workspace, recordings),
            recordings_sha256=lockfile.file_sha256(recordings),
            metrics={k: v for k, v in metrics.items() if isinstance(v, int | float)},
            recorded_at=datetime.now(UTC).isoformat(timespec="seconds"),
            synthetic=synthetic,
        )
        lockfile.save(workspace, entries)
    return outcome, passed


def _real_transport(provider: str) -> Any:
    if provider == "anthropic":
        import httpx2

        return httpx2.HTTPTransport()
    import httpx

    return httpx.HTTPTransport()
