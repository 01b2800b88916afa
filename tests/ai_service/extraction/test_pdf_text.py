"""Text-layer PDFs: the project's own prints of real SII documents and of generated ones, and
hand-made layouts with other labels, positions and formats. Field-level exact match."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from ai_service.extraction import extract
from ai_service.extraction.odd_layouts import Style, render_odd
from ai_service.extraction.testkit import (
    PRINT_OPTIONS,
    Score,
    odd_sample,
    random_invoice,
    score_fields,
    score_lines,
    sii_sample,
)
from dte_core.printing import render_pdf

REAL = {
    "sii-dte/DTE--76354771-K--33--170--cleaned.xml": {
        "rut_emisor": "76354771-K", "rut_receptor": "96790240-3", "tipo_dte": 33, "folio": 170,
        "fch_emis": "2019-04-01", "mnt_neto": 2517900, "mnt_exe": None, "iva": 478401,
        "mnt_total": 2996301,
    },
    "sii-dte/DTE--96670340-7--61--110616.xml": {
        "rut_emisor": "96670340-7", "rut_receptor": "81675600-6", "tipo_dte": 61,
        "folio": 110616, "fch_emis": "2019-08-02", "mnt_neto": 48190822, "mnt_exe": 0,
        "iva": 9156256, "mnt_total": 57347078,
    },
    "sii-dte/DTE--60910000-1--33--2336600.xml": {
        "rut_emisor": "60910000-1", "rut_receptor": "76555835-2", "tipo_dte": 33,
        "folio": 2336600, "fch_emis": "2019-08-08", "mnt_neto": 8943, "mnt_exe": None,
        "iva": 1699, "mnt_total": 10642,
    },
    "official/F60T33-ejemplo-oficial-SII.xml": {
        "rut_emisor": "97975000-5", "rut_receptor": "77777777-7", "tipo_dte": 33, "folio": 60,
        "fch_emis": "2003-10-13", "mnt_neto": 100000, "mnt_exe": None, "iva": 19000,
        "mnt_total": 119000,
    },
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(REAL))
def test_printed_real_documents_read_back_exactly(shared_sii: Path, name: str) -> None:
    pdf = render_pdf((shared_sii / "samples" / name).read_bytes(), PRINT_OPTIONS)
    result = extract(pdf)
    assert result.engine == "pdf_text"
    assert {k: result.value(k) for k in REAL[name]} == REAL[name]
    assert result.checks["iva_is_19_percent"] and result.checks["total_is_sum"]
    assert result.confidence >= 0.9
    assert all(result.fields[k].confidence >= 0.9 for k, v in REAL[name].items() if v is not None)


def test_line_items_of_the_official_example(shared_sii: Path) -> None:
    pdf = render_pdf(
        (shared_sii / "samples/official/F60T33-ejemplo-oficial-SII.xml").read_bytes(),
        PRINT_OPTIONS,
    )
    result = extract(pdf)
    got = [(i.descripcion, i.cantidad, i.precio_unitario, i.monto) for i in result.lines]
    assert got == [
        ("Parlantes Multimedia 180W.", Decimal(20), Decimal(4500), 90000),
        ("Mouse Inalambrico PS/2", Decimal(1), Decimal(5000), 5000),
        ("Caja de Diskettes 10 Unidades", Decimal(5), Decimal(1000), 5000),
    ]
    assert result.checks["lines_sum_to_neto"] is True
    assert all(i.confidence >= 0.95 for i in result.lines)


def test_description_continuation_is_not_an_item(shared_sii: Path) -> None:
    # the 61's DscItem ends in "... Julio 2019": a line of text, not an amount
    pdf = render_pdf(
        (shared_sii / "samples/sii-dte/DTE--96670340-7--61--110616.xml").read_bytes(),
        PRINT_OPTIONS,
    )
    result = extract(pdf)
    assert [(i.descripcion, i.monto) for i in result.lines] == [("Comision Corner", 48190822)]


def test_generated_prints_and_odd_layouts_accuracy_floor() -> None:
    rng = random.Random(20261201)
    fields, lines = Score(), Score()
    samples = [sii_sample(rng) for _ in range(8)] + [odd_sample(rng) for _ in range(24)]
    for sample in samples:
        result = extract(sample.pdf)
        assert result.engine == "pdf_text"
        fields.add(score_fields(result, sample.data.truth, sample.name))
        lines.add(score_lines(result, sample.data, sample.name))
    assert fields.total > 200
    assert fields.accuracy >= 0.98, fields.misses
    assert fields.spurious == 0
    assert lines.accuracy >= 0.95, lines.misses


def _style(**changes: object) -> Style:
    base = Style(
        box="left", rut_label="RUT", folio_format="Folio: {}", date_label="Fecha:",
        date_format="dmy/", receptor_label="Cliente:", receptor_rut_label="Rut Cliente:",
        neto_label="Neto", exento_label="Exento", iva_label="I.V.A.", total_label="Total a pagar",
        money="{}", totals="row", qty_first=True, dotted_ruts=True, page=(612.0, 792.0),
    )  # fmt: skip
    return Style(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_values_printed_under_their_labels_and_quantity_first() -> None:
    data = random_invoice(random.Random(3), 33)
    result = extract(render_odd(data, _style()))
    assert {k: result.value(k) for k in data.truth} == data.truth
    assert [i.monto for i in result.lines] == [m for *_, m in data.items]
    assert [i.cantidad for i in result.lines] == [q for _, q, _, _ in data.items]


@pytest.mark.parametrize("fmt", ["dmy/", "dmy-", "iso", "words"])
def test_date_formats(fmt: str) -> None:
    data = random_invoice(random.Random(4), 33)
    data.fecha = date(2025, 9, 7)
    result = extract(render_odd(data, _style(date_format=fmt, totals="column")))
    assert result.value("fch_emis") == "2025-09-07"


def test_wrong_iva_is_flagged_and_trusted_less() -> None:
    data = random_invoice(random.Random(6), 33)
    honest = extract(render_odd(data, _style(totals="column")))
    data.iva = (data.iva or 0) + 1000
    data.total += 1000
    result = extract(render_odd(data, _style(totals="column")))
    assert result.value("iva") == data.iva  # read as printed...
    assert result.checks["iva_is_19_percent"] is False  # ...but the arithmetic says no
    assert result.checks["total_is_sum"] is True
    assert "check_failed: iva_is_19_percent" in result.warnings
    assert result.fields["iva"].confidence < honest.fields["iva"].confidence
    assert result.confidence < honest.confidence


def test_rut_with_a_wrong_check_digit_is_not_taken() -> None:
    data = random_invoice(random.Random(8), 33)
    rut, name = data.receptor
    number, dv = rut.split("-")
    wrong = f"{number}-{'0' if dv != '0' else '1'}"
    data.receptor = (wrong, name)
    pdf = render_odd(data, _style(totals="column", dotted_ruts=False))
    result = extract(pdf)
    assert result.value("rut_receptor") is None
    assert any(w.startswith("rut_check_digit_failed") for w in result.warnings)
    assert result.value("rut_emisor") == data.emisor[0]
