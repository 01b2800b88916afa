"""The printed DTE: SII layout read back from the PDF, and the timbre decoded from its pixels.

The barcode is decoded by an independent reader (zxing-cpp) from a raster of the page
(PDFium), exactly as a phone or the SII's verifier would see the printout.
"""

from __future__ import annotations

import io
import random
from datetime import date
from pathlib import Path

import pdfplumber
import pypdfium2
import pytest
import zxingcpp
from lxml import etree

from ai_service.extraction.testkit import dte_xml, random_invoice
from dte_core.errors import InvalidDocumentError, XmlSecurityError
from dte_core.printing import (
    DOCUMENT_NAMES,
    TIMBRE_SECURITY_LEVEL,
    PrintOptions,
    format_amount,
    format_fecha,
    render_pdf,
    timbre_codes,
)
from dte_core.ted import pdf417_payload
from dte_core.xmlsafe import parse_untrusted

OPTIONS = PrintOptions(
    resolucion_numero=80, resolucion_fecha=date(2014, 8, 22), oficina_sii="QUILLOTA"
)
SAMPLES = {
    # name: (RUT box, receptor RUT, fecha, neto, IVA, total, a text from the references/lines)
    "sii-dte/DTE--76354771-K--33--170--cleaned.xml": (
        "R.U.T.: 76.354.771-K", "96.790.240-3", "01 de Abril de 2019",
        "2.517.900", "478.401", "2.996.301", "Orden de Compra N° 4510083633",
    ),
    "sii-dte/DTE--96670340-7--61--110616.xml": (
        "R.U.T.: 96.670.340-7", "81.675.600-6", "02 de Agosto de 2019",
        "48.190.822", "9.156.256", "57.347.078", "Comision Corner",
    ),
    "sii-dte/DTE--60910000-1--33--2336600.xml": (
        "R.U.T.: 60.910.000-1", "76.555.835-2", "08 de Agosto de 2019",
        "8.943", "1.699", "10.642", "dominio fyndata",
    ),
    "official/F60T33-ejemplo-oficial-SII.xml": (
        "R.U.T.: 97.975.000-5", "77.777.777-7", "13 de Octubre de 2003",
        "100.000", "19.000", "119.000", "Parlantes Multimedia 180W.",
    ),
}  # fmt: skip
NAMES = {
    "sii-dte/DTE--76354771-K--33--170--cleaned.xml": ("FACTURA ELECTRÓNICA", "Nº 170"),
    "sii-dte/DTE--96670340-7--61--110616.xml": ("NOTA DE CRÉDITO", "Nº 110616"),
    "sii-dte/DTE--60910000-1--33--2336600.xml": ("FACTURA ELECTRÓNICA", "Nº 2336600"),
    "official/F60T33-ejemplo-oficial-SII.xml": ("FACTURA ELECTRÓNICA", "Nº 60"),
}


def _text(pdf: bytes) -> list[str]:
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        return [page.extract_text() or "" for page in doc.pages]


def _decode(pdf: bytes, page: int = -1, dpi: int = 200) -> list[zxingcpp.Barcode]:
    document = pypdfium2.PdfDocument(pdf)
    try:
        image = document[page if page >= 0 else len(document) - 1].render(scale=dpi / 72)
        return zxingcpp.read_barcodes(image.to_pil(), formats=zxingcpp.BarcodeFormat.PDF417)
    finally:
        document.close()


def _ted(path: Path) -> etree._Element:
    return next(parse_untrusted(path.read_bytes()).iter("{*}TED"))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_real_document_prints_the_sii_layout(shared_sii: Path, name: str) -> None:
    pdf = render_pdf((shared_sii / "samples" / name).read_bytes(), OPTIONS)
    (page,) = _text(pdf)
    rut_box, receptor, fecha, neto, iva, total, detail = SAMPLES[name]
    doc_name, folio = NAMES[name]
    for expected in (rut_box, doc_name, folio, "S.I.I. - QUILLOTA", receptor, fecha, detail):
        assert expected in page
    assert f"Monto Neto $ {neto}" in page
    assert f"IVA 19% $ {iva}" in page
    assert f"Total $ {total}" in page
    assert "Timbre Electrónico SII" in page
    assert "Res. N° 80 de 2014 - Verifique documento: www.sii.cl" in page


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_timbre_decodes_to_the_ted_payload(shared_sii: Path, name: str) -> None:
    path = shared_sii / "samples" / name
    pdf = render_pdf(path.read_bytes(), OPTIONS)
    (barcode,) = _decode(pdf)
    payload = pdf417_payload(_ted(path))
    assert barcode.bytes == payload
    assert payload.startswith(b"<TED version=") and payload.endswith(b"</TED>")


def test_timbre_uses_error_correction_level_5(shared_sii: Path) -> None:
    path = shared_sii / "samples/sii-dte/DTE--76354771-K--33--170--cleaned.xml"
    payload = pdf417_payload(_ted(path))
    codes = timbre_codes(payload)
    rows, data_columns = len(codes), len(codes[0]) - 4  # start, two row indicators, stop
    (barcode,) = _decode(render_pdf(path.read_bytes(), OPTIONS))
    # zxing reports the share of error-correction codewords; level L has 2**(L+1) of them
    share = int(barcode.ec_level.rstrip("%")) / 100 * rows * data_columns
    levels = {level: abs(2 ** (level + 1) - share) for level in range(9)}
    assert min(levels, key=levels.__getitem__) == TIMBRE_SECURITY_LEVEL == 5


