"""``extract``: guards, then the text layer or OCR page by page, then the field parser."""

from __future__ import annotations

from ai_service.extraction import guards, ocr, pdf_text, timbre
from ai_service.extraction.guards import ExtractionLimits, FileKind
from ai_service.extraction.invoice import read_invoice
from ai_service.extraction.layout import Line, Word, build_lines
from ai_service.extraction.result import ExtractionResult

#: Enough for the timbre's 0.17 mm modules; text pages are rendered only to find it.
_TIMBRE_DPI = 200


def extract(
    data: bytes,
    *,
    limits: ExtractionLimits | None = None,
    lang: str = "spa",
    force_ocr: bool = False,
    read_timbre: bool = True,
) -> ExtractionResult:
    """Read an invoice from PDF, PNG, JPEG or TIFF bytes.

    Raises :class:`~ai_service.extraction.guards.ExtractionError` (with ``code``) for files
    that are refused or unreadable. ``engine`` in the result is ``pdf_text`` only when every
    page had a text layer; pages without one are read by OCR. With ``read_timbre`` the
    PDF417 timbre is decoded from the page images and its stamped values win.
    """
    limits = limits or ExtractionLimits()
    guards.check_size(data, limits)
    kind = guards.sniff(data)
    if kind is not FileKind.PDF:
        images = guards.open_image_frames(data, limits)
        pages, cleaned = ocr.read_images(images, limits, lang=lang)
        found = timbre.read_timbre(cleaned) if read_timbre else None
        return read_invoice(_lines(pages), engine="ocr", pages=len(pages), timbre=found)

    guards.check_pdf_bytes(data, limits)
    count = pdf_text.page_count(data)
    guards.check_page_count(count, limits)
    pages = [[] for _ in range(count)] if force_ocr else pdf_text.page_words(data)
    scanned = [n for n, words in enumerate(pages) if _chars(words) < limits.min_text_chars]
    if not scanned:
        found = None
        if read_timbre:
            # the SII prints the timbre once, on the last page
            last = ocr.rasterise_pdf(data, limits, dpi=_TIMBRE_DPI, pages=[count - 1])
            found = timbre.read_timbre([last])
        return read_invoice(_lines(pages), engine="pdf_text", pages=count, timbre=found)
    images = ocr.rasterise_pdf(data, limits)
    renderings = [[image] for image in images]
    for n in scanned:
        timeout = limits.ocr_timeout_seconds
        pages[n], renderings[n] = ocr.read_page(images[n], page=n, lang=lang, timeout=timeout)
    found = timbre.read_timbre(renderings) if read_timbre else None
    return read_invoice(_lines(pages), engine="ocr", pages=count, timbre=found)


def _chars(words: list[Word]) -> int:
    return sum(len(w.text) for w in words)


def _lines(pages: list[list[Word]]) -> list[Line]:
    return [line for words in pages for line in build_lines(words)]
