"""The company's issued documents as the validation rules ask for them (one company only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Engine, Select, select

from ai_service.db.session import reading
from ai_service.db.tables import documents
from ai_service.usecases.validation_context import IssuedDocument
from dte_core.codes import CodRef, TipoDTE
from dte_core.errors import InvalidRutError
from dte_core.rut import Rut
from dte_core.xmlsafe import parse_untrusted


class DbIssuedHistory:
    """:class:`ai_service.usecases.validation_context.IssuedHistory` over the documents table.

    What notas de crédito already took off a document is read from the notas' own signed XML
    (their Referencia), once per history object, i.e. once per validation request.
    """

    def __init__(self, engine: Engine, company_id: str) -> None:
        self._engine = engine
        self._company_id = company_id
        self._credited: dict[tuple[int, int], int] | None = None

    def _base(self) -> Select[Any]:
        d = documents.c
        return select(d.tipo_dte, d.folio, d.rut_receptor, d.fecha_emision, d.monto_total).where(
            d.company_id == self._company_id
        )

    def _doc(self, row: Sequence[object]) -> IssuedDocument:
        tipo, folio = int(row[0]), int(row[1])  # type: ignore[call-overload]
        return IssuedDocument(
            tipo_dte=tipo,
            folio=folio,
            rut_receptor=str(row[2]),
            fecha_emision=row[3],  # type: ignore[arg-type]
            mnt_total=int(row[4]),  # type: ignore[call-overload]
            credited=self.credited().get((tipo, folio), 0),
        )

    def credited(self) -> dict[tuple[int, int], int]:
        if self._credited is None:
            totals: dict[tuple[int, int], int] = {}
            with reading(self._engine) as conn:
                notas = conn.execute(
                    select(documents.c.xml, documents.c.monto_total).where(
                        documents.c.company_id == self._company_id,
                        documents.c.tipo_dte == int(TipoDTE.NOTA_CREDITO),
                    )
                ).all()
            for xml, monto in notas:
                for ref in parse_untrusted(bytes(xml)).iterfind(".//{*}Documento/{*}Referencia"):
                    tipo, folio = ref.findtext("{*}TpoDocRef"), ref.findtext("{*}FolioRef")
                    codref = (ref.findtext("{*}CodRef") or "").strip()
                    if not (tipo and folio and tipo.isdigit() and folio.isdigit()):
                        continue
                    if codref in (str(int(CodRef.ANULA)), str(int(CodRef.CORRIGE_MONTOS))):
                        key = (int(tipo), int(folio))
                        totals[key] = totals.get(key, 0) + int(monto)
            self._credited = totals
        return self._credited

    def get(self, tipo_dte: int, folio: int) -> IssuedDocument | None:
        with reading(self._engine) as conn:
            row = conn.execute(
                self._base().where(documents.c.tipo_dte == tipo_dte, documents.c.folio == folio)
            ).first()
        return self._doc(row) if row else None

    def for_receptor(self, rut_receptor: str, desde: date, hasta: date) -> Sequence[IssuedDocument]:
        try:
            rut = str(Rut.parse(rut_receptor))
        except InvalidRutError:
            return []
        with reading(self._engine) as conn:
            rows = conn.execute(
                self._base().where(
                    documents.c.rut_receptor == rut,
                    documents.c.fecha_emision >= desde,
                    documents.c.fecha_emision <= hasta,
                )
            ).all()
        return [self._doc(r) for r in rows]
