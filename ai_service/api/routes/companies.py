"""Company and API-key administration (admin token required)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, status
from pydantic import BaseModel, Field, field_validator

from ai_service.api.deps import AdminOnly, Context
from ai_service.api.errors import NotFound
from ai_service.repositories import companies as repo
from dte_core.errors import InvalidRutError
from dte_core.rut import Rut

router = APIRouter(prefix="/v1/companies", tags=["companies"], dependencies=[AdminOnly])


class CompanyIn(BaseModel):
    rut: str = Field(description="the company's RUT (the emisor of its documents)")
    name: str = Field(min_length=1, max_length=200)

    @field_validator("rut")
    @classmethod
    def _rut(cls, value: str) -> str:
        try:
            return str(Rut.parse(value))
        except InvalidRutError as exc:
            raise ValueError(exc.message) from exc


class ApiKeyOut(BaseModel):
    id: str
    company_id: str
    prefix: str
    key: str = Field(description="shown only in this response: store it now")
    created_at: datetime


class CompanyOut(BaseModel):
    id: str
    rut: str
    name: str
    created_at: datetime
    api_key: ApiKeyOut


def _key_out(key: repo.IssuedKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        company_id=key.company_id,
        prefix=key.prefix,
        key=key.key,
        created_at=key.created_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a company and its first key")
def create_company(
    ctx: Context,
    body: Annotated[
        CompanyIn,
        Body(
            openapi_examples={
                "company": {
                    "summary": "a company",
                    "value": {"rut": "76086428-5", "name": "Empresa Demo SpA"},
                }
            }
        ),
    ],
) -> CompanyOut:
    company, key = repo.create_company(ctx.engine, ctx.box, rut=body.rut, name=body.name)
    return CompanyOut(
        id=company.id,
        rut=company.rut,
        name=company.name,
        created_at=company.created_at,
        api_key=_key_out(key),
    )


@router.post(
    "/{company_id}/api-keys", status_code=status.HTTP_201_CREATED, summary="Add an API key"
)
def add_api_key(ctx: Context, company_id: str) -> ApiKeyOut:
    return _key_out(repo.add_api_key(ctx.engine, ctx.box, company_id))


@router.delete(
    "/{company_id}/api-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an API key",
)
def revoke_api_key(ctx: Context, company_id: str, key_id: str) -> None:
    if repo.get_company(ctx.engine, company_id) is None:
        raise NotFound(f"no company with id {company_id}", code="company_not_found")
    repo.revoke_api_key(ctx.engine, company_id, key_id)
