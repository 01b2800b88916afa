"""A generated invoice as DTE XML with the SII's element names and order (DTE_v10.xsd), unsigned
and without TED: enough for the ingestion path, which reads it with the hardened parser."""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from ai_service.context.models import ReceivedInvoice
from dte_core.xmlsafe import SII_NS


def _add(parent: etree._Element, tag: str, value: object) -> None:
    if value is None or value == "":
        return
    el = etree.SubElement(parent, f"{{{SII_NS}}}{tag}")
    el.text = _text(value)


def _text(value: object) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    return str(value)


def to_dte_xml(
    invoice: ReceivedInvoice, receptor_name: str = "RECEPTOR", receptor_giro: str = "GIRO"
) -> bytes:
    q = f"{{{SII_NS}}}"
    dte = etree.Element(q + "DTE", version="1.0", nsmap={None: SII_NS})  # type: ignore[dict-item]
    doc = etree.SubElement(dte, q + "Documento", ID=f"DTE-{invoice.tipo_dte}-{invoice.folio}")
    enc = etree.SubElement(doc, q + "Encabezado")
    id_doc = etree.SubElement(enc, q + "IdDoc")
    _add(id_doc, "TipoDTE", invoice.tipo_dte)
    _add(id_doc, "Folio", invoice.folio)
    _add(id_doc, "FchEmis", invoice.fecha.isoformat())
    emisor = etree.SubElement(enc, q + "Emisor")
    _add(emisor, "RUTEmisor", invoice.emisor_rut)
    _add(emisor, "RznSoc", invoice.emisor_name)
    _add(emisor, "GiroEmis", invoice.emisor_giro)
    receptor = etree.SubElement(enc, q + "Receptor")
    _add(receptor, "RUTRecep", invoice.receptor_rut)
    _add(receptor, "RznSocRecep", receptor_name)
    _add(receptor, "GiroRecep", receptor_giro)
    if invoice.delivery_address or invoice.delivery_comuna:
        transporte = etree.SubElement(enc, q + "Transporte")
        _add(transporte, "DirDest", invoice.delivery_address)
        _add(transporte, "CmnaDest", invoice.delivery_comuna)
    totales = etree.SubElement(enc, q + "Totales")
    _add(totales, "MntNeto", invoice.neto or None)
    _add(totales, "MntExe", invoice.exento or None)
    _add(totales, "TasaIVA", invoice.tasa_iva)
    _add(totales, "IVA", invoice.iva if invoice.neto else None)
    _add(totales, "MntTotal", invoice.total)
    for line in invoice.lines:
        det = etree.SubElement(doc, q + "Detalle")
        _add(det, "NroLinDet", line.line_no)
        if invoice.exento and not invoice.neto:  # exempt lines (facturas exentas, their notas)
            _add(det, "IndExe", 1)
        _add(det, "NmbItem", line.name)
        _add(det, "DscItem", line.description)
        _add(det, "QtyItem", line.quantity)
        _add(det, "UnmdItem", line.unit)
        _add(det, "PrcItem", line.unit_price)
        _add(det, "MontoItem", line.amount)
    for ref in invoice.references:
        el = etree.SubElement(doc, q + "Referencia")
        _add(el, "NroLinRef", ref.line_no)
        _add(el, "TpoDocRef", ref.tipo_doc_ref)
        _add(el, "FolioRef", ref.folio_ref)
        _add(el, "FchRef", ref.fecha_ref.isoformat() if ref.fecha_ref else None)
        _add(el, "CodRef", ref.cod_ref)
        _add(el, "RazonRef", ref.razon_ref)
    xml = etree.tostring(dte, encoding="ISO-8859-1", xml_declaration=True)
    assert isinstance(xml, bytes)  # an encoding was given, so lxml returns bytes
    return xml
