"""Document models: SII element names, schema limits, per-tipo rules, every error at once."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from dte_core import totals, xsd
from dte_core.errors import InvalidDocumentError
from dte_core.models import parse_documento, parse_envio_request
from dte_core.xmlbuild import documento_element, format_value
from tests.issuing_kit import ALL_TYPES, envio_request, factura


def _fields(data: Any, **kw: Any) -> dict[str, str]:
    with pytest.raises(InvalidDocumentError) as info:
        parse_documento(data, **kw)
    return {f.field: f.code for f in info.value.fields}


@pytest.mark.parametrize("tipo", ALL_TYPES)
def test_every_type_parses(tipo: int) -> None:
    doc = parse_documento(factura(tipo))
    assert doc.tipo == tipo
    assert str(doc.Encabezado.Emisor.RUTEmisor) == "76086428-5"


def test_rut_is_canonicalised() -> None:
    data = factura(33)
    data["Encabezado"]["Receptor"]["RUTRecep"] = "77.777.777-7"
    assert str(parse_documento(data).Encabezado.Receptor.RUTRecep) == "77777777-7"


def test_all_errors_are_listed_with_paths() -> None:
    data = factura(33)
    data["Encabezado"]["Receptor"]["RUTRecep"] = "77777777-8"
    data["Detalle"][1]["QtyItem"] = "muchos"
    data["Detalle"][2]["NmbItem"] = "x" * 81
    fields = _fields(data, path="Documentos[3]")
    assert set(fields) == {
        "Documentos[3].Encabezado.Receptor.RUTRecep",
        "Documentos[3].Detalle[1].QtyItem",
        "Documentos[3].Detalle[2].NmbItem",
    }


def test_misspelt_element_is_an_error_not_ignored() -> None:
    data = factura(33)
    data["Detalle"][0]["PrecioItem"] = 10
    assert _fields(data) == {"Detalle[0].PrecioItem": "extra_forbidden"}


@pytest.mark.parametrize("tipo", [56, 61])
def test_notas_need_a_reference(tipo: int) -> None:
    data = factura(tipo)
    del data["Referencia"]
    assert _fields(data) == {"Referencia": "required"}


def test_nota_reference_needs_codref() -> None:
    data = factura(61)
    del data["Referencia"][0]["CodRef"]
    assert _fields(data) == {"Referencia[0].CodRef": "required"}


def test_codref_2_corrects_text_only() -> None:
    data = factura(61)
    data["Referencia"][0]["CodRef"] = 2
    assert "Detalle[0].MontoItem" in _fields(data)
    data["Detalle"] = [{"NmbItem": "Donde dice Juan debe decir Juana", "MontoItem": 0}]
    assert parse_documento(data).Referencia[0].cod_ref == 2


def test_codref_outside_1_to_3_is_refused_for_facturas() -> None:
    data = factura(61)
    data["Referencia"][0]["CodRef"] = 7
    assert _fields(data) == {"Referencia[0].CodRef": "invalid"}


def test_facturas_carry_at_most_60_lines_boletas_1000() -> None:
    line = {"NmbItem": "Item", "QtyItem": 1, "PrcItem": 100}
    data = factura(33)
    data["Detalle"] = [dict(line) for _ in range(61)]
    assert _fields(data) == {"Detalle": "too_many"}
    boleta = factura(39)
    boleta["Detalle"] = [dict(line) for _ in range(1000)]
    assert len(parse_documento(boleta).Detalle) == 1000
    boleta["Detalle"].append(dict(line))
    assert _fields(boleta) == {"Detalle": "too_long"}


def test_boletas_use_their_own_element_names() -> None:
    data = factura(39)
    data["Encabezado"]["Emisor"]["RznSoc"] = "Empresa"
    data["Encabezado"]["Receptor"]["GiroRecep"] = "Comercio"
    del data["Encabezado"]["IdDoc"]["IndServicio"]
    assert _fields(data) == {
        "Encabezado.Emisor.RznSoc": "not_allowed",
        "Encabezado.Receptor.GiroRecep": "not_allowed",
        "Encabezado.IdDoc.IndServicio": "required",
    }


def test_facturas_need_giro_acteco_and_receptor_name() -> None:
    data = factura(33)
    del data["Encabezado"]["Emisor"]["GiroEmis"]
    del data["Encabezado"]["Emisor"]["Acteco"]
    del data["Encabezado"]["Receptor"]["RznSocRecep"]
    assert _fields(data) == {
        "Encabezado.Emisor.GiroEmis": "required",
        "Encabezado.Emisor.Acteco": "required",
        "Encabezado.Receptor.RznSocRecep": "required",
    }


def test_guia_needs_indtraslado_and_only_guias_have_it() -> None:
    guia = factura(52)
    del guia["Encabezado"]["IdDoc"]["IndTraslado"]
    assert _fields(guia) == {"Encabezado.IdDoc.IndTraslado": "required"}
    data = factura(33)
    data["Encabezado"]["IdDoc"]["IndTraslado"] = 1
    assert _fields(data) == {"Encabezado.IdDoc.IndTraslado": "not_allowed"}


def test_exenta_with_iva_is_refused() -> None:
    data = factura(34)
    data["Encabezado"]["Totales"] = {"MntExe": 100000, "IVA": 19000, "MntTotal": 119000}
    assert _fields(data) == {"Encabezado.Totales.IVA": "not_allowed"}


def test_envio_request_reports_caratula_and_every_document() -> None:
    request = envio_request(factura(33), factura(33))
    request["Caratula"]["RutEnvia"] = "1-1"
    request["Documentos"][1]["Detalle"] = []
    with pytest.raises(InvalidDocumentError) as info:
        parse_envio_request(request)
    fields = {f.field for f in info.value.fields}
    assert fields == {"Caratula.RutEnvia", "Documentos[1].Detalle"}


@pytest.mark.parametrize("tipo", [t for t in ALL_TYPES if t not in (39, 41)])
def test_built_documento_is_schema_ordered(tipo: int) -> None:
    """Every element the model emits stands where DTE_v10.xsd wants it."""
    doc = totals.complete(parse_documento(factura(tipo)))
    doc = doc.model_copy(
        update={
            "Encabezado": doc.Encabezado.model_copy(
                update={"IdDoc": doc.Encabezado.IdDoc.model_copy(update={"Folio": 7})}
            )
        }
    )
    el = documento_element(doc, doc_id=f"F7T{tipo}")
    dte = etree.Element("{http://www.sii.cl/SiiDte}DTE", version="1.0")
    dte.append(el)
    findings = xsd.validate(dte)
    # the only findings: the stamp and the signature that are added after building
    assert len(findings) == 2, findings
    assert "Documento': Missing child element(s)" in findings[0].message  # TED, at the end
    assert not any("not expected" in f.message for f in findings)
    assert "Signature" in findings[1].message


def test_decimal_lexical_form() -> None:
    from decimal import Decimal

    assert format_value(Decimal("4500.000")) == "4500"
    assert format_value(Decimal("0.5")) == "0.5"
    assert format_value(Decimal("1E+3")) == "1000"
