"""``evals/prompts.lock``: eval fingerprint -> the recorded run that passed.

Each entry names its results and recordings files (relative to the lock) with their sha256, so
editing a recorded result, or a recording, is detected. The lock is JSON with sorted keys so a
diff shows exactly which prompt was (re-)evaluated.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evals.paths import Workspace

LOCK_FORMAT = 1


@dataclass(frozen=True)
class LockEntry:
    task: str
    prompt: str
    version: int
    provider: str
    model: str
    runtime_fingerprint: str
    dataset_sha256: str
    scorer_version: str
    results: str  # path relative to the lock file
    results_sha256: str
    recordings: str
    recordings_sha256: str
    metrics: dict[str, float]
    recorded_at: str
    passed: bool = True
    synthetic: bool = False


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(workspace: Workspace) -> dict[str, LockEntry]:
    if not workspace.lock.is_file():
        return {}
    raw: dict[str, Any] = json.loads(workspace.lock.read_text(encoding="utf-8") or "{}")
    return {fp: LockEntry(**entry) for fp, entry in raw.get("entries", {}).items()}


def save(workspace: Workspace, entries: dict[str, LockEntry]) -> None:
    body = {
        "format": LOCK_FORMAT,
        "about": "eval fingerprint -> recorded passing run; written by `dte-ai eval record`",
        "entries": {fp: asdict(e) for fp, e in sorted(entries.items())},
    }
    workspace.lock.parent.mkdir(parents=True, exist_ok=True)
    workspace.lock.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def resolve(workspace: Workspace, relative: str) -> Path:
    return (workspace.lock.parent / relative).resolve()


def relative(workspace: Workspace, path: Path) -> str:
    return str(path.resolve().relative_to(workspace.lock.parent.resolve()))


def verify(workspace: Workspace, fp: str, entry: LockEntry) -> list[str]:
    """Why this entry cannot be trusted (empty when it can)."""
    problems = []
    name = f"{entry.task} ({entry.provider}/{entry.model})"
    for label, rel, digest in (
        ("results", entry.results, entry.results_sha256),
        ("recordings", entry.recordings, entry.recordings_sha256),
    ):
        path = resolve(workspace, rel)
        if not path.is_file():
            problems.append(f"{name}: recorded {label} {rel} is missing")
        elif file_sha256(path) != digest:
            problems.append(
                f"{name}: recorded {label} {rel} were edited (sha256 differs from prompts.lock); "
                f"restore them or re-record with `dte-ai eval record --task {entry.task} "
                f"--provider {entry.provider}`"
            )
    if not entry.passed:
        problems.append(f"{name}: the lock names a run that did not pass")
    if entry.synthetic and workspace.reject_synthetic:
        problems.append(
            f"{name}: the lock names a SYNTHETIC recording (test fixture); only real recordings "
            "count: re-record against the provider"
        )
    if problems:
        return problems
    results = json.loads(resolve(workspace, entry.results).read_text(encoding="utf-8"))
    if results.get("eval_fingerprint") != fp:
        problems.append(f"{name}: recorded results are for another fingerprint")
    recorded = results.get("aggregate", {}).get("metrics", {})
    if any(recorded.get(k) != v for k, v in entry.metrics.items()):
        problems.append(f"{name}: recorded results disagree with the metrics in prompts.lock")
    return problems
