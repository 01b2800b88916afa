"""An extraction linked to the XML of the same DTE: matched by (RUT emisor, tipo, folio), and
the XML's values win."""

from __future__ import annotations

import random
from pathlib import Path

from ai_service.extraction import extract, link_to_xml
from ai_service.extraction.odd_layouts import random_style, render_odd
from ai_service.extraction.testkit import PRINT_OPTIONS, dte_xml, random_invoice
from dte_core.printing import render_pdf

SAMPLE = "samples/sii-dte/DTE--76354771-K--33--170--cleaned.xml"


def test_pdf_of_a_real_dte_links_to_its_xml(shared_sii: Path) -> None:
    xml = (shared_sii / SAMPLE).read_bytes()
    other = (shared_sii / "samples/official/F60T33-ejemplo-oficial-SII.xml").read_bytes()
    result = extract(render_pdf(xml, PRINT_OPTIONS))
    linked = link_to_xml(result, [other, xml])
    assert linked.matched and linked.authority == "xml"
    assert linked.key == ("76354771-K", 33, 170)
    assert linked.document_id == "MiPE76354771-13419"
    assert linked.engine == "pdf_text"
    assert linked.discrepancies == []
    assert linked.fields["mnt_total"] == 2996301
    assert linked.fields["mnt_exe"] is None


def test_xml_values_override_a_pdf_that_says_otherwise() -> None:
    rng = random.Random(12)
    data = random_invoice(rng, 33)
    xml = dte_xml(data)
    # a PDF "of the same invoice" with another total and date: an edited printout
    edited = random_invoice(random.Random(12), 33)
    edited.total += 5000
    edited.fecha = edited.fecha.replace(day=1 if edited.fecha.day != 1 else 2)
    style = random_style(rng)
    result = extract(render_odd(edited, style))
    assert result.value("mnt_total") == edited.total
    linked = link_to_xml(result, [xml])
    assert linked.matched and linked.authority == "xml"
    assert linked.fields["mnt_total"] == data.total
    assert linked.fields["fch_emis"] == data.fecha.isoformat()
    assert {d.field for d in linked.discrepancies} == {"mnt_total", "fch_emis"}
    total = next(d for d in linked.discrepancies if d.field == "mnt_total")
    assert (total.extracted, total.xml) == (edited.total, data.total)


def test_no_xml_with_the_key_leaves_the_extraction_as_is(shared_sii: Path) -> None:
    xml = (shared_sii / SAMPLE).read_bytes()
    data = random_invoice(random.Random(2), 61)
    result = extract(render_pdf(dte_xml(data), PRINT_OPTIONS))
    linked = link_to_xml(result, [xml])
    assert not linked.matched and linked.authority == "extraction"
    assert linked.key == (data.emisor[0], 61, data.folio)
    assert linked.fields == {k: result.value(k) for k in linked.fields}


def test_same_folio_of_another_tipo_is_not_a_match() -> None:
    data = random_invoice(random.Random(4), 33)
    nota = random_invoice(random.Random(4), 61)
    nota.folio, nota.emisor = data.folio, data.emisor
    result = extract(render_pdf(dte_xml(data), PRINT_OPTIONS))
    assert not link_to_xml(result, [dte_xml(nota)]).matched
    assert link_to_xml(result, [dte_xml(nota), dte_xml(data)]).matched
