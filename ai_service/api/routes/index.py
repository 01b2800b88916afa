"""The company's embeddings index: rebuild it from its booked invoices, and query it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from ai_service.api.deps import AppContext, Context, CurrentCompany
from ai_service.repositories.companies import Company

router = APIRouter(prefix="/v1/index", tags=["ai"])


class RebuildOut(BaseModel):
    documents: int
    written: int
    unchanged: int


class MatchOut(BaseModel):
    id: str
    text: str
    score: float
    embedding_score: float
    lexical_score: float
    metadata: dict[str, Any]


def _rebuild(ctx: AppContext, company: Company) -> RebuildOut:
    from ai_service.services.vectors import invoice_documents

    documents = invoice_documents(ctx.engine_cache().get(company).context)
    result = ctx.vector_store().rebuild(company.id, documents)
    return RebuildOut(documents=len(documents), written=result.written, unchanged=result.unchanged)


@router.post(
    "/rebuild",
    summary="Rebuild the company's index from its booked invoices",
    response_model=RebuildOut,
)
async def rebuild(ctx: Context, company: CurrentCompany) -> RebuildOut:
    result: RebuildOut = await run_in_threadpool(_rebuild, ctx, company)
    return result


@router.get(
    "/similar",
    summary="The company's past documents most like a text",
    response_model=list[MatchOut],
)
async def similar(
    ctx: Context,
    company: CurrentCompany,
    text: Annotated[str, Query(min_length=1, max_length=2000)],
    k: Annotated[int, Query(ge=1, le=50)] = 5,
) -> list[MatchOut]:
    def run() -> list[MatchOut]:
        matches = ctx.vector_store().query(company.id, text, k=k)
        return [MatchOut(**{**m.__dict__, "metadata": dict(m.metadata)}) for m in matches]

    result: list[MatchOut] = await run_in_threadpool(run)
    return result
