"""Hostile and unsupported files are refused before a parser sees them, each with its code."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image
from reportlab.lib.pagesizes import LETTER
from reportlab.pdfgen.canvas import Canvas

from ai_service.extraction import ExtractionError, ExtractionLimits, extract
from ai_service.extraction.guards import FileKind, sniff
from ai_service.extraction.pdf_text import page_count


def _pdf(pages: int = 1, text: str = "Factura") -> bytes:
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=LETTER)
    for n in range(pages):
        canvas.drawString(72, 700, f"{text} {n}")
        canvas.showPage()
    canvas.save()
    return out.getvalue()


def _raw_pdf(*objects: bytes) -> bytes:
    """A minimal PDF with the given objects after catalog (1), pages (2) and page (3)."""
    body = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        *objects,
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for number, obj in enumerate(body, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + obj + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(body) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(body) + 1, xref)
    )
    return out.getvalue()


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def _code(data: bytes, limits: ExtractionLimits | None = None) -> str:
    with pytest.raises(ExtractionError) as refused:
        extract(data, limits=limits)
    assert refused.value.message
    assert refused.value.as_dict()["code"] == refused.value.code
    return refused.value.code


def test_real_type_comes_from_magic_bytes() -> None:
    png = io.BytesIO()
    Image.new("L", (4, 4)).save(png, "PNG")
    jpeg = io.BytesIO()
    Image.new("L", (4, 4)).save(jpeg, "JPEG")
    tiff = io.BytesIO()
    Image.new("L", (4, 4)).save(tiff, "TIFF")
    assert sniff(_pdf()) is FileKind.PDF
    assert sniff(b"\n\n  junk before the header %PDF-1.4\n...") is FileKind.PDF
    assert sniff(png.getvalue()) is FileKind.PNG
    assert sniff(jpeg.getvalue()) is FileKind.JPEG
    assert sniff(tiff.getvalue()) is FileKind.TIFF


@pytest.mark.parametrize(
    "data",
    [
        b"PK\x03\x04 a zip renamed invoice.pdf",
        b"MZ\x90\x00 an executable",
        b"<html><body>factura</body></html>",
        b"GIF89a\x01\x00\x01\x00",
        b'<?xml version="1.0"?><DTE/>',
    ],
)
def test_wrong_types_are_refused(data: bytes) -> None:
    assert _code(data) == "unsupported_type"


def test_empty_and_oversized_files() -> None:
    assert _code(b"") == "empty_file"
    assert _code(_pdf(), ExtractionLimits(max_bytes=100)) == "file_too_large"


def test_too_many_pages() -> None:
    assert _code(_pdf(pages=6), ExtractionLimits(max_pages=5)) == "too_many_pages"
    assert extract(_pdf(pages=5, text="x" * 50), limits=ExtractionLimits(max_pages=5)).pages == 5


def test_page_tree_claiming_a_huge_count_is_not_believed() -> None:
    lying = _raw_pdf(_stream(b"BT /F1 12 Tf 72 700 Td (Factura) Tj ET")).replace(
        b"/Count 1", b"/Count 2000000"
    )
    assert page_count(lying) == 1


def test_pdf_bomb_of_fifty_thousand_pages_is_refused_before_parsing() -> None:
    pages = 50_000
    kids = b" ".join(b"%d 0 R" % (5 + n) for n in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        b"<< >>",
        _stream(b"BT ET"),
    ]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>"] * pages
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + obj + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    assert _code(out.getvalue()) == "too_many_pages"


def test_flate_bomb_is_measured_without_inflating_it_whole() -> None:
    bomb = zlib.compress(bytes(64 * 1024 * 1024), 9)  # 64 MiB of zeros in ~64 KiB
    assert len(bomb) < 100_000
    data = _raw_pdf(_stream(bomb, b"/Filter /FlateDecode"))
    assert (
        _code(data, ExtractionLimits(max_decompressed_bytes=8 * 1024 * 1024))
        == "decompression_bomb"
    )


def test_nested_flate_bomb() -> None:
    inner = zlib.compress(bytes(32 * 1024 * 1024), 9)
    outer = zlib.compress(inner, 9)
    data = _raw_pdf(_stream(outer, b"/Filter [/FlateDecode /FlateDecode]"))
    assert len(outer) < 10_000
    assert (
        _code(data, ExtractionLimits(max_decompressed_bytes=4 * 1024 * 1024))
        == "decompression_bomb"
    )


def test_image_xobject_with_billions_of_pixels() -> None:
    image = _stream(
        zlib.compress(bytes(1000)),
        b"/Type /XObject /Subtype /Image /Width 100000 /Height 100000 /BitsPerComponent 8 "
        b"/ColorSpace /DeviceGray /Filter /FlateDecode",
    )
    assert _code(_raw_pdf(_stream(b"q Q"), image)) == "image_too_large"


def _png_header(width: int, height: int) -> bytes:
    """A PNG that announces ``width`` x ``height`` and carries one tiny IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_image_is_refused_from_its_header() -> None:
    assert _code(_png_header(60_000, 60_000)) == "image_too_large"  # over Pillow's own limit
    assert _code(_png_header(8_000, 6_000)) == "image_too_large"  # over ours (40 Mpx)
    assert (
        _code(_png_header(2_000, 2_000), ExtractionLimits(max_image_pixels=1_000_000))
        == "image_too_large"
    )


def test_multi_frame_tiff_counts_as_pages() -> None:
    frames = [Image.new("L", (64, 64), 255) for _ in range(4)]
    out = io.BytesIO()
    frames[0].save(out, "TIFF", save_all=True, append_images=frames[1:])
    assert _code(out.getvalue(), ExtractionLimits(max_pages=3)) == "too_many_pages"


def test_broken_and_encrypted_pdfs() -> None:
    assert _code(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage") == "unreadable_pdf"
    out = io.BytesIO()
    canvas = Canvas(out, encrypt="secret")
    canvas.drawString(72, 700, "Factura")
    canvas.save()
    assert _code(out.getvalue()) == "encrypted_pdf"


def test_truncated_image() -> None:
    png = io.BytesIO()
    Image.new("L", (300, 300), 128).save(png, "PNG")
    assert _code(png.getvalue()[:60]) == "unreadable_image"
