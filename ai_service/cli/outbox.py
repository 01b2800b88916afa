"""``dte-ai outbox run``: the worker that takes sent documents to the SII and follows them."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer

from ai_service.cli.admin import _open

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command("run")
def run(
    once: Annotated[bool, typer.Option("--once", help="one pass, then exit")] = False,
    interval: Annotated[
        float, typer.Option("--interval", help="seconds between idle passes")
    ] = 5.0,
) -> None:
    """Envelope queued documents, upload them once, poll the SII until each one is decided."""
    from ai_service.outbox.wiring import build_worker
    from ai_service.settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings()
    engine, box = _open()
    worker = build_worker(settings, engine, box)
    if once:
        typer.echo(json.dumps(worker.run_once().__dict__))
        return
    worker.run_forever(interval=interval)
