"""``dte-ai classify FOLDER_OR_ZIP --company RUT --out results.jsonl`` and ``dte-ai jobs ...``.

``classify`` ingests every XML file of a folder (recursively) or a zip — stored raw before it is
parsed, as through the API — creates a job and follows it with a progress bar, then writes the
results (JSON Lines, or CSV when ``--out`` ends in ``.csv``). The job runs on the Celery workers
when ``DTE_AI_CELERY_BROKER_URL`` is set, else in this process. Exit codes: 0 every document
classified, 1 some failed (each with its error in the output), 2 bad input (JSON on stderr).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ai_service.cli.received import _fail, _open_company, _read_input

jobs_app = typer.Typer(no_args_is_help=True, add_completion=False)

EXIT_SOME_FAILED = 1
_POLL_SECONDS = 0.2


def _read_inputs(path: Path) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of every XML file to classify; bad input exits 2."""
    from ai_service.api.errors import ApiError
    from ai_service.jobs import archive

    if not path.exists():
        _fail("not_found", f"{path} does not exist: give a folder of XML files or a zip")
    if path.is_dir():
        found = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix.lower() == ".xml"
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        files = [(str(p.relative_to(path)), _read_input(p)) for p in found]
    else:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            _fail("unreadable_file", f"cannot read {path}: {exc.strerror}")
        if archive.is_zip(raw):
            try:
                files = archive.read_zip(raw).files
            except ApiError as exc:
                _fail(exc.code, exc.message)
        elif path.suffix.lower() == ".xml":
            files = [(path.name, raw)]
        else:
            _fail("unsupported_input", f"{path} is neither a folder, a zip nor an XML file")
    if not files:
        _fail("no_xml_files", f"{path} holds no *.xml file to classify")
    return files


def _follow(engine: Any, company_id: str, job_id: str, total: int) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from ai_service.jobs import repository as repo

    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        "{task.fields[failed]} failed",
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        bar = progress.add_task("classifying", total=total, failed=0)
        while True:
            job = repo.get_job(engine, company_id, job_id)
            progress.update(bar, completed=job.done + job.failed, failed=job.failed)
            if job.finished:
                return job
            time.sleep(_POLL_SECONDS)


def classify(
    path: Annotated[Path, typer.Argument(metavar="FOLDER_OR_ZIP")],
    company: Annotated[str, typer.Option("--company", help="the receiving company: RUT or id")],
    out: Annotated[Path, typer.Option("--out", help="results file: .jsonl (default) or .csv")],
) -> None:
    """Classify every received invoice of a folder or zip; write one result per document."""
    from ai_service.jobs import export
    from ai_service.jobs import repository as repo
    from ai_service.jobs.config import JobsConfig
    from ai_service.jobs.intake import ingest_files
    from ai_service.jobs.runner import build_dispatcher
    from ai_service.repositories import context as context_repo
    from ai_service.secrets import SecretBox

    if out.exists() and out.is_dir():
        _fail("invalid_option", f"--out {out} is a directory: give a file name")
    files = _read_inputs(path)
    settings, engine, ingestor, found = _open_company(company)
    try:
        if not context_repo.counts(engine, found.id).get("accounts"):
            _fail(
                "no_context",
                "the company has no chart of accounts: load its context first "
                "(dte-ai context load)",
            )
        items = ingest_files(ingestor, found.id, files, source="cli")
        job, _ = repo.create_job(engine, found.id, items, source="cli")
        runner = build_dispatcher(
            JobsConfig.from_settings(settings),
            engine,
            lambda: SecretBox(settings.secret_key_bytes()),
            resume=False,  # the service resumes its own jobs; this command runs this one
        )
        try:
            runner.dispatch(job.id, job.total)
            job = _follow(engine, found.id, job.id, job.total)
        finally:
            runner.shutdown()
        chunks = (
            export.iter_csv(engine, found.id, job.id)
            if out.suffix.lower() == ".csv"
            else export.iter_jsonl(engine, found.id, job.id)
        )
        with out.open("wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
    finally:
        engine.dispose()
    summary = {"job_id": job.id, "total": job.total, "done": job.done, "failed": job.failed}
    sys.stdout.write(json.dumps({**summary, "out": str(out)}) + "\n")
    raise typer.Exit(EXIT_SOME_FAILED if job.failed else 0)


@jobs_app.command(
    "worker", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def worker(ctx: typer.Context) -> None:
    """Run a Celery worker for the jobs queue (extra options go to `celery worker`)."""
    from ai_service.jobs.worker import main
    from ai_service.settings import Settings

    if not Settings().celery_broker_url:
        _fail("configuration_error", "set DTE_AI_CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/0)")
    main(list(ctx.args))


@jobs_app.command("resume")
def resume() -> None:
    """Queue every unfinished job again (after a broker outage); nothing is recorded twice."""
    from ai_service.db.session import engine_for, migrate
    from ai_service.jobs.config import JobsConfig
    from ai_service.jobs.runner import CeleryDispatcher
    from ai_service.settings import Settings

    settings = Settings()
    config = JobsConfig.from_settings(settings)
    if not config.uses_celery:
        _fail(
            "configuration_error",
            "jobs run in-process (no DTE_AI_CELERY_BROKER_URL): the service resumes them itself",
        )
    migrate(settings)
    engine = engine_for(settings)
    dispatcher = CeleryDispatcher(config)
    try:
        count = dispatcher.resume(engine)
    finally:
        dispatcher.shutdown()
        engine.dispose()
    sys.stdout.write(json.dumps({"resumed": count}) + "\n")
