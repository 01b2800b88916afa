"""Segments -> an :class:`ExtractionResult`: fields, line items, arithmetic checks, confidence.

The checks are the invoice's own arithmetic: the lines add up to the neto (plus exento), IVA is
19 % of the neto, the total is neto + exento + IVA. A field a passing check confirms is trusted
more; one a failing check involves is trusted less; a single missing total is derived from the
other two when the rest of the arithmetic holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from ai_service.extraction.fields import (
    Found,
    find_amounts,
    find_fecha,
    find_folio,
    find_tipo,
    invalid_rut_texts,
    pick_ruts,
    rut_candidates,
)
from ai_service.extraction.items import find_items
from ai_service.extraction.layout import Line
from ai_service.extraction.result import (
    HEADER_FIELDS,
    Engine,
    ExtractedField,
    ExtractionResult,
    LineItem,
    Source,
)
from ai_service.extraction.timbre import Timbre
from dte_core.codes import BOLETA_TIPOS, EXENTA_TIPOS, TASA_IVA

_READ: Final[dict[str, float]] = {"pdf_text": 0.9, "ocr": 0.75}
_CONFIRMED: Final[dict[str, float]] = {"pdf_text": 0.99, "ocr": 0.95}
_REPAIRED: Final = 0.6
_DERIVED: Final = 0.7
_CONTRADICTED: Final = 0.6  # factor on fields a failing check involves


def iva_of(neto: int) -> int:
    return int((Decimal(neto) * TASA_IVA / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def read_invoice(
    lines: Sequence[Line], *, engine: Engine, pages: int, timbre: Timbre | None = None
) -> ExtractionResult:
    read, confirmed = _READ[engine], _CONFIRMED[engine]
    fields = {name: ExtractedField() for name in HEADER_FIELDS}
    warnings: list[str] = []

    def put(name: str, found: Found | None, confidence: float) -> None:
        if found is not None and found.value is not None:
            fields[name] = ExtractedField(
                value=found.value, confidence=confidence, source=found.source, raw=found.raw
            )

    tipo = find_tipo(lines)
    folio = find_folio(lines, tipo.segment if tipo else None)
    anchor = (tipo.segment if tipo else None) or (folio.segment if folio else None)
    emisor, receptor = pick_ruts(rut_candidates(lines), anchor)
    for name, candidate in (("rut_emisor", emisor), ("rut_receptor", receptor)):
        if candidate is not None:
            source: Source = (
                "repaired" if candidate.repaired else "label" if candidate.role else "position"
            )
            # a check digit that passes is itself a check
            confidence = _REPAIRED if candidate.repaired else confirmed
            put(name, Found(str(candidate.rut), source, candidate.segment.text), confidence)
    warnings += [f"rut_check_digit_failed: {text}" for text in invalid_rut_texts(lines)]
    put("tipo_dte", tipo, read)
    put("folio", folio, read)
    fecha = find_fecha(lines)
    put("fch_emis", fecha, read if fecha and fecha.source == "label" else read * 0.8)
    for name, found in find_amounts(lines).items():
        put(name, found, read)

    rows = find_items(lines)
    items = [
        LineItem(
            descripcion=row.descripcion,
            cantidad=row.cantidad,
            precio_unitario=row.precio_unitario,
            descuento_pct=row.descuento_pct,
            monto=row.monto,
            confidence=confirmed
            if row.consistent
            else read * 0.5
            if row.consistent is False
            else read,
        )
        for row in rows
    ]
    timbre_checks = _apply_timbre(fields, timbre, confirmed, warnings) if timbre else {}
    checks = _check_and_derive(fields, items, confirmed, warnings) | timbre_checks
    tipo_value = fields["tipo_dte"].value
    needed = [n for n in HEADER_FIELDS if n != "mnt_exe"]
    if tipo_value in EXENTA_TIPOS:
        needed = [n for n in needed if n not in ("mnt_neto", "iva")]
    if tipo_value in BOLETA_TIPOS:
        needed.remove("rut_receptor")
    overall = sum(fields[n].confidence for n in needed) / len(needed)
    return ExtractionResult(
        engine=engine,
        pages=pages,
        fields=fields,
        lines=items,
        checks=checks,
        confidence=round(overall, 4),
        warnings=warnings,
        timbre_read=timbre is not None,
    )


def _apply_timbre(
    fields: dict[str, ExtractedField], timbre: Timbre, confirmed: float, warnings: list[str]
) -> dict[str, bool | None]:
    """The stamped values win over the printed ones; a disagreement is reported."""
    matches = True
    for name, value in timbre.values.items():
        old = fields[name]
        if old.value is not None and old.value != value:
            matches = False
            warnings.append(f"timbre_overrides: {name} printed {old.value!r}, stamped {value!r}")
        fields[name] = ExtractedField(
            value=value,
            confidence=1.0 if timbre.signature_valid else confirmed,
            source="timbre",
            raw=old.raw,
        )
    return {
        "timbre_signature_valid": timbre.signature_valid,
        "timbre_caf_valid": timbre.caf_valid,
        "text_matches_timbre": matches,
    }


def _int(field: ExtractedField) -> int | None:
    return field.value if isinstance(field.value, int) else None


def _check_and_derive(
    fields: dict[str, ExtractedField],
    items: list[LineItem],
    confirmed: float,
    warnings: list[str],
) -> dict[str, bool | None]:
    neto, exe, iva, total = (_int(fields[n]) for n in ("mnt_neto", "mnt_exe", "iva", "mnt_total"))
    # one missing amount of three: derive it when the other arithmetic still holds
    if total is None and neto is not None and iva is not None and iva_of(neto) == iva:
        total = neto + (exe or 0) + iva
        fields["mnt_total"] = ExtractedField(value=total, confidence=_DERIVED, source="derived")
    elif iva is None and neto is not None and total is not None:
        guess = total - neto - (exe or 0)
        if abs(guess - iva_of(neto)) <= 1:
            iva = guess
            fields["iva"] = ExtractedField(value=iva, confidence=_DERIVED, source="derived")
    elif neto is None and iva is not None and total is not None:
        guess = total - iva - (exe or 0)
        if guess > 0 and abs(iva_of(guess) - iva) <= 1:
            neto = guess
            fields["mnt_neto"] = ExtractedField(value=neto, confidence=_DERIVED, source="derived")

    checks: dict[str, bool | None] = {
        "lines_sum_to_neto": None,
        "iva_is_19_percent": None,
        "total_is_sum": None,
    }
    involved: dict[str, tuple[str, ...]] = {
        "lines_sum_to_neto": ("mnt_neto", "mnt_exe"),
        "iva_is_19_percent": ("mnt_neto", "iva"),
        "total_is_sum": ("mnt_neto", "mnt_exe", "iva", "mnt_total"),
    }
    if items and (neto is not None or exe is not None):
        checks["lines_sum_to_neto"] = sum(i.monto for i in items) == (neto or 0) + (exe or 0)
    if neto is not None and iva is not None:
        checks["iva_is_19_percent"] = abs(iva - iva_of(neto)) <= 1
    if total is not None and (neto is not None or exe is not None):
        checks["total_is_sum"] = total == (neto or 0) + (exe or 0) + (iva or 0)

    # a field one failing check involves is doubtful whatever the other checks say
    doubtful = {n for check, passed in checks.items() if passed is False for n in involved[check]}
    backed = {n for check, passed in checks.items() if passed for n in involved[check]}
    warnings += [f"check_failed: {check}" for check, passed in checks.items() if passed is False]
    for name in doubtful | backed:
        field = fields[name]
        if field.value is None or field.source in ("derived", "timbre"):
            continue
        if name in doubtful:
            field.confidence = round(min(field.confidence, confirmed) * _CONTRADICTED, 4)
        else:
            field.confidence = max(field.confidence, confirmed)
    if checks["lines_sum_to_neto"]:
        for item in items:
            item.confidence = max(item.confidence, confirmed)
    return checks
