"""``dte-ai serve``: upgrade the database to head, then run the API with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option("--host", help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="worker processes (one per core)")
    ] = 1,
) -> None:
    import uvicorn

    from ai_service.db.session import migrate
    from ai_service.settings import ConfigurationError, get_settings

    # The factory below reads the same cached settings, so both see one environment.
    settings = get_settings()
    try:
        settings.secret_key_bytes()  # fail here, readably, rather than inside uvicorn
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    migrate(settings)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - display only
    if ":" in shown:
        shown = f"[{shown}]"
    typer.echo(f"OpenAPI docs: http://{shown}:{port}/docs")
    uvicorn.run("ai_service.main:create_app", factory=True, host=host, port=port, workers=workers)
