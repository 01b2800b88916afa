"""``dte-ai context load FILE.json`` and ``dte-ai learn FILE.jsonl`` for one company.

The same idempotent upserts as ``PUT /v1/context`` and ``POST /v1/learn``, run on the server's
database; the company is named by RUT. Bad input exits 2 with a JSON error on stderr.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ai_service.cli.admin import _fail, _open, _run

app = typer.Typer(no_args_is_help=True, add_completion=False)

CompanyOpt = Annotated[str, typer.Option("--company", help="the company's RUT")]


def _company(engine: Any, rut: str) -> Any:
    from ai_service.repositories.companies import company_by_rut
    from dte_core.errors import InvalidRutError

    try:
        company = company_by_rut(engine, rut)
    except InvalidRutError as exc:
        _fail(exc.code, exc.message)
    if company is None:
        _fail(
            "company_not_found",
            f"no company with RUT {rut}: create it with `dte-ai company create`",
        )
    return company


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        _fail("unreadable_file", f"cannot read {path}: {exc.strerror}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        _fail("invalid_json", f"{path} is not UTF-8 JSON: {exc}")


def _upsert(engine: Any, company: Any, body: dict[str, Any]) -> None:
    from ai_service.repositories import context as repo

    result = _run(lambda: repo.upsert(engine, company.id, _run(lambda: repo.sections(body))))
    typer.echo(json.dumps(result.as_dict()))


@app.command("load")
def load(
    file: Annotated[Path, typer.Argument(help="JSON with accounts, projects, suppliers, ...")],
    company: CompanyOpt,
) -> None:
    """Upsert a company's context from a JSON file (the body of PUT /v1/context)."""
    body = _read_json(file)
    if not isinstance(body, dict):
        _fail("invalid_json", f"{file} must hold a JSON object with context sections")
    engine, _box = _open()
    _upsert(engine, _company(engine, company), body)


def learn(
    file: Annotated[Path, typer.Argument(help="JSON lines: {'invoice': {...}, 'decision': {...}}")],
    company: CompanyOpt,
) -> None:
    """Record the accountant's decisions on past received documents (one JSON object a line)."""
    invoices: list[Any] = []
    decisions: list[Any] = []
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        _fail("unreadable_file", f"cannot read {file}: {exc.strerror}")
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            _fail("invalid_json", f"{file} line {n} is not JSON: {exc.msg}")
        if not isinstance(record, dict) or "decision" not in record:
            _fail(
                "invalid_json", f"{file} line {n}: expected {{'decision': {{...}}, 'invoice': ...}}"
            )
        decisions.append(record["decision"])
        if record.get("invoice") is not None:
            invoices.append(record["invoice"])
    engine, _box = _open()
    _upsert(engine, _company(engine, company), {"invoices": invoices, "decisions": decisions})
