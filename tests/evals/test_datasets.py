"""The committed datasets: at least 300 labelled cases per task, each well formed, with
hand-written hard cases, and exactly what the generator writes (so they cannot drift)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from evals import companies, generate
from evals.cases import dataset_path, load_cases
from evals.paths import Workspace

TASKS = sorted(generate.BUILDERS)
TAGS = {"typo", "abbreviation", "ambiguous_supplier", "partial_delivery", "near_duplicate"}


@pytest.mark.parametrize("task", TASKS)
def test_each_task_has_300_well_formed_cases(task: str) -> None:
    cases = load_cases(Workspace().datasets, task)
    assert len(cases) >= 300
    assert len({c.id for c in cases}) == len(cases)
    for case in cases:
        assert case.input and case.expected is not None
        assert {"company", "split"} <= set(case.meta)
        assert case.split in ("test", "hard")
        assert case.company in ("", *companies.KINDS)
    hard = [c for c in cases if c.split == "hard"]
    assert len(hard) >= 10, "hand-written hard cases"


def test_hard_cases_cover_what_goes_wrong_in_real_invoices() -> None:
    tags: Counter[str] = Counter()
    for task in TASKS:
        for case in load_cases(Workspace().datasets, task):
            tags.update(case.meta.get("tags", []))
    assert set(tags) >= TAGS, TAGS - set(tags)


def test_companies_are_the_pinned_ones() -> None:
    """The contexts the cases are judged against regenerate identically from their seed."""
    for kind in companies.KINDS:
        assert companies.company(kind).seed == companies.SEED
        assert companies.context_sha256(kind) == companies.CONTEXT_SHA256[kind], (
            f"{kind}: ai_service.synth changed what the eval cases mean"
        )


@pytest.mark.slow
def test_regenerating_gives_identical_bytes(tmp_path: Path) -> None:
    written = generate.generate(tmp_path)
    for task in written:
        fresh = dataset_path(tmp_path, task).read_bytes()
        committed = dataset_path(Workspace().datasets, task).read_bytes()
        assert fresh == committed, f"{task}: run `python -m evals.generate` and commit"
