"""The printed representation of a DTE (PDF), laid out as the SII's "Manual de muestras impresas".

Red-bordered RUT box top-right (R.U.T., document name, folio) with the SII office under it,
emisor and receptor, detail lines, references, totals and the timbre: the TED as a PDF417
barcode at error-correction (security) level 5, 2 cm from the left edge, at most 9 x 4 cm,
with the captions the SII prescribes. Every page repeats the header; the last one carries the
totals and the timbre.
"""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO

from lxml import etree
from reportlab.pdfgen.canvas import Canvas

from dte_core.errors import InvalidDocumentError
from dte_core.printing.options import PrintOptions
from dte_core.printing.page import DocumentPages
from dte_core.printing.text import (
    DOCUMENT_NAMES,
    document_name,
    format_amount,
    format_fecha,
    format_rut,
)
from dte_core.printing.timbre import TIMBRE_SECURITY_LEVEL, timbre_codes, timbre_image
from dte_core.xmlsafe import local_name, parse_untrusted

__all__ = [
    "DOCUMENT_NAMES",
    "TIMBRE_SECURITY_LEVEL",
    "PrintOptions",
    "document_name",
    "format_amount",
    "format_fecha",
    "format_rut",
    "render_pdf",
    "timbre_codes",
    "timbre_image",
]


def render_pdf(source: bytes | etree._Element, options: PrintOptions) -> bytes:
    """Print a signed ``<DTE>`` (or every DTE of an EnvioDTE/EnvioBOLETA): the PDF bytes."""
    root = parse_untrusted(source) if isinstance(source, bytes) else source
    documentos = list(_documentos(root))
    if not documentos:
        raise InvalidDocumentError(
            f"<{local_name(root)}> holds no <Documento> to print", code="nothing_to_print"
        )
    out = BytesIO()
    canvas = Canvas(out, pagesize=options.page_size, pageCompression=1)
    canvas.setTitle(", ".join(_title(doc) for doc in documentos))
    canvas.setCreator("dte-ai")
    for documento in documentos:
        DocumentPages(canvas, documento, options).draw()
    canvas.save()
    return out.getvalue()


def _documentos(root: etree._Element) -> Iterator[etree._Element]:
    if local_name(root) == "Documento":
        yield root
        return
    for dte in [root] if local_name(root) == "DTE" else root.iter("{*}DTE"):
        documento = dte.find("{*}Documento")
        if documento is not None:
            yield documento


def _title(documento: etree._Element) -> str:
    enc = "{*}Encabezado/{*}IdDoc/{*}"
    return f"DTE {documento.findtext(enc + 'TipoDTE')} N° {documento.findtext(enc + 'Folio')}"
