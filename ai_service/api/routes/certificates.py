"""The company's signing certificate (PKCS#12 + password), validated by opening it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile, status
from pydantic import BaseModel

from ai_service.api.deps import Context, CurrentCompany
from ai_service.api.errors import NotFound
from ai_service.repositories import certificates as repo
from dte_core.errors import CertificateError

router = APIRouter(prefix="/v1/certificates", tags=["certificates"])


class CertificateOut(BaseModel):
    subject: str
    rut: str | None
    not_after: datetime
    created_at: datetime


def _out(info: repo.CertificateInfo) -> CertificateOut:
    return CertificateOut(
        subject=info.subject, rut=info.rut, not_after=info.not_after, created_at=info.created_at
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Upload the company's signing certificate (replaces the current one)",
)
def upload_certificate(
    ctx: Context,
    company: CurrentCompany,
    file: Annotated[UploadFile, File(description="the PKCS#12 file (.p12 / .pfx)")],
    password: Annotated[str, Form(description="its password; never logged or returned")] = "",
) -> CertificateOut:
    data = file.file.read()
    secret = password.encode()
    certificate = repo.open_pkcs12(data, secret)
    if certificate.not_after.date() < ctx.now().date():
        raise CertificateError(
            f"this certificate expired on {certificate.not_after.date()}: upload a current one",
            code="certificate_expired",
        )
    info = repo.save_certificate(
        ctx.engine, ctx.box, company.id, p12=data, password=secret, certificate=certificate
    )
    return _out(info)


@router.get("", summary="The current signing certificate (metadata only)")
def get_certificate(ctx: Context, company: CurrentCompany) -> CertificateOut:
    info = repo.certificate_info(ctx.engine, company.id)
    if info is None:
        raise NotFound("no certificate uploaded yet", code="certificate_not_found")
    return _out(info)
