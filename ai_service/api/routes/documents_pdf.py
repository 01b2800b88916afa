"""Printed representation and extraction: the PDF of a DTE, and reading PDFs and scans.

``GET /v1/dte/{id}/pdf`` and ``GET /v1/received/{id}/pdf`` print the signed XML with the
PDF417 timbre. ``POST /v1/extract`` reads an invoice from a PDF or a scan (text layer, else
Tesseract); when the company already holds that document's XML, the XML's values win and the
answer lists where the paper disagrees.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from ai_service.api.deps import AppContext, Context, CurrentCompany
from ai_service.api.errors import Unprocessable
from ai_service.db.session import reading
from ai_service.db.tables import received_documents
from ai_service.repositories.companies import Company

router = APIRouter(tags=["documents"])
PDF = "application/pdf"


def _options(ctx: AppContext, company: Company, cedible: bool) -> Any:
    from ai_service.outbox import store
    from dte_core.printing import PrintOptions

    resolution = store.resolution(ctx.engine, company.id)
    return PrintOptions(
        resolucion_numero=resolution.nro_resol,
        resolucion_fecha=resolution.fch_resol,
        oficina_sii=resolution.oficina_sii or "",
        cedible=cedible,
    )


def _pdf(xml: bytes, options: Any, name: str) -> Response:
    from dte_core.printing import render_pdf

    return Response(
        render_pdf(xml, options),
        media_type=PDF,
        headers={"Content-Disposition": f'inline; filename="{name}.pdf"'},
    )


@router.get(
    "/v1/dte/{document_id}/pdf",
    summary="The issued document printed, with its timbre (PDF417)",
    response_class=Response,
    responses={200: {"content": {PDF: {}}}},
)
async def issued_pdf(
    ctx: Context,
    company: CurrentCompany,
    document_id: str,
    cedible: Annotated[bool, Query(description='print the "CEDIBLE" copy')] = False,
) -> Response:
    from ai_service.repositories import documents as repo

    info = repo.get_document(ctx.engine, company.id, document_id)
    xml = repo.get_document_xml(ctx.engine, company.id, document_id)
    name = f"DTE--{info.rut_emisor}--{info.tipo_dte}--{info.folio}"
    return await run_in_threadpool(_pdf, xml, _options(ctx, company, cedible), name)


@router.get(
    "/v1/received/{document_id}/pdf",
    summary="A received document printed, with its timbre",
    response_class=Response,
    responses={200: {"content": {PDF: {}}}},
)
async def received_pdf(ctx: Context, company: CurrentCompany, document_id: str) -> Response:
    from datetime import date

    from ai_service.repositories import received as repo
    from dte_core.printing import PrintOptions

    info = repo.get_document(ctx.engine, company.id, document_id)
    xml, _report = repo.get_document_detail(ctx.engine, company.id, document_id)
    # the emisor's resolution is not in its DTE; the timbre and "Verifique documento" are
    options = PrintOptions(resolucion_numero=0, resolucion_fecha=date(1900, 1, 1), oficina_sii="")
    name = f"DTE--{info.rut_emisor}--{info.tipo_dte}--{info.folio}"
    return await run_in_threadpool(_pdf, xml, options, name)


def _held_xml(ctx: AppContext, company: Company, key: tuple[str, int, int] | None) -> list[bytes]:
    if key is None:
        return []
    t = received_documents.c
    with reading(ctx.engine) as conn:
        rows = conn.execute(
            select(t.xml).where(
                t.company_id == company.id,
                t.rut_emisor == key[0],
                t.tipo_dte == key[1],
                t.folio == key[2],
            )
        ).all()
    return [bytes(r[0]) for r in rows]


def _extract(ctx: AppContext, company: Company, data: bytes, force_ocr: bool) -> dict[str, Any]:
    from ai_service.extraction.guards import ExtractionLimits
    from ai_service.extraction.linking import extraction_key, link_to_xml
    from ai_service.extraction.service import extract

    s = ctx.settings
    limits = ExtractionLimits(
        max_bytes=s.extraction_max_bytes, max_pages=s.extraction_max_pages, ocr_dpi=s.ocr_dpi
    )
    result = extract(data, limits=limits, lang=s.ocr_lang, force_ocr=force_ocr)
    linked = link_to_xml(result, _held_xml(ctx, company, extraction_key(result)))
    return {
        "extraction": result.model_dump(mode="json"),
        "link": linked.model_dump(mode="json"),
    }


@router.post(
    "/v1/extract",
    summary="Read an invoice from a PDF or a scan (PNG, JPEG, TIFF)",
    description="Send the file as the request body (or multipart field `file`). Header "
    "fields and lines with per-field confidence and the engine (pdf_text or ocr); arithmetic "
    "checks set the confidence; the printed timbre, when readable, wins over the text.",
    openapi_extra={"requestBody": {"content": {PDF: {}, "image/png": {}, "image/jpeg": {}}}},
)
async def extract_document(
    request: Request,
    ctx: Context,
    company: CurrentCompany,
    force_ocr: Annotated[bool, Query(description="ignore the text layer")] = False,
) -> dict[str, Any]:
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise Unprocessable("send the file in the multipart field `file`", code="no_file")
        data = await upload.read()
    else:
        data = await request.body()
    result: dict[str, Any] = await run_in_threadpool(_extract, ctx, company, data, force_ocr)
    return result
