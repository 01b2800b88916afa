"""Issue one signed DTE from JSON, and read it back (metadata or the signed XML)."""

from __future__ import annotations

import logging
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Response, status
from pydantic import BaseModel, Field

from ai_service.api.deps import Context, CurrentCompany
from ai_service.repositories import cafs as caf_repo
from ai_service.repositories import documents as repo
from ai_service.repositories.certificates import load_certificate
from dte_core.errors import FieldError, InvalidDocumentError
from dte_core.rut import Rut

router = APIRouter(prefix="/v1/dte", tags=["dte"])
log = logging.getLogger(__name__)

XML_MEDIA_TYPE = "application/xml; charset=ISO-8859-1"

_EMISOR = {
    "RUTEmisor": "76086428-5",
    "RznSoc": "Empresa Demo SpA",
    "GiroEmis": "Servicios informaticos",
    "Acteco": [620200],
    "DirOrigen": "Av. Apoquindo 4501",
    "CmnaOrigen": "Las Condes",
}
_RECEPTOR = {
    "RUTRecep": "77777777-7",
    "RznSocRecep": "Cliente Ñandú Ltda",
    "GiroRecep": "Comercio",
    "DirRecep": "San Diego 2222",
    "CmnaRecep": "Santiago",
}
EXAMPLES: dict[str, Any] = {
    "factura": {
        "summary": "factura electrónica (33); folio and totals are computed",
        "value": {
            "Encabezado": {
                "IdDoc": {"TipoDTE": 33, "FchEmis": "2025-03-14"},
                "Emisor": _EMISOR,
                "Receptor": _RECEPTOR,
            },
            "Detalle": [
                {"NmbItem": "Parlantes Multimedia 180W.", "QtyItem": 20, "PrcItem": 4500},
                {"NmbItem": "Mouse Inalambrico PS/2", "QtyItem": 1, "PrcItem": 5000},
                {"NmbItem": "Caja de Diskettes 10 Unidades", "QtyItem": 5, "PrcItem": 1000},
            ],
        },
    },
    "nota_credito": {
        "summary": "nota de crédito (61) correcting the amounts of factura 1",
        "value": {
            "Encabezado": {
                "IdDoc": {"TipoDTE": 61, "FchEmis": "2025-03-14"},
                "Emisor": _EMISOR,
                "Receptor": _RECEPTOR,
            },
            "Detalle": [{"NmbItem": "Descuento parlantes", "QtyItem": 1, "PrcItem": 9000}],
            "Referencia": [
                {
                    "TpoDocRef": "33",
                    "FolioRef": "1",
                    "FchRef": "2025-03-10",
                    "CodRef": 3,
                    "RazonRef": "Corrige montos",
                }
            ],
        },
    },
}


class SiiStateOut(BaseModel):
    state: str = Field(
        description="queued, submitted, uploading, uploaded, accepted, "
        "accepted_with_objections or rejected"
    )
    sii_estado: str | None = Field(default=None, description="the SII's code (EPR, DOK, RSC...)")
    detail: Any = Field(default=None, description="the SII's reasons and the track id")
    updated_at: datetime


class DocumentOut(BaseModel):
    id: str
    tipo_dte: int
    folio: int
    rut_emisor: str
    rut_receptor: str
    fecha_emision: date
    monto_total: int
    status: str
    created_at: datetime
    totales: dict[str, Any] | None = Field(
        default=None, description="the computed Totales (in the issuing response)"
    )
    folio_warning: str | None = Field(
        default=None, description="set when few folios remain: load a new CAF soon"
    )
    xml_url: str
    sii: SiiStateOut | None = Field(
        default=None, description="its way to the SII, once sent (POST /v1/dte/{id}/send)"
    )


def _out(
    info: repo.DocumentInfo, *, engine: Any = None, company_id: str = "", **extra: Any
) -> DocumentOut:
    from ai_service.outbox import store as outbox

    values = {**info.__dict__}
    entry = outbox.find_entry(engine, company_id, info.id) if engine is not None else None
    if entry is not None:
        values["status"] = entry.state
        extra["sii"] = SiiStateOut(
            state=entry.state,
            sii_estado=entry.sii_estado,
            detail=entry.detail,
            updated_at=entry.updated_at,
        )
    return DocumentOut(**values, xml_url=f"/v1/dte/{info.id}/xml", **extra)


