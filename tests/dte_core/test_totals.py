"""The totals engine against hand-computed SII examples."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from dte_core import totals
from dte_core.errors import InvalidDocumentError
from dte_core.models import parse_documento
from tests.issuing_kit import factura


def _doc(tipo: int = 33, lines: list[dict[str, Any]] | None = None, **extra: Any) -> Any:
    data = factura(tipo)
    if lines is not None:
        data["Detalle"] = lines
    data.update(extra)
    return totals.complete(parse_documento(data))


def test_the_sii_example_adds_up() -> None:
    doc = _doc()
    t = doc.Encabezado.Totales
    assert [d.MontoItem for d in doc.Detalle] == [90000, 5000, 5000]
    assert [d.NroLinDet for d in doc.Detalle] == [1, 2, 3]
    assert (t.MntNeto, t.TasaIVA, t.IVA, t.MntTotal) == (100000, Decimal(19), 19000, 119000)
    assert t.MntExe is None


def test_iva_rounds_half_up_to_whole_pesos() -> None:
    # 19% of 1 234 = 234.46 -> 234; of 1 250 = 237.5 -> 238
    assert (
        _doc(lines=[{"NmbItem": "a", "QtyItem": 1, "PrcItem": 1234}]).Encabezado.Totales.IVA == 234
    )
    assert (
        _doc(lines=[{"NmbItem": "a", "QtyItem": 1, "PrcItem": 1250}]).Encabezado.Totales.IVA == 238
    )


def test_fractional_quantity_and_price_round_the_line() -> None:
    doc = _doc(lines=[{"NmbItem": "Cable", "QtyItem": "2.5", "PrcItem": "333.3"}])
    assert doc.Detalle[0].MontoItem == 833  # 833.25


def test_line_percentage_discount_and_surcharge() -> None:
    doc = _doc(
        lines=[
            {"NmbItem": "a", "QtyItem": 3, "PrcItem": 1000, "DescuentoPct": 10},
            {"NmbItem": "b", "QtyItem": 1, "PrcItem": 2000, "RecargoMonto": 150},
        ]
    )
    assert [(d.DescuentoMonto, d.MontoItem) for d in doc.Detalle] == [(300, 2700), (None, 2150)]
    assert doc.Encabezado.Totales.MntNeto == 4850


def test_global_discount_applies_to_affected_lines_only() -> None:
    doc = _doc(
        lines=[
            {"NmbItem": "afecto", "QtyItem": 1, "PrcItem": 10000},
            {"NmbItem": "exento", "QtyItem": 1, "PrcItem": 5000, "IndExe": 1},
        ],
        DscRcgGlobal=[{"TpoMov": "D", "TpoValor": "%", "ValorDR": 10}],
    )
    t = doc.Encabezado.Totales
    assert (t.MntNeto, t.MntExe, t.IVA, t.MntTotal) == (9000, 5000, 1710, 15710)
    assert doc.DscRcgGlobal[0].NroLinDR == 1


def test_global_surcharge_in_pesos_on_exempt_lines() -> None:
    doc = _doc(
        lines=[
            {"NmbItem": "afecto", "QtyItem": 1, "PrcItem": 10000},
            {"NmbItem": "exento", "QtyItem": 1, "PrcItem": 5000, "IndExe": 1},
        ],
        DscRcgGlobal=[{"TpoMov": "R", "TpoValor": "$", "ValorDR": 500, "IndExeDR": 1}],
    )
    assert doc.Encabezado.Totales.MntExe == 5500
    assert doc.Encabezado.Totales.MntNeto == 10000


def test_exenta_carries_only_mntexe() -> None:
    t = _doc(34).Encabezado.Totales
    assert (t.MntNeto, t.TasaIVA, t.IVA, t.MntExe, t.MntTotal) == (None, None, None, 100000, 100000)


def test_boleta_prices_include_iva() -> None:
    t = _doc(39, lines=[{"NmbItem": "Cafe", "QtyItem": 2, "PrcItem": 1190}]).Encabezado.Totales
    assert (t.MntNeto, t.IVA, t.MntTotal, t.TasaIVA) == (2000, 380, 2380, None)


def test_boleta_with_net_amounts() -> None:
    data = factura(39)
    data["Encabezado"]["IdDoc"]["IndMntNeto"] = 2
    data["Detalle"] = [{"NmbItem": "Cafe", "QtyItem": 2, "PrcItem": 1000}]
    t = totals.complete(parse_documento(data)).Encabezado.Totales
    assert (t.MntNeto, t.IVA, t.MntTotal) == (2000, 380, 2380)


def test_non_billable_lines_go_to_montonf_not_the_total() -> None:
    doc = _doc(
        lines=[
            {"NmbItem": "venta", "QtyItem": 1, "PrcItem": 1000},
            {"NmbItem": "despacho gratis", "QtyItem": 1, "PrcItem": 300, "IndExe": 2},
        ]
    )
    assert doc.Encabezado.Totales.MontoNF == 300
    assert doc.Encabezado.Totales.MntTotal == 1190


def _errors(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidDocumentError) as info:
        totals.complete(parse_documento(data))
    return {f.field: f.code for f in info.value.fields}


def test_inconsistent_given_totals_are_reported_field_by_field() -> None:
    data = factura(33)
    data["Encabezado"]["Totales"] = {"MntNeto": 100000, "IVA": 19001, "MntTotal": 119002}
    assert _errors(data) == {
        "Encabezado.Totales.IVA": "inconsistent",
        "Encabezado.Totales.MntTotal": "inconsistent",
    }


def test_consistent_given_totals_are_kept() -> None:
    data = factura(33)
    data["Encabezado"]["Totales"] = {"MntNeto": 100000, "TasaIVA": 19, "MntTotal": 119000}
    assert totals.complete(parse_documento(data)).Encabezado.Totales.IVA == 19000


def test_given_line_amount_must_match_quantity_times_price() -> None:
    data = factura(33)
    data["Detalle"][0]["MontoItem"] = 90001
    assert _errors(data) == {"Detalle[0].MontoItem": "inconsistent"}


def test_discount_larger_than_the_line_is_refused() -> None:
    data = factura(33)
    data["Detalle"][1]["DescuentoMonto"] = 6000
    assert "Detalle[1].DescuentoMonto" in _errors(data)


def test_given_discount_disagreeing_with_its_percentage() -> None:
    data = factura(33)
    data["Detalle"][0].update({"DescuentoPct": 10, "DescuentoMonto": 1})
    assert _errors(data) == {"Detalle[0].DescuentoMonto": "inconsistent"}


def test_line_with_only_montoitem_counts() -> None:
    doc = _doc(lines=[{"NmbItem": "Servicio", "MontoItem": 50000}])
    assert doc.Encabezado.Totales.MntTotal == 59500
