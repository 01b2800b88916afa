"""Baselines (``evals/baselines/<task>.json``): the local engine's blessed figures and the
margin a run may fall short of them by. ``dte-ai eval bless`` rewrites one on purpose."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from evals.paths import Workspace
from evals.tasks import EvalTask

DEFAULT_MARGIN = 0.02


def load(workspace: Workspace, task: str) -> dict[str, Any] | None:
    path = workspace.baselines / f"{task}.json"
    if not path.is_file():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def regressions(
    task: EvalTask, document: dict[str, Any], baseline: dict[str, Any] | None
) -> list[str]:
    """Each gated metric that fell beyond the margin, as a sentence; a task without a baseline
    has nothing to fall from (bless one)."""
    if baseline is None:
        return []
    metrics = document["aggregate"]["metrics"]
    out = []
    for gate in task.gates:
        want = baseline["metrics"].get(gate.metric)
        got = metrics.get(gate.metric)
        if want is None:
            continue
        margin = float(
            baseline.get("margins", {}).get(gate.metric, baseline.get("margin", DEFAULT_MARGIN))
        )
        if got is None:
            out.append(f"{task.name}: {gate.metric} missing (baseline {want})")
        elif gate.lower_is_better and got > want + margin:
            out.append(f"{task.name}: {gate.metric} {got:.4f} > baseline {want:.4f} + {margin}")
        elif not gate.lower_is_better and got < want - margin:
            out.append(f"{task.name}: {gate.metric} {got:.4f} < baseline {want:.4f} - {margin}")
    return out


def bless(
    workspace: Workspace,
    task: EvalTask,
    document: dict[str, Any],
    *,
    margin: float = DEFAULT_MARGIN,
    reason: str = "",
) -> dict[str, Any]:
    metrics = document["aggregate"]["metrics"]
    baseline = {
        "task": task.name,
        "engine": document["provider"],
        "dataset_sha256": document["dataset_sha256"],
        "scorer_version": document["scorer_version"],
        "blessed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "reason": reason,
        "margin": margin,
        "gates": {g.metric: ("max" if g.lower_is_better else "min") for g in task.gates},
        "metrics": {k: v for k, v in sorted(metrics.items()) if isinstance(v, int | float)},
    }
    workspace.baselines.mkdir(parents=True, exist_ok=True)
    path = workspace.baselines / f"{task.name}.json"
    path.write_text(json.dumps(baseline, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return baseline
