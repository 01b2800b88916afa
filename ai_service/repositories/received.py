"""Received files (raw bytes first), the documents they carried, and the answers we signed.

Every function takes the company id and filters by it: another company's file or document is
"not found", never "forbidden", so its existence cannot be probed.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ai_service.api.errors import NotFound
from ai_service.db.session import reading
from ai_service.db.tables import received_documents, received_files, received_responses
from ai_service.repositories.companies import aware, utcnow

STATUS_STORED = "stored"
STATUS_PROCESSED = "processed"
STATUS_REFUSED = "refused"
#: received_documents.status: the aprobación comercial, by EstadoDTE (RespuestaEnvioDTE_v10.xsd)
DOC_RECEIVED = "received"
DOC_STATUS_BY_ESTADO = {0: "accepted", 1: "accepted_with_discrepancies", 2: "rejected"}


@dataclass(frozen=True)
class FileInfo:
    id: int
    sha256: str
    source: str
    filename: str | None
    size: int
    status: str
    root: str | None
    error_code: str | None
    error_message: str | None
    received_at: datetime
    processed_at: datetime | None


@dataclass(frozen=True)
class ReceivedDocumentInfo:
    id: str
    file_id: int
    rut_emisor: str
    tipo_dte: int
    folio: int
    rut_receptor: str | None
    fecha_emision: date | None
    monto_total: int | None
    authentic: bool
    schema_valid: bool
    signature_context: str | None
    status: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class NewDocument:
    rut_emisor: str
    tipo_dte: int
    folio: int
    rut_receptor: str | None
    fecha_emision: date | None
    monto_total: int | None
    authentic: bool
    schema_valid: bool
    signature_context: str | None
    xml: bytes
    report: dict[str, Any]


_FILE_COLUMNS = [received_files.c[name] for name in FileInfo.__dataclass_fields__]
_DOC_COLUMNS = [received_documents.c[name] for name in ReceivedDocumentInfo.__dataclass_fields__]


def _file(row: Any) -> FileInfo:
    values = dict(row._mapping)
    values["received_at"] = aware(values["received_at"])
    if values["processed_at"] is not None:
        values["processed_at"] = aware(values["processed_at"])
    return FileInfo(**values)


def _doc(row: Any) -> ReceivedDocumentInfo:
    values = dict(row._mapping)
    values["created_at"] = aware(values["created_at"])
    values["updated_at"] = aware(values["updated_at"])
    return ReceivedDocumentInfo(**values)


def sha256_hex(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def store_file(
    engine: Engine, company_id: str, raw: bytes, *, source: str, filename: str | None
) -> tuple[FileInfo, bool]:
    """Persist the raw bytes (before any parsing); ``(file, created)``.

    The same bytes for the same company are the same file: a second upload returns the first
    row (``created`` False), also when two uploads race.
    """
    digest = sha256_hex(raw)
    try:
        with engine.begin() as conn:
            file_id = conn.execute(
                insert(received_files).values(
                    company_id=company_id,
                    sha256=digest,
                    source=source,
                    filename=(filename or None) and filename[-255:],
                    size=len(raw),
                    raw=raw,
                    status=STATUS_STORED,
                    received_at=utcnow(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
    except IntegrityError:
        existing = find_file_by_sha(engine, company_id, digest)
        if existing is None:  # pragma: no cover - the constraint that fired names this row
            raise
        return existing, False
    return get_file(engine, company_id, int(file_id)), True


def find_file_by_sha(engine: Engine, company_id: str, digest: str) -> FileInfo | None:
    with reading(engine) as conn:
        row = conn.execute(
            select(*_FILE_COLUMNS).where(
                received_files.c.company_id == company_id, received_files.c.sha256 == digest
            )
        ).first()
    return _file(row) if row is not None else None


def _file_not_found(file_id: int | str) -> NotFound:
    return NotFound(f"no received file {file_id} for this company", code="received_file_not_found")


def _doc_not_found(document_id: str) -> NotFound:
    return NotFound(
        f"no received document {document_id} for this company", code="received_document_not_found"
    )


def get_file(engine: Engine, company_id: str, file_id: int) -> FileInfo:
    with reading(engine) as conn:
        row = conn.execute(
            select(*_FILE_COLUMNS).where(
                received_files.c.id == file_id, received_files.c.company_id == company_id
            )
        ).first()
    if row is None:
        raise _file_not_found(file_id)
    return _file(row)


def get_file_raw(engine: Engine, company_id: str, file_id: int) -> bytes:
    with reading(engine) as conn:
        raw = conn.execute(
            select(received_files.c.raw).where(
                received_files.c.id == file_id, received_files.c.company_id == company_id
            )
        ).scalar_one_or_none()
    if raw is None:
        raise _file_not_found(file_id)
    return bytes(raw)


def get_file_report(engine: Engine, company_id: str, file_id: int) -> dict[str, Any] | None:
    with reading(engine) as conn:
        text = conn.execute(
            select(received_files.c.report).where(
                received_files.c.id == file_id, received_files.c.company_id == company_id
            )
        ).scalar_one_or_none()
    return json.loads(text) if text else None


def list_files(engine: Engine, company_id: str, *, limit: int, offset: int) -> list[FileInfo]:
    with reading(engine) as conn:
        rows = conn.execute(
            select(*_FILE_COLUMNS)
            .where(received_files.c.company_id == company_id)
            .order_by(received_files.c.id.desc())
            .limit(limit)
            .offset(offset)
        ).all()
    return [_file(r) for r in rows]


def mark_refused(engine: Engine, company_id: str, file_id: int, code: str, message: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(received_files)
            .where(received_files.c.id == file_id, received_files.c.company_id == company_id)
            .values(
                status=STATUS_REFUSED,
                error_code=code,
                error_message=message,
                processed_at=utcnow(),
            )
        )


def record_documents(
    engine: Engine,
    company_id: str,
    file_id: int,
    *,
    root: str,
    report: dict[str, Any],
    documents: list[NewDocument],
) -> list[tuple[str, str]]:
    """Store the file's documents and mark it processed, in one transaction.

    Returns ``(document_id, outcome)`` per document: ``new``; ``duplicate`` when the company
    already holds that (emisor, tipo, folio); ``upgraded`` when the copy held was not authentic
    and this one is (a forged first copy must not shadow the genuine document).
    """
    outcomes = []
    now = utcnow()
    with engine.begin() as conn:
        for doc in documents:
            outcomes.append(_record_one(conn, company_id, file_id, doc, now))
        conn.execute(
            update(received_files)
            .where(received_files.c.id == file_id, received_files.c.company_id == company_id)
            .values(
                status=STATUS_PROCESSED,
                root=root[:40],
                report=json.dumps(report, ensure_ascii=False, default=str),
                error_code=None,
                error_message=None,
                processed_at=now,
            )
        )
    return outcomes


def _record_one(
    conn: Connection, company_id: str, file_id: int, doc: NewDocument, now: datetime
) -> tuple[str, str]:
    t = received_documents
    key = (
        t.c.company_id == company_id,
        t.c.rut_emisor == doc.rut_emisor,
        t.c.tipo_dte == doc.tipo_dte,
        t.c.folio == doc.folio,
    )
    values: dict[str, Any] = {
        "file_id": file_id,
        "rut_receptor": doc.rut_receptor,
        "fecha_emision": doc.fecha_emision,
        "monto_total": doc.monto_total,
        "authentic": doc.authentic,
        "schema_valid": doc.schema_valid,
        "signature_context": doc.signature_context,
        "xml": doc.xml,
        "report": json.dumps(doc.report, ensure_ascii=False, default=str),
        "updated_at": now,
    }
    existing = conn.execute(select(t.c.id, t.c.authentic).where(*key)).first()
    if existing is not None:
        if doc.authentic and not existing.authentic:
            conn.execute(update(t).where(t.c.id == existing.id).values(**values))
            return existing.id, "upgraded"
        return existing.id, "duplicate"
    document_id = str(uuid.uuid4())
    # A concurrent ingestion of the same document makes this insert fail: the transaction
    # rolls back and the caller retries, then finds the row (see ingest.service).
    conn.execute(
        insert(t).values(
            id=document_id,
            company_id=company_id,
            rut_emisor=doc.rut_emisor,
            tipo_dte=doc.tipo_dte,
            folio=doc.folio,
            status=DOC_RECEIVED,
            created_at=now,
            **values,
        )
    )
    return document_id, "new"


def documents_of_file(
    engine: Engine, company_id: str, keys: list[tuple[str, int, int]]
) -> dict[tuple[str, int, int], ReceivedDocumentInfo]:
    """The stored documents with these (rut_emisor, tipo_dte, folio) keys."""
    if not keys:
        return {}
    t = received_documents
    found: dict[tuple[str, int, int], ReceivedDocumentInfo] = {}
    with reading(engine) as conn:
        for rut, tipo, folio in keys:
            row = conn.execute(
                select(*_DOC_COLUMNS).where(
                    t.c.company_id == company_id,
                    t.c.rut_emisor == rut,
                    t.c.tipo_dte == tipo,
                    t.c.folio == folio,
                )
            ).first()
            if row is not None:
                found[(rut, tipo, folio)] = _doc(row)
    return found


def get_document(engine: Engine, company_id: str, document_id: str) -> ReceivedDocumentInfo:
    t = received_documents
    with reading(engine) as conn:
        row = conn.execute(
            select(*_DOC_COLUMNS).where(t.c.id == document_id, t.c.company_id == company_id)
        ).first()
    if row is None:
        raise _doc_not_found(document_id)
    return _doc(row)


def get_document_detail(engine: Engine, company_id: str, document_id: str) -> tuple[bytes, Any]:
    """The stored ``<DTE>`` bytes and its verification report."""
    t = received_documents
    with reading(engine) as conn:
        row = conn.execute(
            select(t.c.xml, t.c.report).where(t.c.id == document_id, t.c.company_id == company_id)
        ).first()
    if row is None:
        raise _doc_not_found(document_id)
    return bytes(row.xml), json.loads(row.report)


def list_documents(
    engine: Engine,
    company_id: str,
    *,
    rut_emisor: str | None = None,
    tipo_dte: int | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[ReceivedDocumentInfo], int]:
    t = received_documents
    where = [t.c.company_id == company_id]
    if rut_emisor is not None:
        where.append(t.c.rut_emisor == rut_emisor)
    if tipo_dte is not None:
        where.append(t.c.tipo_dte == tipo_dte)
    if status is not None:
        where.append(t.c.status == status)
    with reading(engine) as conn:
        total = conn.execute(select(func.count()).select_from(t).where(*where)).scalar_one()
        rows = conn.execute(
            select(*_DOC_COLUMNS)
            .where(*where)
            .order_by(t.c.created_at.desc(), t.c.id)
            .limit(limit)
            .offset(offset)
        ).all()
    return [_doc(r) for r in rows], int(total)


def save_response(
    engine: Engine,
    company_id: str,
    *,
    kind: str,
    build: Callable[[int], bytes],
    file_id: int | None = None,
    document_id: str | None = None,
    estado: int | None = None,
) -> tuple[int, bytes]:
    """Number, build and store a signed answer atomically: ``build(id_respuesta)`` signs it.

    The row is reserved first because the number (IdRespuesta) is inside what gets signed;
    a build that fails rolls the reservation back. Accepting or rejecting a document also
    records its new status.
    """
    with engine.begin() as conn:
        response_id = int(
            conn.execute(
                insert(received_responses).values(
                    company_id=company_id,
                    kind=kind,
                    file_id=file_id,
                    document_id=document_id,
                    estado=estado,
                    xml=b"",
                    created_at=utcnow(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        )
        xml = build(response_id)
        conn.execute(
            update(received_responses).where(received_responses.c.id == response_id).values(xml=xml)
        )
        if kind == "resultado" and document_id is not None and estado is not None:
            conn.execute(
                update(received_documents)
                .where(
                    received_documents.c.id == document_id,
                    received_documents.c.company_id == company_id,
                )
                .values(status=DOC_STATUS_BY_ESTADO[estado], updated_at=utcnow())
            )
    return response_id, xml
