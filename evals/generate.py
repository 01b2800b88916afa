"""Write the eval datasets: ``python -m evals.generate [--out evals/datasets] [--task T]``.

Deterministic: the same code writes the same bytes (a test regenerates and compares), so a
dataset cannot drift silently, and its sha256 is part of every eval fingerprint. What each task's
cases are, and the hand-written hard cases in ``evals/datasets/hard/``, is documented in
``evals/datasets/README.md``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from evals import gen_chat, gen_documents, gen_invoices
from evals.cases import Case, dataset_path, write_cases
from evals.paths import Workspace

HARD_DIR = Workspace().datasets / "hard"


def _invoice_task(task: str) -> Callable[[Path], Iterator[Case]]:
    def build(hard: Path) -> Iterator[Case]:
        yield from gen_invoices.generated_cases(task)
        yield from gen_invoices.hard_cases(task, hard)

    return build


def _validation(hard: Path) -> Iterator[Case]:
    yield from gen_documents.validation_cases()
    yield from gen_documents.validation_hard_cases(
        gen_invoices.load_specs(hard / "validation.jsonl")
    )


def _extraction(hard: Path) -> Iterator[Case]:
    yield from gen_documents.extraction_cases()
    yield from gen_documents.extraction_hard_cases(
        gen_invoices.load_specs(hard / "extraction.jsonl")
    )


def _chat(hard: Path) -> Iterator[Case]:
    yield from gen_chat.chat_cases()
    yield from gen_chat.chat_hard_cases(gen_invoices.load_specs(hard / "chat.jsonl"))


BUILDERS: dict[str, Callable[[Path], Iterator[Case]]] = {
    **{task: _invoice_task(task) for task in gen_invoices.INVOICE_TASKS},
    "validation": _validation,
    "extraction": _extraction,
    "chat": _chat,
}


def generate(
    out: Path, tasks: Iterable[str] | None = None, hard: Path = HARD_DIR
) -> dict[str, int]:
    counts = {}
    for task in tasks or BUILDERS:
        counts[task] = write_cases(dataset_path(out, task), BUILDERS[task](hard))
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.generate", description=__doc__)
    parser.add_argument("--out", type=Path, default=Workspace().datasets)
    parser.add_argument("--task", action="append", choices=sorted(BUILDERS))
    args = parser.parse_args(argv)
    for task, n in generate(args.out, args.task).items():
        print(f"{task}: {n} cases -> {dataset_path(args.out, task)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
