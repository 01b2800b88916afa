"""The company's SII settings: the resolution that authorises it to issue electronically."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ai_service.api.deps import Context, CurrentCompany
from ai_service.outbox import store

router = APIRouter(prefix="/v1/sii", tags=["sii"])


class ResolutionIn(BaseModel):
    fch_resol: date = Field(description="FchResol: date of the SII resolution")
    nro_resol: Annotated[int, Field(ge=0, le=999_999)] = Field(
        description="NroResol: its number (0 in certificación)"
    )
    oficina_sii: Annotated[str, Field(max_length=60)] | None = Field(
        default=None, description="SII office printed under the RUT box, e.g. SANTIAGO ORIENTE"
    )


@router.put(
    "/resolution", summary="Set FchResol/NroResol for the Carátula", response_model=ResolutionIn
)
def put_resolution(ctx: Context, company: CurrentCompany, body: ResolutionIn) -> ResolutionIn:
    store.set_resolution(ctx.engine, company.id, body.fch_resol, body.nro_resol, body.oficina_sii)
    return body


@router.get(
    "/resolution", summary="The resolution on this company's Carátulas", response_model=ResolutionIn
)
def get_resolution(ctx: Context, company: CurrentCompany) -> ResolutionIn:
    found = store.resolution(ctx.engine, company.id)
    return ResolutionIn(
        fch_resol=found.fch_resol, nro_resol=found.nro_resol, oficina_sii=found.oficina_sii
    )
