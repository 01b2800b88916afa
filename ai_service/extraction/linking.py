"""Match a PDF/scan extraction with the XML of the same DTE, by (RUT emisor, tipo, folio).

The XML is the legal document (signed, stamped); the PDF is only its printed form. When both
exist the XML's values win, and every field where the extraction disagrees is reported so a
person can see what the PDF says that the XML does not.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal

from lxml import etree
from pydantic import BaseModel, Field

from ai_service.extraction.result import HEADER_FIELDS, ExtractionResult
from dte_core.errors import InvalidRutError
from dte_core.rut import Rut
from dte_core.xmlsafe import local_name, parse_untrusted

_XML_PATHS = {
    "rut_emisor": "Encabezado/Emisor/RUTEmisor",
    "rut_receptor": "Encabezado/Receptor/RUTRecep",
    "tipo_dte": "Encabezado/IdDoc/TipoDTE",
    "folio": "Encabezado/IdDoc/Folio",
    "fch_emis": "Encabezado/IdDoc/FchEmis",
    "mnt_neto": "Encabezado/Totales/MntNeto",
    "mnt_exe": "Encabezado/Totales/MntExe",
    "iva": "Encabezado/Totales/IVA",
    "mnt_total": "Encabezado/Totales/MntTotal",
}
Key = tuple[str, int, int]


class Discrepancy(BaseModel):
    field: str
    extracted: str | int | None
    xml: str | int | None


class LinkedDocument(BaseModel):
    key: tuple[str, int, int] | None
    matched: bool
    #: Whose values ``fields`` holds: always the XML's when one matched.
    authority: Literal["xml", "extraction"]
    engine: str
    document_id: str | None = None
    fields: dict[str, str | int | None]
    discrepancies: list[Discrepancy] = Field(default_factory=list)


def xml_values(documento: etree._Element) -> dict[str, str | int | None]:
    """The header fields of a ``<Documento>``, normalised like an extraction's values."""
    values: dict[str, str | int | None] = {}
    for name, path in _XML_PATHS.items():
        found = documento.find("/".join(f"{{*}}{p}" for p in path.split("/")))
        text = found.text.strip() if found is not None and found.text else None
        values[name] = _normalise(name, text)
    return values


def _normalise(name: str, text: str | None) -> str | int | None:
    if text is None or not text:
        return None
    if name.startswith("rut_"):
        try:
            return str(Rut.parse(text))
        except InvalidRutError:
            return text.upper()
    if name in ("tipo_dte", "folio") or name.startswith("mnt_") or name == "iva":
        try:
            return int(Decimal(text).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        except InvalidOperation:
            return None
    return text


def extraction_key(result: ExtractionResult) -> Key | None:
    rut, tipo, folio = (result.value(n) for n in ("rut_emisor", "tipo_dte", "folio"))
    if isinstance(rut, str) and isinstance(tipo, int) and isinstance(folio, int):
        return rut, tipo, folio
    return None


def _documentos(sources: Iterable[bytes | etree._Element]) -> Iterator[etree._Element]:
    for source in sources:
        root = parse_untrusted(source) if isinstance(source, bytes) else source
        if local_name(root) == "Documento":
            yield root
        else:
            yield from root.iter("{*}Documento")


def link_to_xml(
    result: ExtractionResult, xml_documents: Iterable[bytes | etree._Element]
) -> LinkedDocument:
    """The document ``result`` was read from, if one of ``xml_documents`` (DTEs or envelopes,
    bytes parsed with the hardened parser) has its key; its values override the extraction's."""
    extracted = {name: result.value(name) for name in HEADER_FIELDS}
    key = extraction_key(result)
    if key is not None:
        for documento in _documentos(xml_documents):
            values = xml_values(documento)
            if (values["rut_emisor"], values["tipo_dte"], values["folio"]) != key:
                continue
            discrepancies = [
                Discrepancy(field=name, extracted=extracted[name], xml=values[name])
                for name in HEADER_FIELDS
                if extracted[name] is not None and extracted[name] != values[name]
            ]
            merged = dict(values)  # the XML wins, including where it has no value
            return LinkedDocument(
                key=key,
                matched=True,
                authority="xml",
                engine=result.engine,
                document_id=documento.get("ID"),
                fields=merged,
                discrepancies=discrepancies,
            )
    return LinkedDocument(
        key=key, matched=False, authority="extraction", engine=result.engine, fields=extracted
    )
