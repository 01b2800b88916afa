"""Build a ``<Documento>`` element from a :class:`dte_core.models.Documento`.

Models declare their fields in schema order, so walking them in order yields the element
sequence the XSD demands; ``None`` and empty lists are simply not emitted.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import Enum

from lxml import etree
from pydantic import BaseModel

from dte_core.models import Documento
from dte_core.rut import Rut
from dte_core.xmlsafe import SII_NS


def format_value(value: object) -> str:
    """The lexical form the SII types expect: plain decimals, ISO dates, RUT ``12345678-5``."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        raise TypeError("booleans have no SII lexical form")
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, date | Rut | int | str):
        return value.isoformat() if isinstance(value, date) else str(value)
    raise TypeError(f"cannot write {type(value).__name__} as XML text")


def _append(parent: etree._Element, name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            _append(parent, name, item)
        return
    child = etree.SubElement(parent, f"{{{SII_NS}}}{name}")
    if isinstance(value, BaseModel):
        _fill(child, value)
    else:
        child.text = format_value(value)


def _fill(element: etree._Element, model: BaseModel) -> None:
    for name in type(model).model_fields:
        _append(element, name, getattr(model, name))


def documento_element(documento: Documento, *, doc_id: str) -> etree._Element:
    """``<Documento ID=...>`` in the SII namespace, without TED and TmstFirma (added later)."""
    element = etree.Element(f"{{{SII_NS}}}Documento", nsmap={None: SII_NS})  # type: ignore[dict-item]
    element.set("ID", doc_id)
    _fill(element, documento)
    return element
