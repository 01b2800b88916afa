"""Refuse hostile or unsupported files before any parser or rasteriser sees them.

A PDF or image from outside can be a bomb: thousands of pages, a flate stream that inflates
to gigabytes, an image header promising billions of pixels. These checks are cheap (a raw scan
of the bytes, a bounded inflate, an image header) and run first; each refusal carries a
machine-readable ``code`` and a message that says how to fix the file.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from io import BytesIO
from typing import Any, Final

from dte_core.errors import FieldError

PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC: Final = b"\xff\xd8\xff"
TIFF_MAGICS: Final = (b"II*\x00", b"MM\x00*")
# PDF 1.7 §7.5.2: readers accept the header anywhere in the first 1024 bytes.
_PDF_HEADER_WINDOW: Final = 1024


class ExtractionError(Exception):
    """A file the extractor refuses or cannot read; ``code`` says which rule it broke."""

    code = "extraction_error"

    def __init__(
        self, message: str, *, code: str | None = None, fields: Sequence[FieldError] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = tuple(fields)
        if code is not None:
            self.code = code

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "fields": [f.as_dict() for f in self.fields],
        }


class FileKind(StrEnum):
    PDF = "pdf"
    PNG = "png"
    JPEG = "jpeg"
    TIFF = "tiff"


@dataclass(frozen=True)
class ExtractionLimits:
    """Size limits for one file; the defaults fit invoices scanned at up to 600 dpi."""

    max_bytes: int = 20 * 1024 * 1024
    max_pages: int = 20
    #: Pixels of one image or one rasterised page (A4 at 600 dpi is 35 Mpx).
    max_image_pixels: int = 40_000_000
    #: Sum of every flate stream of a PDF once inflated.
    max_decompressed_bytes: int = 200 * 1024 * 1024
    #: Encrypted PDFs hide their streams from the bomb scan, so they are refused unless allowed.
    allow_encrypted: bool = False
    ocr_dpi: int = 300
    #: Tesseract seconds per page before giving up.
    ocr_timeout_seconds: float = 120.0
    #: Characters a PDF page needs in its text layer to skip OCR.
    min_text_chars: int = 40


def sniff(data: bytes) -> FileKind:
    """The file's real type from its magic bytes (never its name or declared content type)."""
    if not data:
        raise ExtractionError("the file is empty", code="empty_file")
    if b"%PDF-" in data[:_PDF_HEADER_WINDOW]:
        return FileKind.PDF
    if data.startswith(PNG_MAGIC):
        return FileKind.PNG
    if data.startswith(JPEG_MAGIC):
        return FileKind.JPEG
    if data.startswith(TIFF_MAGICS):
        return FileKind.TIFF
    raise ExtractionError(
        f"unsupported file type (starts with {data[:8]!r}): send a PDF, PNG, JPEG or TIFF",
        code="unsupported_type",
    )


def check_size(data: bytes, limits: ExtractionLimits) -> None:
    if len(data) > limits.max_bytes:
        raise ExtractionError(
            f"the file has {len(data)} bytes, over the limit of {limits.max_bytes}; "
            "send one document per file or scan at a lower resolution",
            code="file_too_large",
        )


# ----------------------------------------------------------------------------------- PDF
_STREAM_START = re.compile(rb"(?<!end)stream(?:\r\n|\n|\r)")
_FILTERS = re.compile(rb"/(FlateDecode|Fl|LZWDecode|LZW)\b")
_FILTER_KEY = re.compile(rb"/Filter\s*(\[[^\]]*\]|/[A-Za-z0-9]+)")
_IMAGE = re.compile(rb"/Subtype\s*/Image\b")
_WIDTH = re.compile(rb"/(?:Width|W)\s+(\d+)(?!\s+\d+\s+R)")
_HEIGHT = re.compile(rb"/(?:Height|H)\s+(\d+)(?!\s+\d+\s+R)")
_ENCRYPT = re.compile(rb"/Encrypt\s")


