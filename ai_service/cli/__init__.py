"""The ``dte-ai`` command line. Sub-commands live in their own modules and import lazily."""

from __future__ import annotations

import typer

from ai_service.cli import (
    admin,
    ai,
    classify,
    context,
    dte,
    evals,
    outbox,
    received,
    serve,
    sii,
)
from embeddings import cli as _embeddings_cli

app = typer.Typer(name="dte-ai", no_args_is_help=True, add_completion=False)
app.add_typer(dte.app, name="dte", help="Issue and verify DTE documents.")
app.add_typer(admin.app, name="company", help="Manage companies and their API keys.")
app.command("serve", help="Run the HTTP service.")(serve.serve)
app.add_typer(context.app, name="context", help="Load a company's context (what Odoo holds).")
app.add_typer(outbox.app, name="outbox", help="Send documents to the SII and follow them.")
app.command("sii-sim", help="Run the local SII simulator (loopback by default).")(sii.sii_sim)
app.add_typer(
    received.app, name="received", help="Ingest received documents (files, mailbox folder, IMAP)."
)
app.add_typer(
    _embeddings_cli.app, name="index", help="Build, rebuild and query a company's embeddings index."
)
app.add_typer(ai.app, name="ai", help="Ask the AI use cases about one document.")
app.command("analyze", help="Run the use cases on received documents, one JSON line each.")(
    ai.analyze_command
)
app.add_typer(
    evals.app,
    name="eval",
    help="Evals, and the gate that keeps unevaluated prompts from providers.",
)
app.command("classify", help="Classify the received invoices of a folder or zip.")(
    classify.classify
)
app.add_typer(classify.jobs_app, name="jobs", help="Batch-classification Celery worker and resume.")
app.command("learn", help="Record the accountant's decisions on past documents.")(context.learn)


def main() -> None:
    app()
