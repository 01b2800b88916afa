"""``dte-ai received ingest|watch|fetch-imap``: bring received documents in from the server side.

Every file is stored raw before it is parsed, exactly as through ``POST /v1/received``.
Exit codes: 0 every file stored and every document valid, 1 some document invalid (stored, with
its findings), 2 bad input or a refused file (hostile, unreadable, not a DTE) — JSON on stdout,
errors as JSON on stderr.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from dte_core.xmlsafe import DEFAULT_MAX_BYTES

app = typer.Typer(no_args_is_help=True, add_completion=False)

EXIT_INVALID = 1
EXIT_BAD_INPUT = 2
MAX_INPUT_BYTES = DEFAULT_MAX_BYTES  # a bigger file the XML parser would refuse anyway

_COMPANY = typer.Option("--company", help="the receiving company: its id or its RUT")
_TRUST = typer.Option("--trust-sii-key", help="extra CAF-signing public key (certification/tests)")


def _fail(code: str, message: str) -> NoReturn:
    payload = {"error": {"code": code, "message": message, "fields": []}}
    sys.stderr.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    raise typer.Exit(EXIT_BAD_INPUT)


def _emit(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def _open_company(company: str, trust: list[Path] | None = None) -> tuple[Any, Any, Any, Any]:
    """The settings, the engine (migrated), an Ingestor and the company (by id or RUT); bad
    input exits 2. Shared with ``dte-ai classify``."""
    from ai_service.db.session import engine_for, migrate
    from ai_service.ingest.service import Ingestor
    from ai_service.repositories.companies import company_by_rut, get_company
    from ai_service.settings import Settings
    from dte_core.caf import SiiKeyring
    from dte_core.errors import DteError

    settings = Settings()  # one-shot command: read the environment now, not at import
    keyring = SiiKeyring.default()
    try:
        for path in [*settings.trusted_sii_keys, *(trust or [])]:
            keyring = keyring.with_trusted_key(path.read_bytes())
    except (OSError, DteError) as exc:
        _fail("unreadable_sii_key", f"cannot use the trusted SII key: {exc}")
    migrate(settings)
    engine = engine_for(settings)
    found = get_company(engine, company)
    if found is None:
        try:
            found = company_by_rut(engine, company)
        except DteError:
            found = None
    if found is None:
        engine.dispose()
        _fail(
            "unknown_company", f"no company {company!r}: give its id or RUT (dte-ai company create)"
        )
    return settings, engine, Ingestor(engine, keyring), found


def _open(company: str, trust: list[Path] | None) -> tuple[Any, Any, str]:
    """The engine (migrated), an Ingestor and the company id."""
    _, engine, ingestor, found = _open_company(company, trust)
    return engine, ingestor, found.id


def _read_input(path: Path) -> bytes:
    """A file's bytes; over :data:`MAX_INPUT_BYTES` or unreadable exits 2."""
    try:
        if path.stat().st_size > MAX_INPUT_BYTES:
            _fail("input_too_large", f"{path} is over {MAX_INPUT_BYTES} bytes")
        return path.read_bytes()
    except OSError as exc:
        _fail("unreadable_file", f"cannot read {path}: {exc.strerror}")


def _exit_code(results: list[Any]) -> int:
    if any(r.refused for r in results):
        return EXIT_BAD_INPUT
    if any(not r.valid for r in results):
        return EXIT_INVALID
    return 0


@app.command("ingest")
def ingest(
    files: Annotated[list[Path], typer.Argument(metavar="FILE.xml...")],
    company: Annotated[str, _COMPANY],
    trust_sii_key: Annotated[list[Path] | None, _TRUST] = None,
) -> None:
    """Store and verify received EnvioDTE / DTE files; one JSON line per file."""
    engine, ingestor, company_id = _open(company, trust_sii_key)
    results = []
    try:
        for path in files:
            raw = _read_input(path)
            result = ingestor.ingest(company_id, raw, source="cli", filename=path.name)
            results.append(result)
            out = result.as_dict()
            error = result.error()
            if error is not None:
                out["error"] = error.as_dict()
            _emit(out)
    finally:
        engine.dispose()
    raise typer.Exit(_exit_code(results))


@app.command("watch")
def watch(
    directory: Annotated[Path, typer.Argument(metavar="DIR", file_okay=False)],
    company: Annotated[str, _COMPANY],
    once: Annotated[bool, typer.Option("--once", help="scan once and exit")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.1)] = 5.0,
    settle: Annotated[
        float, typer.Option("--settle", help="seconds a file must be untouched", min=0)
    ] = 2.0,
    trust_sii_key: Annotated[list[Path] | None, _TRUST] = None,
) -> None:
    """Ingest files dropped in DIR, moving them to DIR/processed or DIR/failed."""
    from ai_service.ingest.folder import FolderWatcher

    if not directory.is_dir():
        _fail("not_a_directory", f"{directory} is not a directory")
    engine, ingestor, company_id = _open(company, trust_sii_key)

    def one(raw: bytes, name: str) -> Any:
        result = ingestor.ingest(company_id, raw, source="folder", filename=name)
        _emit({"file": name, **result.as_dict()})
        return result

    watcher = FolderWatcher(directory, one, settle_seconds=settle)
    try:
        if once:
            outcomes = watcher.scan_once()
            results = [o.result for o in outcomes if o.result is not None]
            failed = any(o.result is None and o.error for o in outcomes)
            raise typer.Exit(EXIT_BAD_INPUT if failed else _exit_code(results))
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            watcher.run(stop, interval)
        except KeyboardInterrupt:
            stop.set()
    finally:
        engine.dispose()


@app.command("fetch-imap")
def fetch_imap(
    company: Annotated[str, _COMPANY],
    host: Annotated[str, typer.Option("--host")],
    user: Annotated[str, typer.Option("--user")],
    password_file: Annotated[Path, typer.Option("--password-file", help="file holding it")],
    port: Annotated[int | None, typer.Option("--port")] = None,
    mailbox: Annotated[str, typer.Option("--mailbox")] = "INBOX",
    security: Annotated[str, typer.Option("--security", help="ssl | starttls | plain")] = "ssl",
    processed_mailbox: Annotated[str | None, typer.Option("--processed-mailbox")] = None,
    trust_sii_key: Annotated[list[Path] | None, _TRUST] = None,
) -> None:
    """One pass over the unseen messages of an IMAP mailbox; their XML attachments are ingested."""
    from ai_service.ingest.imap import ImapConfig, ImapError, ImapFetcher

    if security not in ("ssl", "starttls", "plain"):
        _fail("invalid_option", "--security must be ssl, starttls or plain")
    try:
        password = password_file.read_text("utf-8").rstrip("\r\n")
    except OSError as exc:
        _fail("unreadable_file", f"cannot read --password-file {password_file}: {exc.strerror}")
    engine, ingestor, company_id = _open(company, trust_sii_key)
    config = ImapConfig(
        host=host,
        user=user,
        password=password,
        port=port or (993 if security == "ssl" else 143),
        mailbox=mailbox,
        security=security,
        processed_mailbox=processed_mailbox,
    )

    def one(raw: bytes, name: str) -> Any:
        return ingestor.ingest(company_id, raw, source="imap", filename=name)

    try:
        fetched = ImapFetcher(config, one).fetch()
    except ImapError as exc:
        _fail(exc.code, str(exc))
    finally:
        engine.dispose()
    for item in fetched:
        _emit({"uid": item.uid, "attachment": item.filename, **item.result.as_dict()})
    raise typer.Exit(_exit_code([f.result for f in fetched]))
