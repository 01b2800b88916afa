"""Texts of the printed DTE: document names, Chilean number/date/RUT formats, fitting text
into a width with the standard PDF fonts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Final

from lxml import etree
from reportlab.pdfbase.pdfmetrics import stringWidth

from dte_core.codes import TipoDTE
from dte_core.errors import FieldError, InvalidDocumentError
from dte_core.rut import Rut

DOCUMENT_NAMES: Final[dict[int, str]] = {
    TipoDTE.FACTURA: "FACTURA ELECTRÓNICA",
    TipoDTE.FACTURA_EXENTA: "FACTURA NO AFECTA O EXENTA ELECTRÓNICA",
    TipoDTE.BOLETA: "BOLETA ELECTRÓNICA",
    TipoDTE.BOLETA_EXENTA: "BOLETA NO AFECTA O EXENTA ELECTRÓNICA",
    TipoDTE.FACTURA_COMPRA: "FACTURA DE COMPRA ELECTRÓNICA",
    TipoDTE.GUIA_DESPACHO: "GUÍA DE DESPACHO ELECTRÓNICA",
    TipoDTE.NOTA_DEBITO: "NOTA DE DÉBITO ELECTRÓNICA",
    TipoDTE.NOTA_CREDITO: "NOTA DE CRÉDITO ELECTRÓNICA",
}
#: Referencia/TpoDocRef codes besides the DTE types (DTE_v10.xsd lists them as free text).
REFERENCE_NAMES: Final[dict[str, str]] = {
    "801": "Orden de Compra",
    "802": "Nota de Pedido",
    "803": "Contrato",
    "804": "Resolución",
    "HES": "Hoja de Entrada de Servicio",
    "SET": "Set de Pruebas",
}
#: SII: error correction level 5 for the timbre's PDF417.
_MESES: Final = [
    "Enero",
    "Febrero",
    "Marzo",
    "Abril",
    "Mayo",
    "Junio",
    "Julio",
    "Agosto",
    "Septiembre",
    "Octubre",
    "Noviembre",
    "Diciembre",
]


def document_name(tipo: int) -> str:
    try:
        return DOCUMENT_NAMES[tipo]
    except KeyError:
        raise InvalidDocumentError(
            f"cannot print TipoDTE {tipo}: printable types are {sorted(DOCUMENT_NAMES)}",
            fields=[FieldError("Encabezado.IdDoc.TipoDTE", "unsupported", "no printed form")],
            code="unsupported_tipo",
        ) from None


def format_amount(value: str | None) -> str:
    """``2517900`` -> ``2.517.900`` (Chilean thousands dots; decimals with a comma)."""
    if value is None:
        return ""
    try:
        number = Decimal(value)
    except InvalidOperation:
        return value
    integral = f"{abs(int(number)):,}".replace(",", ".")
    sign = "-" if number < 0 else ""
    fraction = abs(number) % 1
    if fraction:
        return f"{sign}{integral},{str(fraction.normalize())[2:]}"
    return sign + integral


def format_fecha(value: str | None) -> str:
    """``2019-04-01`` -> ``01 de Abril de 2019``."""
    try:
        day = date.fromisoformat(value or "")
    except ValueError:
        return value or ""
    return f"{day.day:02d} de {_MESES[day.month - 1]} de {day.year}"


def format_rut(value: str | None) -> str:
    try:
        return Rut.parse(value or "").formatted()
    except InvalidDocumentError:
        return value or ""


def text_of(el: etree._Element | None, path: str) -> str | None:
    if el is None:
        return None
    found = el.find("/".join(f"{{*}}{part}" for part in path.split("/")))
    if found is None or found.text is None or not found.text.strip():
        return None
    return " ".join(found.text.split())


def printable(text: str) -> str:
    """The standard PDF fonts speak WinAnsi: anything else would print as a blank box."""
    return text.encode("cp1252", "replace").decode("cp1252")


def fit(text: str, font: str, size: float, width: float) -> str:
    text = printable(text)
    while text and stringWidth(text, font, size) > width:
        text = text[:-1]
    return text


def wrap(text: str, font: str, size: float, width: float, max_lines: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in printable(text).split():
        candidate = f"{current} {word}".strip()
        if stringWidth(candidate, font, size) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = fit(word, font, size, width)
    if current:
        lines.append(current)
    return lines[:max_lines]
