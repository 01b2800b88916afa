"""ReceivedInvoice from DTE XML: real SII documents, and generated invoices round-tripped."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from ai_service.context import ReceivedInvoice
from ai_service.synth import generate_company
from ai_service.synth.dte_xml import to_dte_xml
from dte_core.errors import InvalidDocumentError, XmlSecurityError


def test_reads_a_real_factura_with_an_oc_reference(shared_sii: Path) -> None:
    data = (shared_sii / "samples/sii-dte/DTE--76354771-K--33--170.xml").read_bytes()
    inv = ReceivedInvoice.from_xml(data)
    assert inv.key == "76354771-K:33:170"
    assert (inv.emisor_name, inv.emisor_giro) == (
        "INGENIERIA ENACON SPA",
        "Ingenieria y Construccion",
    )
    assert str(inv.receptor_rut) == "96790240-3"
    assert inv.fecha == date(2019, 4, 1)
    assert (inv.neto, inv.iva, inv.total, inv.exento) == (2517900, 478401, 2996301, 0)
    assert inv.tasa_iva == Decimal("19.00")
    [line] = inv.lines
    assert line.name == "Tableros electricos 3 tom"
    assert line.description and line.description.startswith("as 3p + t")
    assert (line.quantity, line.unit, line.unit_price, line.amount) == (
        Decimal("2.00"),
        "Unid",
        Decimal("1258950.00"),
        2517900,
    )
    [ref] = inv.references
    assert (ref.tipo_doc_ref, ref.folio_ref, ref.fecha_ref) == (
        "801",
        "4510083633",
        date(2019, 3, 22),
    )


def test_reads_a_real_nota_de_credito_and_a_namespaced_copy(shared_sii: Path) -> None:
    samples = shared_sii / "samples/sii-dte"
    nota = ReceivedInvoice.from_xml((samples / "DTE--96670340-7--61--110616.xml").read_bytes())
    assert nota.tipo_dte == 61
    [ref] = nota.references
    assert (ref.tipo_doc_ref, ref.folio_ref, ref.cod_ref) == ("33", "115885", 3)
    cleaned = samples / "DTE--96670340-7--61--110616--cleaned.xml"
    assert ReceivedInvoice.from_xml(cleaned.read_bytes()) == nota


def test_hostile_and_broken_xml_is_refused(shared_sii: Path) -> None:
    with pytest.raises(XmlSecurityError):
        ReceivedInvoice.from_xml(b'<!DOCTYPE x [<!ENTITY a "b">]><DTE>&a;</DTE>')
    with pytest.raises(InvalidDocumentError) as info:
        ReceivedInvoice.from_xml(b"<DTE><Documento><Encabezado/></Documento></DTE>")
    fields = {f.field for f in info.value.fields}
    assert {"Encabezado/IdDoc/Folio", "Encabezado/Emisor/RUTEmisor", "Detalle"} <= fields
    with pytest.raises(InvalidDocumentError):
        ReceivedInvoice.from_xml(b"<Signature/>")


def test_generated_invoices_round_trip_through_sii_xml() -> None:
    company = generate_company("construction", 5, n_invoices=80)
    kinds = set()
    for doc in company.documents:
        xml = to_dte_xml(doc.invoice, receptor_name=company.context.company_name)
        assert xml.startswith(b"<?xml version='1.0' encoding='ISO-8859-1'?>")
        assert ReceivedInvoice.from_xml(xml) == doc.invoice
        kinds.add(doc.invoice.tipo_dte)
    assert {33, 34} <= kinds


def test_reads_every_document_of_an_envio_dte() -> None:
    company = generate_company("restaurant", 6, n_invoices=30)
    invoices = [d.invoice for d in company.documents[:3]]
    bodies = b"".join(
        to_dte_xml(inv).split(b"?>", 1)[1] for inv in invoices
    )  # drop each XML declaration
    envio = (
        b'<?xml version="1.0" encoding="ISO-8859-1"?>'
        b'<EnvioDTE xmlns="http://www.sii.cl/SiiDte" version="1.0"><SetDTE ID="SetDoc">'
        + bodies
        + b"</SetDTE></EnvioDTE>"
    )
    assert ReceivedInvoice.all_from_xml(envio) == invoices
    with pytest.raises(InvalidDocumentError):
        ReceivedInvoice.all_from_xml(b"<EnvioDTE/>")
