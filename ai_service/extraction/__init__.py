"""Invoice data from PDFs and scans: the PDF text layer when there is one, Tesseract otherwise.

``extract(data)`` refuses hostile or unsupported files first (:mod:`.guards`), then reads words
with their positions, and parses header fields and line items the same way for both engines.
The result names its engine and gives each field a confidence; :func:`link_to_xml` matches it
with the XML of the same document, whose values always win.
"""

from __future__ import annotations

from ai_service.extraction.guards import ExtractionError, ExtractionLimits, FileKind
from ai_service.extraction.linking import LinkedDocument, link_to_xml
from ai_service.extraction.result import ExtractedField, ExtractionResult, LineItem
from ai_service.extraction.service import extract

__all__ = [
    "ExtractedField",
    "ExtractionError",
    "ExtractionLimits",
    "ExtractionResult",
    "FileKind",
    "LineItem",
    "LinkedDocument",
    "extract",
    "link_to_xml",
]
