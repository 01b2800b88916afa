"""Issued documents: the signed XML and the metadata to find it again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, insert, select

from ai_service.api.errors import NotFound
from ai_service.db.session import reading
from ai_service.db.tables import documents
from ai_service.repositories.companies import aware, utcnow

if TYPE_CHECKING:
    from dte_core.issuing import IssuedDocument

STATUS_SIGNED = "signed"


@dataclass(frozen=True)
class DocumentInfo:
    id: str
    tipo_dte: int
    folio: int
    rut_emisor: str
    rut_receptor: str
    fecha_emision: date
    monto_total: int
    status: str
    created_at: datetime


_INFO_COLUMNS = [documents.c[name] for name in DocumentInfo.__dataclass_fields__]


def _info(row: Any) -> DocumentInfo:
    values = dict(row._mapping)
    values["created_at"] = aware(values["created_at"])
    return DocumentInfo(**values)


def insert_document(
    engine: Engine, company_id: str, document_id: str, issued: IssuedDocument
) -> DocumentInfo:
    info = DocumentInfo(
        id=document_id,
        tipo_dte=issued.tipo_dte,
        folio=issued.folio,
        rut_emisor=issued.rut_emisor,
        rut_receptor=issued.rut_receptor,
        fecha_emision=issued.fecha_emision,
        monto_total=issued.monto_total,
        status=STATUS_SIGNED,
        created_at=utcnow(),
    )
    with engine.begin() as conn:
        conn.execute(
            insert(documents).values(company_id=company_id, xml=issued.xml, **info.__dict__)
        )
    return info


def _not_found(document_id: str) -> NotFound:
    # Same answer whether the id does not exist or belongs to another company: the id of
    # someone else's document must not be confirmable.
    return NotFound(f"no document {document_id} for this company", code="document_not_found")


def get_document(engine: Engine, company_id: str, document_id: str) -> DocumentInfo:
    with reading(engine) as conn:
        row = conn.execute(
            select(*_INFO_COLUMNS).where(
                documents.c.id == document_id, documents.c.company_id == company_id
            )
        ).first()
    if row is None:
        raise _not_found(document_id)
    return _info(row)


def get_document_xml(engine: Engine, company_id: str, document_id: str) -> bytes:
    with reading(engine) as conn:
        xml = conn.execute(
            select(documents.c.xml).where(
                documents.c.id == document_id, documents.c.company_id == company_id
            )
        ).scalar_one_or_none()
    if xml is None:
        raise _not_found(document_id)
    return bytes(xml)
