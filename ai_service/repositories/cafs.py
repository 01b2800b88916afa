"""CAFs of a company, kept in dte_core's ``caf_ranges`` with the CAF file encrypted at rest.

The CAF file carries the private key that stamps the TED (RSASK), so ``caf_xml`` holds a
Fernet token, never the XML. ``FolioStore.register_range`` is idempotent by fingerprint: when an
``Issuer`` re-registers the (decrypted) CAF it finds the row already there and leaves it as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Table, select

from ai_service.db.session import reading
from ai_service.repositories.companies import aware
from ai_service.secrets import SecretBox

if TYPE_CHECKING:
    from dte_core.caf import Caf
    from dte_core.folios import FolioStore


@dataclass(frozen=True)
class CafRange:
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


def _table() -> Table:
    from dte_core.storage import metadata

    return metadata.tables["caf_ranges"]


def _range(row: Any) -> CafRange:
    return CafRange(
        id=row.id,
        rut_emisor=row.rut_emisor,
        tipo_dte=row.tipo_dte,
        folio_desde=row.folio_desde,
        folio_hasta=row.folio_hasta,
        next_folio=row.next_folio,
        fecha_autorizacion=row.fecha_autorizacion,
        expires_on=row.expires_on,
        fingerprint=row.fingerprint,
        created_at=aware(row.created_at),
    )


def _columns(t: Table) -> list[Any]:
    return [t.c[name] for name in CafRange.__dataclass_fields__]


def list_ranges(engine: Engine, company_id: str) -> list[CafRange]:
    t = _table()
    with reading(engine) as conn:
        rows = conn.execute(
            select(*_columns(t))
            .where(t.c.company_id == company_id)
            .order_by(t.c.rut_emisor, t.c.tipo_dte, t.c.folio_desde)
        ).all()
    return [_range(r) for r in rows]


def find_range(engine: Engine, company_id: str, fingerprint: str) -> CafRange | None:
    t = _table()
    with reading(engine) as conn:
        row = conn.execute(
            select(*_columns(t)).where(t.c.company_id == company_id, t.c.fingerprint == fingerprint)
        ).first()
    return _range(row) if row else None


def register_caf(store: FolioStore, box: SecretBox, company_id: str, caf: Caf) -> int:
    from dte_core.folios import FolioRange

    return store.register_range(
        company_id,
        FolioRange(
            rut_emisor=caf.rut_emisor,
            tipo_dte=caf.tipo_dte,
            folio_desde=caf.folio_desde,
            folio_hasta=caf.folio_hasta,
            fecha_autorizacion=caf.fecha_autorizacion,
            expires_on=caf.expires_on,
            caf_xml=box.encrypt(caf.raw),
            fingerprint=caf.fingerprint,
        ),
    )


def load_cafs(
    engine: Engine, box: SecretBox, company_id: str, *, tipo_dte: int | None = None
) -> list[Caf]:
    """The company's CAFs, decrypted (of one tipo_dte when it is known)."""
    from dte_core.caf import Caf

    t = _table()
    query = select(t.c.caf_xml).where(t.c.company_id == company_id)
    if tipo_dte is not None:
        query = query.where(t.c.tipo_dte == tipo_dte)
    with reading(engine) as conn:
        blobs = conn.execute(query.order_by(t.c.folio_desde)).scalars().all()
    return [Caf.from_bytes(box.decrypt(blob)) for blob in blobs]
