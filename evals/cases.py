"""A dataset is JSONL, one case per line: ``id``, ``input``, ``expected``, ``meta`` (``company``,
``split``: ``test`` for generated cases, ``hard`` for the hand-written ones, and ``tags``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Case:
    id: str
    input: dict[str, Any]
    expected: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def company(self) -> str:
        return str(self.meta.get("company", ""))

    @property
    def split(self) -> str:
        return str(self.meta.get("split", "test"))

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "input": self.input, "expected": self.expected, "meta": self.meta}


class DatasetError(ValueError):
    code = "dataset_invalid"


def dumps_case(case: Case) -> str:
    """One line per case; sorted keys and no spaces so regenerating gives the same bytes."""
    return json.dumps(case.as_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def write_cases(path: Path, cases: Iterable[Case]) -> int:
    lines = [dumps_case(c) for c in cases]
    ids = [json.loads(line)["id"] for line in lines]
    if len(ids) != len(set(ids)):
        raise DatasetError(f"{path.name}: duplicate case ids")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)


def dataset_path(datasets: Path, task: str) -> Path:
    return datasets / f"{task}.jsonl"


def load_cases(datasets: Path, task: str, *, limit: int | None = None) -> list[Case]:
    path = dataset_path(datasets, task)
    if not path.is_file():
        raise DatasetError(
            f"no dataset for task {task!r} at {path}: run `python -m evals.generate`"
        )
    cases = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            cases.append(Case(raw["id"], raw["input"], raw["expected"], raw.get("meta", {})))
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"{path.name} line {n}: not a case ({exc})") from exc
    return cases[:limit] if limit is not None else cases


def dataset_sha256(datasets: Path, task: str) -> str:
    """sha256 of the dataset file's bytes: part of every eval fingerprint."""
    return hashlib.sha256(dataset_path(datasets, task).read_bytes()).hexdigest()


def by_company(cases: Sequence[Case]) -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}
    for case in cases:
        out.setdefault(case.company, []).append(case)
    return out
