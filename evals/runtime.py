"""The runtime half of the gate: which prompt fingerprints may reach a provider.

``LLMConfig.evaluated_fingerprints`` is the set the orchestrator checks before every call; a
prompt not in it runs on the local engine with ``fallback_reason="prompt_unevaluated"``. The
set is the runtime fingerprints of the lock's passing, verified, non-synthetic entries: one
prompt, on one provider and pinned model, with its output schema and parameters.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from ai_service.llm.config import LLMConfig
from evals import lockfile
from evals.paths import Workspace

log = logging.getLogger(__name__)


def evaluated_fingerprints(
    lock: Path | None = None, *, workspace: Workspace | None = None
) -> frozenset[str]:
    """Runtime fingerprints with a passing recorded evaluation whose files are intact. A
    missing lock is an empty set (nothing evaluated), never "everything allowed"."""
    workspace = workspace or Workspace()
    if lock is not None:
        workspace = replace(workspace, lock=lock)
    allowed = set()
    for fp, entry in lockfile.load(workspace).items():
        problems = lockfile.verify(workspace, fp, entry)
        if problems:
            log.warning("prompts.lock entry not honoured: %s", "; ".join(problems))
            continue
        allowed.add(entry.runtime_fingerprint)
    return frozenset(allowed)


def gated(
    config: LLMConfig,
    *,
    allow_unevaluated: bool = False,
    lock: Path | None = None,
    workspace: Workspace | None = None,
) -> LLMConfig:
    """``config`` with the gate on, unless an operator explicitly allowed unevaluated prompts
    (``Settings.llm_allow_unevaluated_prompts``)."""
    if allow_unevaluated:
        log.warning("LLM prompt gate is OFF: unevaluated prompts may be sent to providers")
        return config.model_copy(update={"evaluated_fingerprints": None})
    allowed = evaluated_fingerprints(lock, workspace=workspace)
    return config.model_copy(update={"evaluated_fingerprints": allowed})
