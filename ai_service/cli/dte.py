"""``dte-ai dte issue`` and ``dte-ai dte verify`` — a scripted contract: keep flags and exit codes.

Exit codes: 0 success / valid, 1 invalid document (verify), 2 bad or hostile input (JSON error on
stderr naming each offending field).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from dte_core.errors import DteError

app = typer.Typer(no_args_is_help=True, add_completion=False)

EXIT_INVALID = 1
EXIT_BAD_INPUT = 2
#: Refuse before reading: no legitimate DTE envelope is this large.
MAX_INPUT_BYTES = 20 * 1024 * 1024


def _fail(
    code: str,
    message: str,
    fields: list[dict[str, str]] | None = None,
    *,
    exit_code: int = EXIT_BAD_INPUT,
) -> NoReturn:
    payload = {"error": {"code": code, "message": message, "fields": fields or []}}
    sys.stderr.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    raise typer.Exit(exit_code)


def _read(path: Path, what: str, limit: int = MAX_INPUT_BYTES) -> bytes:
    try:
        size = path.stat().st_size
        if size > limit:
            _fail("input_too_large", f"{what} {path} is {size} bytes; the limit is {limit}")
        return path.read_bytes()
    except OSError as exc:
        _fail(
            "unreadable_file",
            f"cannot read {what} {path}: {exc.strerror}",
            [{"field": what, "code": "unreadable_file", "message": str(path)}],
        )


def _keyring(trust_sii_key: list[Path] | None) -> Any:
    from dte_core.caf import SiiKeyring

    keyring = SiiKeyring.default()
    for key_path in trust_sii_key or []:
        keyring = keyring.with_trusted_key(_read(key_path, "--trust-sii-key"))
    return keyring


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@app.command("issue")
def issue(
    input_json: Annotated[Path, typer.Argument(metavar="INPUT.json", help="Caratula + Documentos")],
    caf: Annotated[list[Path], typer.Option("--caf", help="CAF file from the SII (repeatable)")],
    cert: Annotated[Path, typer.Option("--cert", help="company certificate, PKCS#12")],
    cert_password_file: Annotated[Path, typer.Option("--cert-password-file")],
    out: Annotated[Path, typer.Option("--out", help="where to write the signed EnvioDTE")],
    trust_sii_key: Annotated[
        list[Path] | None,
        typer.Option("--trust-sii-key", help="extra CAF-signing public key (certification/tests)"),
    ] = None,
) -> None:
    """Issue the documents of INPUT.json and write one signed EnvioDTE (or EnvioBOLETA)."""
    from dte_core.caf import Caf
    from dte_core.folios import FolioStore
    from dte_core.issuing import Issuer, IssuerMaterial
    from dte_core.signing import CompanyCertificate

    raw = _read(input_json, "INPUT.json")
    try:
        request = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        _fail("invalid_json", f"INPUT.json is not valid JSON: {exc}")
    if not isinstance(request, dict):
        _fail("invalid_json", 'INPUT.json must be an object {"Caratula": ..., "Documentos": [...]}')
    password = _read(cert_password_file, "--cert-password-file", 4096).rstrip(b"\r\n")
    try:
        keyring = _keyring(trust_sii_key)
        cafs = [Caf.from_bytes(_read(p, "--caf")) for p in caf]
        certificate = CompanyCertificate.from_pkcs12(_read(cert, "--cert"), password)
        engine = _engine()
        store = FolioStore(engine, low_water_mark=_settings().folio_low_water_mark)
        issuer = Issuer(IssuerMaterial(certificate, cafs, keyring), store, _company_id(request))
        envio = issuer.issue_envio(request)
    except DteError as exc:
        _fail(exc.code, exc.message, [f.as_dict() for f in exc.fields])
    _atomic_write(out, envio.xml)
    for doc in envio.documents:
        if doc.folio_warning:
            sys.stderr.write(f"warning: {doc.folio_warning}\n")
    summary = {
        "out": str(out),
        "documents": [
            {
                "tipo_dte": d.tipo_dte,
                "folio": d.folio,
                "rut_receptor": d.rut_receptor,
                "monto_total": d.monto_total,
            }
            for d in envio.documents
        ],
    }
    sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")


@app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(metavar="FILE.xml")],
    trust_sii_key: Annotated[list[Path] | None, typer.Option("--trust-sii-key")] = None,
) -> None:
    """Check XSD, TED, CAF and signatures of a DTE, EnvioDTE or EnvioBOLETA; JSON on stdout."""
    from dte_core.errors import XmlParseError
    from dte_core.received import verify_xml

    data = _read(file, "FILE.xml")
    try:
        report = verify_xml(data, keyring=_keyring(trust_sii_key))
    except XmlParseError as exc:
        sys.stdout.write(json.dumps({"valid": False, "error": exc.as_dict()}) + "\n")
        _fail(exc.code, exc.message)
    except DteError as exc:
        _fail(exc.code, exc.message, [f.as_dict() for f in exc.fields])
    result = report.as_dict()
    sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    raise typer.Exit(0 if report.valid else EXIT_INVALID)


def _settings() -> Any:
    from ai_service.settings import Settings

    return Settings()  # one-shot command: read the environment now, not at import


def _engine() -> Any:
    from ai_service.db.migrate import upgrade_to_head
    from dte_core.storage import create_engine_for

    url = _settings().database_url
    upgrade_to_head(url)
    return create_engine_for(url)


def _company_id(request: dict[str, Any]) -> str:
    """Folios belong to the emisor: the CLI keys them by the emisor's RUT."""
    from dte_core.rut import Rut

    docs = request.get("Documentos") or [{}]
    first = docs[0] if isinstance(docs, list) and docs and isinstance(docs[0], dict) else {}
    emisor = (first.get("Encabezado") or {}).get("Emisor") or {}
    try:
        return f"rut:{Rut.parse(str(emisor.get('RUTEmisor', '')))}"
    except DteError:  # validation reports the bad RUT with its field path
        return "rut:unknown"