def check_pdf_bytes(data: bytes, limits: ExtractionLimits) -> None:
    """Raw scan of every stream: image dimensions and the inflated size, bounded."""
    if _ENCRYPT.search(data) and not limits.allow_encrypted:
        raise ExtractionError(
            "the PDF is encrypted; print it to a new PDF without a password and send that",
            code="encrypted_pdf",
        )
    budget = limits.max_decompressed_bytes
    for match in _STREAM_START.finditer(data):
        header_start = max(data.rfind(b"obj", 0, match.start()), match.start() - 4096, 0)
        header = data[header_start : match.start()]
        end = data.find(b"endstream", match.end())
        body = data[match.end() : end if end >= 0 else len(data)]
        if _IMAGE.search(header):
            _check_image_dict(header, limits)
        filter_key = _FILTER_KEY.search(header)
        filters = _FILTERS.findall(filter_key.group(1)) if filter_key else []
        if not filters:
            continue
        budget -= _inflated_size(body, filters, budget)
        if budget < 0:
            raise ExtractionError(
                "the PDF's compressed streams inflate past the limit of "
                f"{limits.max_decompressed_bytes} bytes (a decompression bomb?)",
                code="decompression_bomb",
            )


def _check_image_dict(header: bytes, limits: ExtractionLimits) -> None:
    width, height = _WIDTH.search(header), _HEIGHT.search(header)
    if width and height:
        check_pixels(int(width.group(1)), int(height.group(1)), limits, what="an image in the PDF")


def _inflated_size(body: bytes, filters: Sequence[bytes], budget: int) -> int:
    """How many bytes the chain of flate/LZW decodes produces, stopping past ``budget``."""
    chunk = body
    for name in filters:
        out = (
            _bounded_lzw(chunk, budget)
            if name.startswith(b"LZW")
            else _bounded_flate(chunk, budget)
        )
        if out is None:  # corrupt: the parser will fail on it or skip it
            return len(chunk)
        if len(out) > budget:
            return len(out)
        chunk = out
    return len(chunk)


def _bounded_flate(data: bytes, budget: int) -> bytes | None:
    out = bytearray()
    inflater = zlib.decompressobj()
    pending = data
    try:
        while pending and len(out) <= budget:
            out += inflater.decompress(pending, 1024 * 1024)
            pending = inflater.unconsumed_tail
    except zlib.error:
        return bytes(out) if out else None
    return bytes(out)


def _bounded_lzw(data: bytes, budget: int) -> bytes | None:
    from pdfminer.lzw import LZWDecoder

    out = bytearray()
    try:
        for piece in LZWDecoder(BytesIO(data)).run():
            out += piece
            if len(out) > budget:
                break
    except Exception:  # pdfminer raises assorted errors on bad codes: all mean "corrupt"
        return bytes(out) if out else None
    return bytes(out)


def check_pixels(width: int, height: int, limits: ExtractionLimits, *, what: str) -> None:
    if width * height > limits.max_image_pixels:
        raise ExtractionError(
            f"{what} has {width} x {height} pixels, over the limit of "
            f"{limits.max_image_pixels}; scan at 300 dpi",
            code="image_too_large",
        )


def check_page_count(count: int, limits: ExtractionLimits) -> None:
    if count > limits.max_pages:
        raise ExtractionError(
            f"the file has {count} pages, over the limit of {limits.max_pages}; "
            "send one document per file",
            code="too_many_pages",
        )
    if count < 1:
        raise ExtractionError("the PDF has no pages", code="unreadable_pdf")


# --------------------------------------------------------------------------------- images
def open_image_frames(data: bytes, limits: ExtractionLimits) -> list[Any]:
    """Every frame of a PNG/JPEG/TIFF as a loaded Pillow image, after the header checks."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ExtractionError(str(exc), code="image_too_large") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ExtractionError(f"unreadable image: {exc}", code="unreadable_image") from exc
    if image.format not in ("PNG", "JPEG", "MPO", "TIFF"):
        raise ExtractionError(f"unsupported image format {image.format}", code="unsupported_type")
    frames = getattr(image, "n_frames", 1)
    check_page_count(frames, limits)
    loaded = []
    for index in range(frames):
        image.seek(index)
        check_pixels(image.width, image.height, limits, what="the image")
        try:
            loaded.append(image.convert("L"))
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise ExtractionError(f"unreadable image: {exc}", code="unreadable_image") from exc
    return loaded
