"""The AI use cases from the command line, on the server's database, for one company.

``dte-ai analyze FILES... --company RUT --out results.jsonl`` writes one JSON line per
document with its classification, project, purchase_order and anomalies sections;
``dte-ai ai classify|match|reconcile|anomalies|validate|chat`` answer one question in JSON.
A file that cannot be read is reported (stderr, exit 2) without stopping the others.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from ai_service.cli.admin import EXIT_BAD_INPUT, _fail, _open

app = typer.Typer(no_args_is_help=True, add_completion=False)
CompanyOpt = Annotated[str, typer.Option("--company", help="the company's RUT")]


def _engines(rut: str) -> Any:
    from ai_service.cli.context import _company
    from ai_service.services.engines import EngineCache

    engine, _box = _open()
    company = _company(engine, rut)
    return EngineCache(engine).get(company), company, engine


def read_invoices(path: Path) -> list[Any]:
    """The received documents of a file: DTE/EnvioDTE XML, or JSON (one invoice or a list)."""
    from ai_service.services.invoices import parse_invoices

    return parse_invoices(path.read_bytes())


def _error(path: Path, exc: Exception) -> dict[str, Any]:
    code = getattr(exc, "code", "unreadable_file")
    return {
        "file": str(path),
        "error": {"code": code, "message": getattr(exc, "message", str(exc))},
    }


def analyze_command(
    files: Annotated[list[Path], typer.Argument(help="DTE or EnvioDTE XML files, or JSON")],
    company: CompanyOpt,
    out: Annotated[Path, typer.Option("--out", help="JSON lines, one per document")],
) -> None:
    """Classification, project, purchase order and anomalies for every document."""
    from ai_service.usecases.analyze import analyze

    engines, _company, _engine = _engines(company)
    failures = []
    with out.open("w", encoding="utf-8") as sink:
        for path in files:
            try:
                invoices = read_invoices(path)
            except Exception as exc:  # reported per file; the other files still run
                failures.append(_error(path, exc))
                continue
            for invoice in invoices:
                try:
                    result = analyze(engines, invoice, received_on=date.today())
                except Exception as exc:
                    failures.append(_error(path, exc))
                    continue
                sink.write(json.dumps({"file": str(path), **result}, ensure_ascii=False) + "\n")
    if failures:
        sys.stderr.write(json.dumps({"errors": failures}, ensure_ascii=False, indent=2) + "\n")
        raise typer.Exit(EXIT_BAD_INPUT)


def _single(file: Path, rut: str, use: Callable[[Any, Any], Any]) -> None:
    engines, _company, _engine = _engines(rut)
    try:
        invoices = read_invoices(file)
    except Exception as exc:
        _fail(getattr(exc, "code", "unreadable_file"), str(getattr(exc, "message", exc)))
    if len(invoices) != 1:
        _fail("one_document", f"{file} holds {len(invoices)} documents: use `dte-ai analyze`")
    try:
        result = use(engines, invoices[0])
    except ValueError as exc:
        _fail("wrong_company", str(exc))
    typer.echo(json.dumps(result.model_dump(mode="json"), ensure_ascii=False, indent=2))


FileArg = Annotated[Path, typer.Argument(help="one received document: DTE XML or JSON")]


@app.command("classify")
def classify(file: FileArg, company: CompanyOpt) -> None:
    """Expense account for the invoice and each of its lines."""
    _single(file, company, lambda e, inv: e.get("classifier").classify(inv))


@app.command("match")
def match(file: FileArg, company: CompanyOpt) -> None:
    """Top-k projects for the invoice."""
    _single(file, company, lambda e, inv: e.get("matcher").match(inv))


@app.command("reconcile")
def reconcile(file: FileArg, company: CompanyOpt) -> None:
    """Purchase-order and receipt reconciliation."""
    _single(file, company, lambda e, inv: e.get("reconciler").reconcile(inv))


@app.command("anomalies")
def anomalies(file: FileArg, company: CompanyOpt) -> None:
    """Anomalies and duplicates."""
    _single(file, company, lambda e, inv: e.get("anomalies").check(inv, received_on=date.today()))


@app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(help="a document to issue, as POST /v1/dte JSON")],
    company: CompanyOpt,
) -> None:
    """Every problem the SII or the receptor would find; exit 1 when issuing is blocked."""
    from ai_service.cli.context import _read_json
    from ai_service.usecases.validation import validate_document
    from ai_service.usecases.validation_context import IssuingContext

    engine, _box = _open()
    from ai_service.cli.context import _company
    from ai_service.repositories.issued_history import DbIssuedHistory

    found = _company(engine, company)
    result = validate_document(
        _read_json(file),
        IssuingContext(company_rut=found.rut, history=DbIssuedHistory(engine, found.id)),
    )
    typer.echo(json.dumps(result.model_dump(mode="json"), ensure_ascii=False, indent=2))
    if result.decision == "blocked":
        raise typer.Exit(1)


@app.command("chat")
def chat(
    question: Annotated[str, typer.Argument(help="the question, in Spanish")],
    company: CompanyOpt,
) -> None:
    """Answer from the company's data and the SII knowledge base, citing sources."""
    from ai_service.usecases.chat import answer

    engines, _company, _engine = _engines(company)
    typer.echo(
        json.dumps(
            answer(question, engines.get("retriever")).as_dict(), ensure_ascii=False, indent=2
        )
    )
