"""The company's signing certificate (PKCS#12), encrypted at rest with its password."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine, delete, insert, select

from ai_service.db.session import reading
from ai_service.db.tables import company_certificates
from ai_service.repositories.companies import aware, utcnow
from ai_service.secrets import SecretBox
from dte_core.errors import CertificateError

if TYPE_CHECKING:
    from dte_core.signing import CompanyCertificate


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    rut: str | None
    not_after: datetime
    created_at: datetime


def open_pkcs12(data: bytes, password: bytes) -> CompanyCertificate:
    from dte_core.signing import CompanyCertificate

    return CompanyCertificate.from_pkcs12(data, password or None)


def save_certificate(
    engine: Engine,
    box: SecretBox,
    company_id: str,
    *,
    p12: bytes,
    password: bytes,
    certificate: CompanyCertificate,
) -> CertificateInfo:
    """Store (replacing any previous one) a certificate already opened with its password."""
    info = CertificateInfo(
        subject=certificate.certificate.subject.rfc4514_string()[:500],
        rut=certificate.rut,
        not_after=aware(certificate.not_after),
        created_at=utcnow(),
    )
    with engine.begin() as conn:
        conn.execute(
            delete(company_certificates).where(company_certificates.c.company_id == company_id)
        )
        conn.execute(
            insert(company_certificates).values(
                company_id=company_id,
                p12=box.encrypt(p12),
                password=box.encrypt(password),
                subject=info.subject,
                rut=info.rut,
                not_after=info.not_after,
                created_at=info.created_at,
            )
        )
    return info


def certificate_info(engine: Engine, company_id: str) -> CertificateInfo | None:
    t = company_certificates
    with reading(engine) as conn:
        row = conn.execute(
            select(t.c.subject, t.c.rut, t.c.not_after, t.c.created_at).where(
                t.c.company_id == company_id
            )
        ).first()
    if row is None:
        return None
    return CertificateInfo(row.subject, row.rut, aware(row.not_after), aware(row.created_at))


def load_certificate(engine: Engine, box: SecretBox, company_id: str) -> CompanyCertificate:
    t = company_certificates
    with reading(engine) as conn:
        row = conn.execute(
            select(t.c.p12, t.c.password).where(t.c.company_id == company_id)
        ).first()
    if row is None:
        raise CertificateError(
            "this company has no signing certificate: upload its PKCS#12 file to "
            "POST /v1/certificates first",
            code="no_certificate",
        )
    return open_pkcs12(box.decrypt(row.p12), box.decrypt(row.password))
