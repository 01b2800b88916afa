"""CAF upload (verified against the SII keys, bound to the caller's RUT) and listing."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Response, status
from pydantic import BaseModel, Field

from ai_service.api.deps import AppContext, Context, CurrentCompany
from ai_service.repositories import cafs as repo
from dte_core.errors import CafError, FieldError
from dte_core.rut import Rut

router = APIRouter(prefix="/v1/cafs", tags=["cafs"])


class CafOut(BaseModel):
    id: int
    rut_emisor: str
    tipo_dte: int
    folio_desde: int
    folio_hasta: int
    next_folio: int
    fecha_autorizacion: date
    expires_on: date | None
    fingerprint: str
    created_at: datetime
    remaining: int = Field(
        description="free folios across every usable CAF of this emisor and tipo_dte"
    )
    verified_by: str | None = Field(
        default=None, description="the SII key that verified the CAF (on upload)"
    )


def _out(rng: repo.CafRange, remaining: int, verified_by: str | None = None) -> CafOut:
    return CafOut(**rng.__dict__, remaining=remaining, verified_by=verified_by)


def _remaining(ctx: AppContext, company_id: str, rut: str, tipo: int) -> int:
    return ctx.folio_store().remaining(company_id, rut, tipo, today=ctx.now().date())


_CAF_BODY = Body(
    media_type="application/xml",
    description="the CAF file exactly as downloaded from the SII (<AUTORIZACION>…)",
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Upload a CAF for the caller's company",
    responses={200: {"description": "this CAF was already registered"}},
)
def upload_caf(
    ctx: Context,
    company: CurrentCompany,
    response: Response,
    body: Annotated[bytes, _CAF_BODY],
) -> CafOut:
    from dte_core.caf import Caf

    caf = Caf.from_bytes(body)
    verified_by = caf.verify(ctx.keyring())
    if Rut.parse(caf.rut_emisor) != Rut.parse(company.rut):
        raise CafError(
            f"this CAF authorises folios for RUT {caf.rut_emisor}, but the API key belongs to "
            f"{company.rut}: upload it with that company's key",
            code="caf_wrong_emisor",
            fields=[FieldError("CAF.DA.RE", "caf_wrong_emisor", f"expected {company.rut}")],
        )
    today = ctx.now().date()
    if caf.is_expired(today):
        raise CafError(
            f"this CAF expired on {caf.expires_on}: request a new one from the SII",
            code="caf_expired",
        )
    if caf.private_key is None:
        raise CafError(
            "this CAF has no private key (RSASK): upload the complete file downloaded from the SII",
            code="caf_no_private_key",
        )
    existed = repo.find_range(ctx.engine, company.id, caf.fingerprint) is not None
    repo.register_caf(ctx.folio_store(), ctx.box, company.id, caf)
    rng = repo.find_range(ctx.engine, company.id, caf.fingerprint)
    assert rng is not None  # just registered (or already there)
    if existed:
        response.status_code = status.HTTP_200_OK
    return _out(rng, _remaining(ctx, company.id, rng.rut_emisor, rng.tipo_dte), verified_by)


@router.get("", summary="The caller's CAFs and their remaining folios")
def list_cafs(ctx: Context, company: CurrentCompany) -> list[CafOut]:
    ranges = repo.list_ranges(ctx.engine, company.id)
    remaining: dict[tuple[str, int], int] = {}
    for rng in ranges:
        pair = (rng.rut_emisor, rng.tipo_dte)
        if pair not in remaining:
            remaining[pair] = _remaining(ctx, company.id, *pair)
    return [_out(rng, remaining[(rng.rut_emisor, rng.tipo_dte)]) for rng in ranges]
