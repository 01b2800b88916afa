"""The receptor's decision on a received document, registered at the SII.

Ley 19.983: within 8 days of the SII receiving the document the receptor may accept its
content (ACD), claim it (RCD), acknowledge the goods or services (ERM) or claim their partial
or total absence (RFP, RFT). This calls the SII's registroreclamodteservice with the
company's certificate and returns the SII's answer code and text as they came.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from ai_service.api.deps import AppContext, Context, CurrentCompany
from ai_service.repositories.companies import Company

router = APIRouter(prefix="/v1/received", tags=["received"])


class DecisionIn(BaseModel):
    accion: Literal["ACD", "RCD", "ERM", "RFP", "RFT"] = Field(
        description="ACD acepta contenido, RCD reclama contenido, ERM otorga recibo de "
        "mercaderías, RFP/RFT reclamo por falta parcial/total de mercaderías"
    )


class DecisionOut(BaseModel):
    accion: str
    ok: bool
    codigo: int
    descripcion: str | None
    eventos: Annotated[list[dict[str, Any]], Field(default_factory=list)]


def _register(ctx: AppContext, company: Company, document_id: str, accion: str) -> DecisionOut:
    from ai_service.outbox.wiring import CompanyMaterial
    from ai_service.repositories import received as repo
    from dte_core.sii.codes import AccionDoc
    from dte_core.sii.reclamo import ReclamoClient

    doc = repo.get_document(ctx.engine, company.id, document_id)  # 404 for another company
    material = CompanyMaterial(ctx.settings, ctx.engine, ctx.box)
    reclamos = ReclamoClient(material.client(company.id))
    result = reclamos.ingresar(doc.rut_emisor, doc.tipo_dte, doc.folio, AccionDoc(accion))
    history = reclamos.listar_eventos(doc.rut_emisor, doc.tipo_dte, doc.folio)
    return DecisionOut(
        accion=accion,
        ok=result.ok,
        codigo=int(result.codigo.value),
        descripcion=result.descripcion,
        eventos=[e.__dict__ for e in history.eventos],
    )


@router.post(
    "/{document_id}/sii-decision",
    summary="Accept or claim a received document at the SII (ACD, RCD, ERM, RFP, RFT)",
    response_model=DecisionOut,
)
async def register_decision(
    ctx: Context, company: CurrentCompany, document_id: str, body: DecisionIn
) -> DecisionOut:
    result: DecisionOut = await run_in_threadpool(_register, ctx, company, document_id, body.accion)
    return result
