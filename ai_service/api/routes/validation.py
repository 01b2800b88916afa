"""Validation before sending: every problem the SII or the receptor would find, at once.

Deterministic rules only (no LLM on this path); ``?explain=true`` adds a phrasing for the
Odoo user, written by the LLM when one is configured and checked against the findings.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.concurrency import run_in_threadpool

from ai_service.api.deps import AppContext, Context, CurrentCompany
from ai_service.api.routes.dte import EXAMPLES
from ai_service.repositories.companies import Company

router = APIRouter(prefix="/v1", tags=["ai"])


def issuing_context(ctx: AppContext, company: Company) -> Any:
    """What the company has to issue with: CAFs, free folios, its issued documents."""
    from ai_service.repositories import cafs as caf_repo
    from ai_service.repositories.issued_history import DbIssuedHistory
    from ai_service.usecases.validation_context import IssuingContext

    today = ctx.now().date()
    cafs = caf_repo.load_cafs(ctx.engine, ctx.box, company.id)
    store = ctx.folio_store()
    remaining = {
        tipo: store.remaining(company.id, company.rut, tipo, today=today)
        for tipo in {c.tipo_dte for c in cafs}
    }
    return IssuingContext(
        company_rut=company.rut,
        cafs=cafs,
        history=DbIssuedHistory(ctx.engine, company.id),
        folios_remaining=remaining,
        today=today,
    )


def _validate(ctx: AppContext, company: Company, body: dict[str, Any], explain: bool) -> Any:
    from ai_service.usecases.validation import explain as explain_findings
    from ai_service.usecases.validation import validate_document

    result = validate_document(body, issuing_context(ctx, company))
    out: dict[str, Any] = result.model_dump(mode="json")
    if explain:
        llm = ctx.llm()
        prompts = ctx.prompts() if llm else None
        phrased = explain_findings(result, body, llm=llm, prompts=prompts, company_id=company.id)
        out["explanation"] = {
            **phrased.output.model_dump(mode="json"),
            "engine": str(phrased.engine),
            "fallback_reason": phrased.fallback_reason,
        }
    return out


@router.post(
    "/validate",
    summary="Check a document before issuing it (at least 30 SII and counterpart rules)",
    description="Same JSON as POST /v1/dte. Returns every finding with its rule id, the field "
    "path in SII element names and a suggested fix; `decision` is ok, warnings or blocked.",
)
async def validate(
    ctx: Context,
    company: CurrentCompany,
    body: Annotated[dict[str, Any], Body(openapi_examples=EXAMPLES)],
    explain: Annotated[bool, Query(description="add a phrasing of the findings")] = False,
) -> dict[str, Any]:
    result: dict[str, Any] = await run_in_threadpool(_validate, ctx, company, body, explain)
    return result
