"""The parsing rules on their own: numbers as Chile writes them, RUTs and their check digit,
OCR confusions, labels, and the timbre payload."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from ai_service.extraction.fields import amounts_in, find_amounts, parse_number, rut_candidates
from ai_service.extraction.invoice import read_invoice
from ai_service.extraction.layout import Word, build_lines
from ai_service.extraction.timbre import parse_timbre
from dte_core.ted import pdf417_payload
from dte_core.xmlsafe import parse_untrusted


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1.234.567", Decimal(1234567)),
        ("$1.234.567", Decimal(1234567)),
        ("1,234,567", Decimal(1234567)),
        ("2.517.900", Decimal(2517900)),
        ("990", Decimal(990)),
        ("8.942,86", Decimal("8942.86")),
        ("2,5", Decimal("2.5")),
        ("12.34", None),  # neither a thousands group nor a Chilean decimal
        ("abc", None),
        ("1.2345.678", None),
    ],
)
def test_parse_number(text: str, value: Decimal | None) -> None:
    assert parse_number(text) == value


def test_percentages_are_not_amounts() -> None:
    assert amounts_in("IVA 19% $ 478.401") == [Decimal(478401)]
    assert amounts_in("IVA (19 %) 1.699") == [Decimal(1699)]
    assert amounts_in("I.V.A. 19% : $ 19.000") == [Decimal(19000)]


def _line(*segments: tuple[str, float], top: float = 100.0) -> list[Word]:
    words = []
    for text, x in segments:
        for word in text.split():
            words.append(Word(word, x, top, x + 6 * len(word), top + 10))
            x += 6 * len(word) + 4
    return words


def test_ruts_need_a_valid_check_digit_and_ocr_slips_are_repaired() -> None:
    lines = build_lines(
        _line(("RUT: 76.354.771-K", 10))
        + _line(("R.U.T.: 96.790.240-4", 10), top=130)  # wrong check digit
        + _line(("RUT 9679O24O-3", 10), top=160)  # O for 0
    )
    found = [(str(c.rut), c.repaired) for c in rut_candidates(lines)]
    assert found == [("76354771-K", False), ("96790240-3", True)]


def test_labels_find_their_values_on_the_line_or_below() -> None:
    words = _line(("Sub Total Neto", 10), ("IVA 19%", 200), ("Total a pagar", 400))
    words += _line(("1.000", 40), ("190", 230), ("1.190", 430), top=115)
    words += _line(("Monto Exento", 10), ("$ 500", 300), top=160)
    found = {k: v.value for k, v in find_amounts(build_lines(words)).items()}
    assert found == {"mnt_neto": 1000, "iva": 190, "mnt_total": 1190, "mnt_exe": 500}


def test_a_missing_total_is_derived_when_the_rest_adds_up() -> None:
    words = _line(("Neto", 10), ("10.000", 300))
    words += _line(("IVA", 10), ("1.900", 300), top=130)
    result = read_invoice(build_lines(words), engine="pdf_text", pages=1)
    total = result.fields["mnt_total"]
    assert (total.value, total.source, total.confidence) == (11900, "derived", 0.7)
    assert result.checks["total_is_sum"] is True


def test_timbre_payload_parses_and_its_stamp_verifies(shared_sii: Path) -> None:
    path = shared_sii / "samples/sii-dte/DTE--96670340-7--61--110616.xml"
    ted = next(parse_untrusted(path.read_bytes()).iter("{*}TED"))
    timbre = parse_timbre(pdf417_payload(ted))
    assert timbre is not None and timbre.signature_valid and timbre.caf_valid
    assert timbre.values == {
        "rut_emisor": "96670340-7",
        "rut_receptor": "81675600-6",
        "tipo_dte": 61,
        "folio": 110616,
        "mnt_total": 57347078,
        "fch_emis": "2019-08-02",
    }
    altered = pdf417_payload(ted).replace(b"<F>110616</F>", b"<F>110617</F>")
    forged = parse_timbre(altered)
    assert forged is not None and not forged.signature_valid
    assert parse_timbre(b"https://example.org/not-a-ted") is None
    assert parse_timbre(b'<!DOCTYPE x [<!ENTITY a "b">]><TED/>') is None
