"""Where the evals keep their files. Tests point a :class:`Workspace` at a temporary folder."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ai_service.llm.config import DEFAULT_PROMPTS_DIR

EVALS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Workspace:
    datasets: Path = EVALS_DIR / "datasets"
    baselines: Path = EVALS_DIR / "baselines"
    results: Path = EVALS_DIR / "results"
    recordings: Path = EVALS_DIR / "recordings"
    lock: Path = EVALS_DIR / "prompts.lock"
    prompts: Path = DEFAULT_PROMPTS_DIR
    #: refuse recordings marked synthetic (only the gate's own tests set this False)
    reject_synthetic: bool = True

    def under(self, root: Path, **overrides: object) -> Workspace:
        """The same layout below ``root`` (datasets stay shared unless overridden)."""
        fields: dict[str, object] = {
            "baselines": root / "baselines",
            "results": root / "results",
            "recordings": root / "recordings",
            "lock": root / "prompts.lock",
        }
        fields.update(overrides)
        return replace(self, **fields)  # type: ignore[arg-type]