def _check_emisor(documento: Any, company_rut: str) -> None:
    emisor = Rut.parse(str(documento.Encabezado.Emisor.RUTEmisor))
    if emisor != Rut.parse(company_rut):
        raise InvalidDocumentError(
            f"RUTEmisor {emisor} is not the RUT of this API key's company ({company_rut}): "
            "issue with that company's key",
            code="emisor_mismatch",
            fields=[
                FieldError(
                    "Encabezado.Emisor.RUTEmisor", "emisor_mismatch", f"must be {company_rut}"
                )
            ],
        )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Issue one signed document",
    description="Validates the document, allocates its folio from the company's CAFs, stamps "
    "(TED) and signs it with the company's certificate, stores it, then answers. A rejected "
    "document consumes no folio.",
)
def issue_dte(
    ctx: Context,
    company: CurrentCompany,
    response: Response,
    body: Annotated[dict[str, Any], Body(openapi_examples=EXAMPLES)],
) -> DocumentOut:
    from dte_core import totals
    from dte_core.issuing import Issuer, IssuerMaterial
    from dte_core.models import parse_documento

    # Validate before touching any material, so a bad document is reported as such first.
    documento = totals.complete(parse_documento(body))
    _check_emisor(documento, company.rut)
    tipo = int(documento.Encabezado.IdDoc.TipoDTE)
    material = IssuerMaterial(
        certificate=load_certificate(ctx.engine, ctx.box, company.id),
        cafs=caf_repo.load_cafs(ctx.engine, ctx.box, company.id, tipo_dte=tipo),
        keyring=ctx.keyring(),
    )
    store = ctx.folio_store()
    issuer = Issuer(material, store, company.id, now=ctx.now)
    document_id = str(uuid.uuid4())
    issued = issuer.issue_documento(documento, document_ref=document_id)
    try:
        info = repo.insert_document(ctx.engine, company.id, document_id, issued)
    except Exception:
        # The XML never left this process: declare the folio unused rather than leave a gap.
        store.mark_void(
            company.id,
            issued.rut_emisor,
            issued.tipo_dte,
            issued.folio,
            "the signed document could not be stored and was never delivered",
        )
        raise
    ctx.metrics.documents_issued.labels(tipo_dte=str(issued.tipo_dte)).inc()
    log.info("issued document %s: tipo %s folio %s", document_id, issued.tipo_dte, issued.folio)
    response.headers["Location"] = f"/v1/dte/{document_id}"
    totales = issued.documento.Encabezado.Totales
    return _out(
        info,
        totales=totales.model_dump(mode="json", exclude_none=True) if totales else None,
        folio_warning=issued.folio_warning,
    )


@router.get(
    "/{document_id}",
    summary="A document's metadata, or its signed XML with ?format=xml",
    responses={200: {"content": {"application/xml": {}}}},
    response_model=DocumentOut,
)
def get_dte(
    ctx: Context,
    company: CurrentCompany,
    document_id: str,
    fmt: Annotated[Literal["json", "xml"], Query(alias="format")] = "json",
) -> Any:
    if fmt == "xml":
        return _xml(ctx, company.id, document_id)
    info = repo.get_document(ctx.engine, company.id, document_id)
    return _out(info, engine=ctx.engine, company_id=company.id)


@router.post(
    "/{document_id}/send",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a signed document to the SII (idempotent)",
    description="Queues the document in the outbox; the outbox worker (`dte-ai outbox run`) "
    "envelopes, uploads and follows it until the SII accepts or rejects it. Its state is in "
    "`sii` on GET /v1/dte/{id}; webhooks announce each change. Sending twice queues once.",
    response_model=DocumentOut,
)
def send_dte(ctx: Context, company: CurrentCompany, document_id: str) -> DocumentOut:
    from ai_service.outbox import store as outbox

    info = repo.get_document(ctx.engine, company.id, document_id)
    outbox.resolution(ctx.engine, company.id)  # refuse now, not in the worker, if it is missing
    outbox.enqueue(ctx.engine, company.id, document_id)
    return _out(info, engine=ctx.engine, company_id=company.id)


@router.get("/{document_id}/events", summary="Every state change of the document, oldest first")
def dte_events(ctx: Context, company: CurrentCompany, document_id: str) -> list[dict[str, Any]]:
    from ai_service.outbox import store as outbox

    repo.get_document(ctx.engine, company.id, document_id)  # 404 for another company's id
    return outbox.events(ctx.engine, company.id, document_id)


@router.get(
    "/{document_id}/xml",
    summary="The signed <DTE> as issued (ISO-8859-1)",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}},
)
def get_dte_xml(ctx: Context, company: CurrentCompany, document_id: str) -> Response:
    return _xml(ctx, company.id, document_id)


def _xml(ctx: Any, company_id: str, document_id: str) -> Response:
    xml = repo.get_document_xml(ctx.engine, company_id, document_id)
    return Response(content=xml, media_type=XML_MEDIA_TYPE)
