"""What an extraction returns: each field with its confidence, the engine that read it, and
the arithmetic checks that back (or contradict) the totals."""

from __future__ import annotations

from decimal import Decimal
from typing import Final, Literal

from pydantic import BaseModel, Field

Engine = Literal["pdf_text", "ocr"]
Source = Literal["label", "position", "repaired", "derived", "timbre", "missing"]

#: Header fields, named after their SII elements (RUTEmisor, RUTRecep, TipoDTE, Folio,
#: FchEmis, MntNeto, MntExe, IVA, MntTotal).
HEADER_FIELDS: Final = (
    "rut_emisor",
    "rut_receptor",
    "tipo_dte",
    "folio",
    "fch_emis",
    "mnt_neto",
    "mnt_exe",
    "iva",
    "mnt_total",
)
AMOUNT_FIELDS: Final = ("mnt_neto", "mnt_exe", "iva", "mnt_total")


class ExtractedField(BaseModel):
    value: str | int | None = None
    #: 0 (not found) to 1; raised when an arithmetic check confirms it, lowered when one fails.
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    source: Source = "missing"
    #: The text it was read from.
    raw: str | None = None


class LineItem(BaseModel):
    descripcion: str
    cantidad: Decimal | None = None
    precio_unitario: Decimal | None = None
    descuento_pct: Decimal | None = None
    monto: int
    confidence: float = Field(ge=0.0, le=1.0)


class ExtractionResult(BaseModel):
    engine: Engine
    pages: int
    fields: dict[str, ExtractedField]
    lines: list[LineItem] = Field(default_factory=list)
    #: lines_sum_to_neto, iva_is_19_percent, total_is_sum: True/False, None when not computable;
    #: with a readable timbre also timbre_signature_valid, timbre_caf_valid (the CAF is signed
    #: by a known SII key) and text_matches_timbre.
    checks: dict[str, bool | None] = Field(default_factory=dict)
    #: Mean confidence of the header fields the document type needs.
    confidence: float = Field(ge=0.0, le=1.0)
    warnings: list[str] = Field(default_factory=list)
    #: Whether the PDF417 timbre was decoded (its values then override the printed text).
    timbre_read: bool = False

    def value(self, name: str) -> str | int | None:
        return self.fields[name].value
