"""The PDF text layer (pdfplumber): words with their boxes, page by page.

Called only after :mod:`ai_service.extraction.guards` has cleared the bytes (page count, stream
sizes, image dimensions).
"""

from __future__ import annotations

from io import BytesIO

from ai_service.extraction.guards import ExtractionError
from ai_service.extraction.layout import Word


def page_count(data: bytes) -> int:
    """Pages per PDFium, which reads the page tree without building every page."""
    import pypdfium2

    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise ExtractionError(
                "the PDF needs a password; send it without one", code="encrypted_pdf"
            ) from exc
        raise ExtractionError(f"unreadable PDF: {exc}", code="unreadable_pdf") from exc
    try:
        return len(document)
    finally:
        document.close()


def page_words(data: bytes) -> list[list[Word]]:
    """Words of every page; a page without a text layer (a scan) yields an empty list."""
    import pdfplumber
    from pdfminer.pdfparser import PDFSyntaxError
    from pdfminer.psparser import PSException

    pages: list[list[Word]] = []
    try:
        with pdfplumber.open(BytesIO(data)) as pdf:
            for number, page in enumerate(pdf.pages):
                words = page.extract_words(x_tolerance=1.5, y_tolerance=2, keep_blank_chars=False)
                pages.append(
                    [
                        Word(w["text"], w["x0"], w["top"], w["x1"], w["bottom"], number)
                        for w in words
                        if w["text"].strip()
                    ]
                )
                page.flush_cache()
    except (PDFSyntaxError, PSException, ValueError, KeyError, TypeError) as exc:
        raise ExtractionError(f"unreadable PDF: {exc}", code="unreadable_pdf") from exc
    return pages
