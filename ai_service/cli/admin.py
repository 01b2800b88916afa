"""``dte-ai company create`` and ``dte-ai company add-key``: administration on the server itself.

The full API key is printed exactly once, on stdout as JSON; only its HMAC is stored.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, NoReturn

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)

EXIT_BAD_INPUT = 2


def _fail(code: str, message: str, fields: list[dict[str, str]] | None = None) -> NoReturn:
    payload = {"error": {"code": code, "message": message, "fields": fields or []}}
    sys.stderr.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    raise typer.Exit(EXIT_BAD_INPUT)


def _open() -> tuple[Any, Any]:
    from ai_service.db.session import engine_for, migrate
    from ai_service.secrets import SecretBox
    from ai_service.settings import ConfigurationError, Settings

    settings = Settings()  # one-shot command: read the environment now, not at import
    try:
        box = SecretBox(settings.secret_key_bytes())
    except ConfigurationError as exc:
        _fail("configuration_error", str(exc))
    migrate(settings)
    return engine_for(settings), box


def _run(action: Any) -> Any:
    from ai_service.api.errors import ApiError
    from dte_core.errors import DteError

    try:
        return action()
    except (ApiError, DteError) as exc:
        _fail(exc.code, exc.message, [f.as_dict() for f in exc.fields])


@app.command("create")
def create(
    rut: Annotated[str, typer.Option("--rut", help="the company's RUT, e.g. 76086428-5")],
    name: Annotated[str, typer.Option("--name", help="the company's name")],
) -> None:
    """Create a company and print its id and first API key (shown only now)."""
    from ai_service.repositories.companies import create_company

    engine, box = _open()
    try:
        company, key = _run(lambda: create_company(engine, box, rut=rut, name=name))
    finally:
        engine.dispose()
    out = {
        "company_id": company.id,
        "rut": company.rut,
        "name": company.name,
        "api_key": key.key,
        "api_key_id": key.id,
    }
    sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    sys.stderr.write("store the api_key now: it is not shown again\n")


@app.command("add-key")
def add_key(company_id: Annotated[str, typer.Argument(metavar="COMPANY_ID")]) -> None:
    """Add an API key to a company and print it (shown only now)."""
    from ai_service.repositories.companies import add_api_key

    engine, box = _open()
    try:
        key = _run(lambda: add_api_key(engine, box, company_id))
    finally:
        engine.dispose()
    out = {"company_id": key.company_id, "api_key": key.key, "api_key_id": key.id}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stderr.write("store the api_key now: it is not shown again\n")
