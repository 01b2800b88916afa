"""Extraction speed and accuracy on the project's own documents.

PDF text extraction in ms/page (with and without decoding the timbre), next to bare pdfplumber
``extract_text`` on the same files as the reference; OCR in s/page (clean-up, Tesseract, the
RUT re-read) next to one bare Tesseract pass on the same scans; field-level exact-match
accuracy for each path. Documents: stamped DTEs printed by dte_core.printing (SII layout) and
hand-made odd layouts, scans rotated up to 2 degrees with noise and blur.

Also the time to print one DTE (dte_core.printing).

Run: ``.venv/bin/python bench/extraction.py`` (``--text-docs 60 --ocr-docs 8``).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import time

import pdfplumber
import pytesseract
from PIL import Image

from ai_service.extraction import extract
from ai_service.extraction.result import ExtractionResult
from ai_service.extraction.testkit import (
    PRINT_OPTIONS,
    Sample,
    Score,
    odd_sample,
    scan,
    score_fields,
    score_lines,
    sii_sample,
)
from dte_core.printing import render_pdf


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def bare_pdfplumber(pdf: bytes) -> None:
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        for page in doc.pages:
            page.extract_text()


def accuracy(results: list[tuple[Sample, ExtractionResult]]) -> tuple[Score, Score]:
    fields, lines = Score(), Score()
    for sample, result in results:
        fields.add(score_fields(result, sample.data.truth, sample.name))
        lines.add(score_lines(result, sample.data, sample.name))
    return fields, lines


def report(label: str, fields: Score, lines: Score) -> None:
    print(
        f"  {label:<28} fields {fields.accuracy:7.2%} ({fields.correct}/{fields.total}, "
        f"spurious {fields.spurious})   lines {lines.accuracy:7.2%} ({lines.correct}/{lines.total})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--text-docs", type=int, default=60)
    parser.add_argument("--ocr-docs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # Tesseract on one core too
    rng = random.Random(args.seed)
    half = args.text_docs // 2
    samples = [sii_sample(rng) for _ in range(half)] + [odd_sample(rng) for _ in range(half)]

    sii = [s for s in samples if s.xml]
    render = [timed(render_pdf, s.xml, PRINT_OPTIONS)[1] for s in sii]
    print(
        f"Printing: {statistics.median(render) * 1000:.1f} ms per one-page DTE "
        f"(median of {len(sii)})"
    )
    print(f"PDF text layer: {len(samples)} documents (SII print + odd layouts), one page each")
    bare = [timed(bare_pdfplumber, s.pdf)[1] for s in samples]
    plain = [timed(extract, s.pdf, read_timbre=False) for s in samples]
    stamped = [timed(extract, s.pdf) for s in samples]
    ref = statistics.median(bare) * 1000
    for label, runs in (("extract, no timbre", plain), ("extract + timbre decode", stamped)):
        ms = statistics.median(t for _, t in runs) * 1000
        print(f"  {label:<28} {ms:7.1f} ms/page (median)  = {ms / ref:4.2f}x bare pdfplumber")
    print(f"  {'bare pdfplumber extract_text':<28} {ref:7.1f} ms/page (reference)")
    report("accuracy, text", *accuracy([(s, r) for s, (r, _) in zip(samples, plain, strict=True)]))
    report(
        "accuracy, text + timbre",
        *accuracy([(s, r) for s, (r, _) in zip(samples, stamped, strict=True)]),
    )

    ocr_half = args.ocr_docs // 2
    ocr_samples = [sii_sample(rng) for _ in range(ocr_half)] + [
        odd_sample(rng) for _ in range(ocr_half)
    ]
    scans = [scan(s.pdf, angle=rng.uniform(-2, 2), seed=n) for n, s in enumerate(ocr_samples)]
    print(f"OCR: {len(scans)} scans at 300 dpi (rotated <= 2 deg, noise, blur), one page each")
    bare_ocr = [
        timed(pytesseract.image_to_string, Image.open(io.BytesIO(png)), lang="spa")[1]
        for png in scans
    ]
    ocr_plain = [timed(extract, png, read_timbre=False) for png in scans]
    ocr_stamped = [timed(extract, png) for png in scans]
    ref_ocr = statistics.median(bare_ocr)
    for label, runs in (
        ("extract, no timbre", ocr_plain),
        ("extract + timbre decode", ocr_stamped),
    ):
        s = statistics.median(t for _, t in runs)
        print(f"  {label:<28} {s:7.2f} s/page (median)   = {s / ref_ocr:4.2f}x bare Tesseract")
    print(f"  {'bare Tesseract (spa, psm 3)':<28} {ref_ocr:7.2f} s/page (reference)")
    fields, lines = accuracy([(s, r) for s, (r, _) in zip(ocr_samples, ocr_plain, strict=True)])
    report("accuracy, OCR", fields, lines)
    sii_only = [(s, r) for s, (r, _) in zip(ocr_samples, ocr_plain, strict=True) if s.xml]
    report("accuracy, OCR (SII prints)", *accuracy(sii_only))
    odd_only = [(s, r) for s, (r, _) in zip(ocr_samples, ocr_plain, strict=True) if not s.xml]
    report("accuracy, OCR (odd layouts)", *accuracy(odd_only))
    stamped_fields, stamped_lines = accuracy(
        [(s, r) for s, (r, _) in zip(ocr_samples, ocr_stamped, strict=True)]
    )
    report("accuracy, OCR + timbre", stamped_fields, stamped_lines)
    read = sum(r.timbre_read for r, _ in ocr_stamped)
    print(f"  timbre decoded from {read}/{ocr_half} SII-layout scans")
    if args.show_misses:
        for miss in fields.misses + lines.misses:
            print("   miss:", miss)


if __name__ == "__main__":
    main()
