"""Scans: the project's prints rasterised with noise, blur and a small rotation, read back by
Tesseract. Field-level exact match against the document's own values."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas

from ai_service.extraction import extract
from ai_service.extraction.ocr import otsu_threshold, preprocess, skew_angle
from ai_service.extraction.testkit import (
    PRINT_OPTIONS,
    Score,
    odd_sample,
    scan,
    score_fields,
    score_lines,
    sii_sample,
)
from dte_core.printing import render_pdf

from .test_pdf_text import REAL

pytestmark = pytest.mark.slow


def _image_pdf(png: bytes) -> bytes:
    """A scanner's PDF: one page holding only the scanned image, no text layer."""
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=LETTER)
    canvas.drawImage(ImageReader(io.BytesIO(png)), 0, 0, width=LETTER[0], height=LETTER[1])
    canvas.save()
    return out.getvalue()


def test_scanned_real_document_as_png(shared_sii: Path) -> None:
    name = "sii-dte/DTE--76354771-K--33--170--cleaned.xml"
    pdf = render_pdf((shared_sii / "samples" / name).read_bytes(), PRINT_OPTIONS)
    png = scan(pdf, angle=1.7, seed=1)

    plain = extract(png, read_timbre=False)  # the text alone, as Tesseract reads it
    assert plain.engine == "ocr" and not plain.timbre_read
    assert score_fields(plain, REAL[name]).accuracy >= 7 / 8
    assert [(i.cantidad, i.monto) for i in plain.lines] == [(2, 2517900)]
    assert plain.checks == {
        "lines_sum_to_neto": True,
        "iva_is_19_percent": True,
        "total_is_sum": True,
    }

    result = extract(png)  # with the timbre decoded from the scan: the stamp settles it
    assert result.timbre_read
    assert result.checks["timbre_signature_valid"] is True
    assert {k: result.value(k) for k in REAL[name]} == REAL[name]
    for name_ in ("rut_emisor", "rut_receptor", "tipo_dte", "folio", "fch_emis", "mnt_total"):
        assert result.fields[name_].source == "timbre"
        assert result.fields[name_].confidence == 1.0
    disagreements = [k for k in REAL[name] if plain.value(k) != REAL[name][k]]
    assert result.checks["text_matches_timbre"] is (not disagreements)
    for field in disagreements:
        assert any(w.startswith(f"timbre_overrides: {field} ") for w in result.warnings)


def test_image_only_pdf_goes_to_ocr(shared_sii: Path) -> None:
    name = "official/F60T33-ejemplo-oficial-SII.xml"
    pdf = render_pdf((shared_sii / "samples" / name).read_bytes(), PRINT_OPTIONS)
    scanned = _image_pdf(scan(pdf, dpi=200, angle=-1.2, seed=2))
    result = extract(scanned)
    assert result.engine == "ocr"
    assert result.pages == 1
    score = score_fields(result, REAL[name])
    assert score.accuracy >= 7 / 8, score.misses


def test_jpeg_scans_of_generated_documents_accuracy_floor() -> None:
    rng = random.Random(3)
    fields, lines = Score(), Score()
    samples = [sii_sample(rng) for _ in range(2)] + [odd_sample(rng) for _ in range(3)]
    for n, sample in enumerate(samples):
        data = scan(sample.pdf, angle=rng.uniform(-2, 2), seed=n, fmt="JPEG" if n % 2 else "PNG")
        result = extract(data, read_timbre=False)  # what Tesseract reads, no help from the stamp
        assert result.engine == "ocr"
        fields.add(score_fields(result, sample.data.truth, sample.name))
        lines.add(score_lines(result, sample.data, sample.name))
    assert fields.total >= 35
    assert fields.accuracy >= 0.9, fields.misses
    assert fields.spurious == 0, fields.misses
    assert lines.accuracy >= 0.8, lines.misses


def test_skew_is_measured_and_undone() -> None:
    rng = random.Random(11)
    page = scan(sii_sample(rng).pdf, dpi=150, angle=0, noise=0, blur=0)
    level = Image.open(io.BytesIO(page)).convert("L")
    for angle in (-3.0, 2.2):
        tilted = level.rotate(angle, expand=True, fillcolor=255)
        assert skew_angle(tilted) == pytest.approx(-angle, abs=0.25)
        assert abs(skew_angle(preprocess(tilted))) <= 0.25
    assert abs(skew_angle(level)) <= 0.2


def test_otsu_splits_ink_from_paper() -> None:
    rng = np.random.default_rng(0)
    paper = rng.normal(215, 10, 9000)
    ink = rng.normal(40, 15, 1000)
    pixels = np.clip(np.concatenate([paper, ink]), 0, 255).astype(np.uint8)
    threshold = otsu_threshold(pixels)
    assert 80 < threshold < 180
    assert (pixels <= threshold).sum() == pytest.approx(1000, rel=0.02)


def test_mixed_pdf_reads_scanned_pages_by_ocr_and_text_pages_from_the_text_layer() -> None:
    sample = sii_sample(random.Random(21))
    png = scan(sample.pdf, dpi=200, angle=0.8, seed=4)
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=LETTER)
    canvas.drawImage(ImageReader(io.BytesIO(png)), 0, 0, width=LETTER[0], height=LETTER[1])
    canvas.showPage()
    canvas.drawString(72, 700, "Anexo: condiciones comerciales y plazos de entrega acordados.")
    canvas.showPage()
    canvas.save()
    result = extract(out.getvalue(), read_timbre=False)
    assert (result.engine, result.pages) == ("ocr", 2)
    score = score_fields(result, sample.data.truth)
    assert score.accuracy >= 7 / 8, score.misses
