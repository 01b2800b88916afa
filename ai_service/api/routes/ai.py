"""The AI use cases on received documents, for Odoo's widgets and integrations.

Each endpoint takes one received document, as its DTE XML (``application/xml``: a ``<DTE>``,
its ``<Documento>`` or an EnvioDTE for ``/v1/analyze``) or as JSON ``{"invoice": {...}}``
(the ReceivedInvoice fields), and answers with the engine's decision, calibrated confidence,
evidence and the engine that produced it; below the company's threshold it abstains
(``needs_review``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from ai_service.api.deps import AppContext, Context, CurrentCompany
from ai_service.api.errors import Unprocessable
from ai_service.context.models import ReceivedInvoice
from ai_service.repositories.companies import Company

router = APIRouter(prefix="/v1", tags=["ai"])

_XML_TYPES = ("application/xml", "text/xml")
_BODY = {
    "content": {
        "application/json": {"example": {"invoice": {"emisor_rut": "96790240-3", "...": "..."}}},
        "application/xml": {"example": '<DTE version="1.0">...</DTE>'},
    }
}


async def _invoices(request: Request) -> list[ReceivedInvoice]:
    from ai_service.services.invoices import parse_invoices

    kind = request.headers.get("content-type", "").split(";")[0].strip()
    return parse_invoices(await request.body(), xml=kind in _XML_TYPES)


def _run(
    ctx: AppContext,
    company: Company,
    invoice: ReceivedInvoice,
    use: Callable[[Any, ReceivedInvoice], Any],
) -> Any:
    from ai_service.usecases.common import ContextMismatchError

    engines = ctx.engine_cache().get(company)
    try:
        return use(engines, invoice)
    except ContextMismatchError as exc:
        raise Unprocessable(str(exc), code="wrong_company") from exc


async def _one(
    request: Request, ctx: AppContext, company: Company, use: Callable[[Any, ReceivedInvoice], Any]
) -> Any:
    invoices = await _invoices(request)
    if len(invoices) != 1:
        raise Unprocessable(
            f"this endpoint takes one document, got {len(invoices)}: use /v1/analyze for many",
            code="one_document",
        )
    result = await run_in_threadpool(_run, ctx, company, invoices[0], use)
    return result if isinstance(result, dict) else result.model_dump(mode="json")


def _llm(ctx: AppContext) -> tuple[Any, Any]:
    """The configured LLM and prompt registry, or (None, None) for local engines only."""
    llm = ctx.llm()
    return (llm, ctx.prompts()) if llm is not None else (None, None)


def _assisted(
    ctx: AppContext, company: Company, name: str
) -> Callable[[Any, ReceivedInvoice], Any]:
    from ai_service.usecases.llm_assist import assist_classification, assist_project

    llm, prompts = _llm(ctx)
    engine, method, assist = {
        "classifier": ("classifier", "classify", assist_classification),
        "matcher": ("matcher", "match", assist_project),
    }[name]

    def use(engines: Any, invoice: ReceivedInvoice) -> Any:
        answer = getattr(engines.get(engine), method)(invoice).model_dump(mode="json")
        return assist(
            answer, invoice, engines.context, llm=llm, prompts=prompts, company_id=company.id
        )

    return use


@router.post(
    "/classify",
    summary="Expense account for the invoice and each line",
    openapi_extra={"requestBody": _BODY},
)
async def classify(request: Request, ctx: Context, company: CurrentCompany) -> Any:
    return await _one(request, ctx, company, _assisted(ctx, company, "classifier"))


@router.post(
    "/match/project",
    summary="Top-k projects (analytic accounts) with scores",
    openapi_extra={"requestBody": _BODY},
)
async def match_project(request: Request, ctx: Context, company: CurrentCompany) -> Any:
    return await _one(request, ctx, company, _assisted(ctx, company, "matcher"))


@router.post(
    "/reconcile",
    summary="Purchase-order and receipt reconciliation (3-way)",
    openapi_extra={"requestBody": _BODY},
)
async def reconcile(request: Request, ctx: Context, company: CurrentCompany) -> Any:
    return await _one(request, ctx, company, lambda e, inv: e.get("reconciler").reconcile(inv))


@router.post(
    "/anomalies",
    summary="Anomalies and duplicates, with expected ranges",
    openapi_extra={"requestBody": _BODY},
)
async def anomalies(request: Request, ctx: Context, company: CurrentCompany) -> Any:
    today = ctx.now().date()
    return await _one(
        request, ctx, company, lambda e, inv: e.get("anomalies").check(inv, received_on=today)
    )


@router.post(
    "/analyze",
    summary="Classification, project, purchase order and anomalies for each document",
    description="Many documents at once (an EnvioDTE, or JSON invoices). With "
    "`Accept: application/x-ndjson` the answer is one JSON line per document.",
    openapi_extra={"requestBody": _BODY},
)
async def analyze_documents(request: Request, ctx: Context, company: CurrentCompany) -> Response:
    from ai_service.usecases.analyze import analyze

    invoices = await _invoices(request)
    today = ctx.now().date()
    llm, prompts = _llm(ctx)

    def use(e: Any, i: ReceivedInvoice) -> Any:
        return analyze(e, i, received_on=today, llm=llm, prompts=prompts, company_id=company.id)

    results = [await run_in_threadpool(_run, ctx, company, inv, use) for inv in invoices]
    if "application/x-ndjson" in request.headers.get("accept", ""):
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
        return Response(lines, media_type="application/x-ndjson")
    return JSONResponse({"results": results})


@router.post(
    "/suggestions",
    summary="Suggestions for the document on screen in Odoo",
    description='For a received invoice send `{"invoice": {...}}` (or its XML): account, '
    "project, missing OC reference, possible duplicate, anomalies. For a document being "
    'issued send `{"document": {...}}` (the POST /v1/dte JSON): its validation findings.',
)
async def suggestions(request: Request, ctx: Context, company: CurrentCompany) -> Any:
    from ai_service.usecases import suggestions as suggest
    from ai_service.usecases.analyze import analyze

    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind not in _XML_TYPES:
        payload = await request.json()
        if isinstance(payload, dict) and "document" in payload:
            from ai_service.api.routes.validation import issuing_context
            from ai_service.usecases.validation import validate_document

            def validate() -> Any:
                return validate_document(payload["document"], issuing_context(ctx, company))

            result = await run_in_threadpool(validate)
            return {"suggestions": [s.as_dict() for s in suggest.for_issuing(result)]}
    invoices = await _invoices(request)
    if len(invoices) != 1:
        raise Unprocessable("suggestions are for one document at a time", code="one_document")
    invoice = invoices[0]
    today = ctx.now().date()
    analysis = await run_in_threadpool(
        _run, ctx, company, invoice, lambda e, i: analyze(e, i, received_on=today)
    )
    return {"suggestions": [s.as_dict() for s in suggest.for_received(analysis, invoice)]}