def test_rut_box_is_red_top_right_and_timbre_is_within_sii_bounds(shared_sii: Path) -> None:
    path = shared_sii / "samples/sii-dte/DTE--76354771-K--33--170--cleaned.xml"
    pdf = render_pdf(path.read_bytes(), OPTIONS)
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        page = doc.pages[0]
        red = [
            r
            for r in page.rects
            if r["stroke"]
            and r["stroking_color"]
            and r["stroking_color"][0] > 0.5 > max(r["stroking_color"][1:])
        ]
        assert len(red) == 1
        box = red[0]
        assert box["x0"] > page.width / 2 and box["top"] < page.height / 5
        inside = "".join(
            c["text"]
            for c in page.chars
            if box["x0"] < c["x0"] < box["x1"] and box["top"] < c["top"] < box["bottom"]
        )
        assert "R.U.T.:76.354.771-K" in inside.replace(" ", "")
        assert "FACTURAELECTRÓNICA" in inside.replace(" ", "")
        (image,) = page.images
        cm = 72 / 2.54
        assert image["x0"] == pytest.approx(2 * cm, abs=0.5)
        assert 5 * cm <= image["x1"] - image["x0"] <= 9 * cm + 0.5
        assert 2 * cm <= image["bottom"] - image["top"] <= 4 * cm + 0.5


@pytest.mark.parametrize("tipo", sorted(DOCUMENT_NAMES))
def test_every_tipo_prints_its_name_and_a_readable_timbre(tipo: int) -> None:
    data = random_invoice(random.Random(tipo), tipo)
    xml = dte_xml(data)
    pdf = render_pdf(xml, OPTIONS)
    (page,) = _text(pdf)
    assert DOCUMENT_NAMES[tipo] in page.replace("\n", " ") or all(
        word in page for word in DOCUMENT_NAMES[tipo].split()
    )
    assert f"Nº {data.folio}" in page
    (barcode,) = _decode(pdf)
    assert barcode.bytes == pdf417_payload(next(parse_untrusted(xml).iter("{*}TED")))


def test_long_detail_continues_on_more_pages_and_ends_with_totals_and_timbre() -> None:
    rng = random.Random(5)
    data = random_invoice(rng, 33)
    data.items = [
        (f"Item número {n}", data.items[0][1], 1000, int(data.items[0][1]) * 1000)
        for n in range(60)
    ]
    data.neto = sum(m for *_, m in data.items)
    data.iva = round(data.neto * 19 / 100)
    data.total = data.neto + data.iva
    pdf = render_pdf(dte_xml(data), OPTIONS)
    pages = _text(pdf)
    assert len(pages) >= 2
    assert all(f"Nº {data.folio}" in page for page in pages)  # the box repeats on every page
    assert "continúa en la página siguiente" in pages[0]
    assert "Total $" not in pages[0] and f"Total $ {format_amount(str(data.total))}" in pages[-1]
    printed = [n for n in range(60) if any(f"Item número {n} " in p for p in pages)]
    assert printed == list(range(60))
    assert _decode(pdf, page=0) == []
    (barcode,) = _decode(pdf)
    assert barcode.bytes.startswith(b"<TED")


def test_cedible_copy_and_envelope_of_several_documents() -> None:
    rng = random.Random(9)
    dtes = [parse_untrusted(dte_xml(random_invoice(rng, tipo))) for tipo in (33, 61)]
    envio = etree.Element("EnvioDTE")
    set_dte = etree.SubElement(envio, "SetDTE")
    for dte in dtes:
        set_dte.append(dte)
    pdf = render_pdf(envio, PrintOptions(12, date(2020, 1, 2), "TEMUCO", cedible=True))
    pages = _text(pdf)
    assert len(pages) == 2
    assert "FACTURA ELECTRÓNICA" in pages[0] and "NOTA DE CRÉDITO" in pages[1]
    assert all("CEDIBLE" in page and "Res. N° 12 de 2020" in page for page in pages)


def test_unprintable_input_is_refused(shared_sii: Path) -> None:
    with pytest.raises(XmlSecurityError):
        render_pdf((shared_sii / "samples/xml-attacks/billion-laughs-1.xml").read_bytes(), OPTIONS)
    with pytest.raises(InvalidDocumentError) as nothing:
        render_pdf(b"<EnvioDTE/>", OPTIONS)
    assert nothing.value.code == "nothing_to_print"
    xml = dte_xml(random_invoice(random.Random(1), 33)).replace(b"<TipoDTE>33<", b"<TipoDTE>110<")
    with pytest.raises(InvalidDocumentError) as tipo:
        render_pdf(xml, OPTIONS)
    assert tipo.value.code == "unsupported_tipo"


def test_formats() -> None:
    assert format_amount("2517900") == "2.517.900"
    assert format_amount("1258950.00") == "1.258.950"
    assert format_amount("8942.86") == "8.942,86"
    assert format_amount("-1500") == "-1.500"
    assert format_fecha("2019-04-01") == "01 de Abril de 2019"
    assert format_fecha("no es fecha") == "no es fecha"
