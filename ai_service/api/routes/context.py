"""Company context: what Odoo holds (accounts, projects, suppliers, POs, receipts, decisions).

Bulk upserts by natural key: resending the same data changes nothing, so Odoo can sync whole
datasets on a schedule. Everything is scoped to the API key's company.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, Field

from ai_service.api.deps import Context, CurrentCompany
from ai_service.api.errors import NotFound
from ai_service.repositories import context as repo

router = APIRouter(prefix="/v1", tags=["context"])

EXAMPLE = {
    "accounts": [{"code": "5101", "name": "Materiales de construcción"}],
    "projects": [
        {
            "code": "OB-12",
            "name": "Edificio Los Aromos",
            "address": "Los Aromos 1234",
            "comuna": "Ñuñoa",
            "client": "Inmobiliaria Sur",
        }
    ],
    "suppliers": [{"rut": "96790240-3", "name": "Sodimac S.A.", "giro": "Ferretería"}],
}


class UpsertOut(BaseModel):
    inserted: int
    updated: int
    unchanged: int
    version: int = Field(description="the company's context version after the write")


class ContextSummary(BaseModel):
    version: int
    counts: dict[str, int]


@router.put(
    "/context",
    summary="Bulk upsert of the company's context (idempotent)",
    response_model=UpsertOut,
)
def put_context(
    ctx: Context,
    company: CurrentCompany,
    body: Annotated[dict[str, Any], Body(openapi_examples={"odoo": {"value": EXAMPLE}})],
) -> UpsertOut:
    result = repo.upsert(ctx.engine, company.id, repo.sections(body))
    return UpsertOut(**result.as_dict())


@router.post(
    "/learn",
    summary="Record the accountant's decisions on received invoices; the next answer uses them",
    response_model=UpsertOut,
)
def learn(
    ctx: Context,
    company: CurrentCompany,
    body: Annotated[dict[str, Any], Body(description="{'invoices': [...], 'decisions': [...]}")],
) -> UpsertOut:
    allowed = {k: v for k, v in body.items() if k in ("invoices", "decisions")}
    if set(body) - set(allowed):
        from ai_service.api.errors import Unprocessable

        raise Unprocessable(
            "learn takes only 'invoices' and 'decisions'; load the rest with PUT /v1/context",
            code="invalid_context",
        )
    result = repo.upsert(ctx.engine, company.id, repo.sections(allowed))
    return UpsertOut(**result.as_dict())


@router.get(
    "/context", summary="How much context the company has loaded", response_model=ContextSummary
)
def get_context_summary(ctx: Context, company: CurrentCompany) -> ContextSummary:
    return ContextSummary(
        version=repo.version(ctx.engine, company.id), counts=repo.counts(ctx.engine, company.id)
    )


@router.delete(
    "/context/{section}/{key}",
    summary="Remove one context item by its natural key",
    status_code=204,
)
def delete_item(
    ctx: Context,
    company: CurrentCompany,
    section: Annotated[str, Path(description="accounts, projects, suppliers, ...")],
    key: str,
) -> None:
    kind = repo.BY_FIELD.get(section)
    if kind is None or not repo.remove(ctx.engine, company.id, kind, [key]):
        raise NotFound(f"no {section} item {key!r} for this company", code="context_not_found")
