"""Validation rules on amounts: exempt and affected tipos, IVA, totals, line arithmetic,
negative amounts and discounts.

Arithmetic follows :mod:`dte_core.totals` (the SII manual's Detalle and Totales fields):
integer pesos rounded half up, ``IVA = MntNeto x 19%``,
``MntTotal = MntNeto + MntExe + IVA + GrntDep``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ai_service.usecases.validation import Hit, rule
from ai_service.usecases.validation_context import Facts, as_dec, as_int
from ai_service.usecases.validation_references import modifying_refs
from dte_core.codes import (
    BOLETA_TIPOS,
    EXENTA_TIPOS,
    RUT_CONSUMIDOR_FINAL,
    TASA_IVA,
    CodRef,
)
from dte_core.totals import round_pesos

_HUNDRED = Decimal(100)
#: Tipos whose total is a sale: it must be positive (guías may move goods at no price).
BILLING_TIPOS = frozenset({33, 34, 39, 41, 46, 56, 61})
#: Ley 21.713: a boleta over 135 UF names its receptor.
BOLETA_UF_LIMIT = Decimal(135)
_TOTAL_FIELDS = ("MntNeto", "MntExe", "IVA", "GrntDep", "MntTotal", "MontoNF")


def _gross(f: Facts) -> bool:
    """Prices include IVA: boletas without IndMntNeto, facturas with MntBruto=1."""
    if f.tipo in BOLETA_TIPOS:
        return as_int(f.iddoc.get("IndMntNeto")) != 2
    return as_int(f.iddoc.get("MntBruto")) == 1


# --------------------------------------------------------------------------------- amounts


@rule("EXENTA_WITH_IVA", "error", "exempt tipos (34, 41) carry no MntNeto, TasaIVA or IVA")
def _exenta_iva(f: Facts) -> Iterable[Hit]:
    if f.tipo not in EXENTA_TIPOS:
        return
    for name in ("MntNeto", "TasaIVA", "IVA"):
        value = as_dec(f.totales.get(name))
        if value:
            yield Hit(
                f"Encabezado.Totales.{name}",
                f"tipo {f.tipo} is exempt but carries {name} {value}",
                f"remove {name}; if the sale bears IVA issue a {33 if f.tipo == 34 else 39}",
            )


@rule("AFECTA_WITHOUT_IVA", "warning", "a factura afecta (33) has affected lines")
def _afecta_sin_iva(f: Facts) -> Iterable[Hit]:
    if f.tipo != 33:
        return
    computed = f.computed
    neto = f.given_total("MntNeto")
    if neto is None and computed is not None:
        neto = computed[0].MntNeto
    exe = f.given_total("MntExe")
    if exe is None and computed is not None:
        exe = computed[0].MntExe
    if not neto and exe:
        yield Hit(
            "Encabezado.Totales.MntNeto",
            "a factura afecta (33) with MntNeto 0 and only exempt lines",
            "issue a factura exenta (34), or remove IndExe from the lines that bear IVA",
        )
    iva = f.given_total("IVA")
    if neto and iva == 0:
        yield Hit(
            "Encabezado.Totales.IVA",
            f"a factura afecta (33) with MntNeto {neto} and IVA 0",
            "charge the 19% IVA (omit IVA to have it computed), or issue a factura exenta (34)",
            "error",
        )


@rule("TASA_IVA_INVALID", "error", "TasaIVA is 19")
def _tasa(f: Facts) -> Iterable[Hit]:
    tasa = as_dec(f.totales.get("TasaIVA"))
    if tasa is not None and tasa != TASA_IVA and f.tipo not in EXENTA_TIPOS:
        yield Hit(
            "Encabezado.Totales.TasaIVA",
            f"TasaIVA {tasa} is not the IVA rate ({TASA_IVA})",
            "set TasaIVA 19, or omit it to have it filled in",
        )


@rule("IVA_ARITHMETIC", "error", "IVA = MntNeto x 19%")
def _iva(f: Facts) -> Iterable[Hit]:
    neto, iva = f.given_total("MntNeto"), f.given_total("IVA")
    if neto is None or iva is None or f.tipo in EXENTA_TIPOS:
        return
    expected = round_pesos(Decimal(neto) * TASA_IVA / _HUNDRED)
    # Gross prices split the total, so the IVA may differ by a peso from neto x 19%.
    if abs(iva - expected) > (1 if _gross(f) else 0):
        yield Hit(
            "Encabezado.Totales.IVA",
            f"IVA {iva} is not 19% of MntNeto {neto} ({expected})",
            f"set IVA {expected}, or omit it to have it computed",
        )


@rule("TOTAL_ARITHMETIC", "error", "MntTotal = MntNeto + MntExe + IVA + GrntDep")
def _total(f: Facts) -> Iterable[Hit]:
    total = f.given_total("MntTotal")
    parts = ("MntNeto", "MntExe", "IVA", "GrntDep")
    if total is None or all(f.given_total(p) is None for p in parts):
        return
    computed = f.computed[0] if f.computed is not None else None
    values = {}
    for p in parts:
        given = f.given_total(p)
        values[p] = given if given is not None else (getattr(computed, p, None) or 0)
    expected = sum(values.values())
    if expected != total:
        shown = " + ".join(f"{p} {v}" for p, v in values.items() if v)
        yield Hit(
            "Encabezado.Totales.MntTotal",
            f"MntTotal {total} is not {shown or '0'} = {expected}",
            f"set MntTotal {expected}, or omit it to have it computed",
        )


@rule("TOTALS_LINES_MISMATCH", "error", "the given Totales are what the lines add up to")
def _totals_lines(f: Facts) -> Iterable[Hit]:
    if f.computed is None:
        return
    computed = f.computed[0]
    for name in _TOTAL_FIELDS:
        given = f.given_total(name)
        expected = getattr(computed, name) or 0
        if given is not None and given != expected:
            yield Hit(
                f"Encabezado.Totales.{name}",
                f"the lines give {name} {expected}, not {given}",
                f"set {name} {expected} (or omit Totales to have them computed)",
            )


@dataclass(frozen=True)
class _LineAmounts:
    base: int  # round(QtyItem x PrcItem)
    descuento: int
    recargo: int

    @property
    def monto(self) -> int:
        return self.base - self.descuento + self.recargo


def _line_amounts(line: Any) -> tuple[_LineAmounts, list[tuple[str, int, int]]] | None:
    """Amounts of a typed line and the (field, given, expected) disagreements in it."""
    if line is None or line.PrcItem is None:
        return None
    qty = line.QtyItem if line.QtyItem is not None else Decimal(1)
    raw_base = line.PrcItem * qty
    wrong: list[tuple[str, int, int]] = []
    adjust = {}
    for kind in ("Descuento", "Recargo"):
        pct, given = getattr(line, f"{kind}Pct"), getattr(line, f"{kind}Monto")
        amount = given or 0
        if pct is not None:
            amount = round_pesos(raw_base * pct / _HUNDRED)
            if given is not None and given != amount:
                wrong.append((f"{kind}Monto", given, amount))
        adjust[kind] = amount
    amounts = _LineAmounts(round_pesos(raw_base), adjust["Descuento"], adjust["Recargo"])
    if line.MontoItem is not None and amounts.monto >= 0 and line.MontoItem != amounts.monto:
        wrong.append(("MontoItem", line.MontoItem, amounts.monto))
    return amounts, wrong


def _all_line_amounts(f: Facts) -> list[tuple[_LineAmounts, list[tuple[str, int, int]]] | None]:
    cached: list[Any] | None = f.memo.get("line_amounts")
    if cached is None:
        cached = f.memo["line_amounts"] = [_line_amounts(line) for line in f.lines]
    return cached


def _negative_number(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float | Decimal):
        return value < 0
    return isinstance(value, str) and value.strip().startswith("-") and as_dec(value) is not None


@rule("MONTOITEM_ARITHMETIC", "error", "MontoItem = QtyItem x PrcItem - descuento + recargo")
def _montoitem(f: Facts) -> Iterable[Hit]:
    for i, found in enumerate(_all_line_amounts(f)):
        for name, given, expected in found[1] if found else []:
            yield Hit(
                f"Detalle[{i}].{name}",
                f"line {i + 1}: {name} is {given}, the quantity, price and percentages give"
                f" {expected}",
                f"set {name} {expected}, or omit it to have it computed",
            )


@rule("TOTAL_NOT_POSITIVE", "error", "sales have a positive MntTotal")
def _total_positive(f: Facts) -> Iterable[Hit]:
    if f.tipo not in BILLING_TIPOS:
        return
    if f.is_nota and any(r.cod == CodRef.CORRIGE_TEXTO for r in modifying_refs(f)):
        return
    total = f.mnt_total()
    if total is not None and total <= 0:
        yield Hit(
            "Encabezado.Totales.MntTotal",
            f"MntTotal is {total}",
            "check quantities and prices; a document with nothing to charge is not a sale",
        )


_LINE_AMOUNTS = (
    *("QtyItem", "PrcItem", "DescuentoPct", "DescuentoMonto"),
    *("RecargoPct", "RecargoMonto", "MontoItem"),
)


@rule("NEGATIVE_AMOUNT", "error", "amounts, quantities and prices are not negative")
def _negative(f: Facts) -> Iterable[Hit]:
    fix = "enter it positive; to reduce a sale use a discount or a nota de crédito (61)"
    for i, line in enumerate(f.lines_raw):
        for name in _LINE_AMOUNTS:
            if _negative_number(line.get(name)):
                yield Hit(f"Detalle[{i}].{name}", f"line {i + 1}: {name} is {line[name]}", fix)
    for i, dr in enumerate(f.dr_raw):
        if _negative_number(dr.get("ValorDR")):
            yield Hit(f"DscRcgGlobal[{i}].ValorDR", f"ValorDR is {dr['ValorDR']}", fix)
    for name in ("MntNeto", "MntExe", "IVA", "GrntDep", "MntTotal"):
        if _negative_number(f.totales.get(name)):
            yield Hit(f"Encabezado.Totales.{name}", f"{name} is {f.totales[name]}", fix)


@rule("DISCOUNT_OVER_100", "error", "discounts do not exceed 100% or what they discount")
def _discount(f: Facts) -> Iterable[Hit]:
    for i, line in enumerate(f.lines_raw):
        pct = as_dec(line.get("DescuentoPct"))
        if pct is not None and pct > _HUNDRED:
            yield Hit(
                f"Detalle[{i}].DescuentoPct", f"line {i + 1}: a {pct}% discount", "at most 100"
            )
    for i, found in enumerate(_all_line_amounts(f)):
        if found and found[0].descuento > found[0].base + found[0].recargo:
            yield Hit(
                f"Detalle[{i}].DescuentoMonto",
                f"line {i + 1}: discount {found[0].descuento} exceeds the line ({found[0].base})",
                "lower the discount; a line cannot go negative",
            )
    for i, dr in enumerate(f.dr_raw):
        value = as_dec(dr.get("ValorDR"))
        if dr.get("TpoValor") == "%" and dr.get("TpoMov") == "D" and value and value > 100:
            yield Hit(f"DscRcgGlobal[{i}].ValorDR", f"a global {value}% discount", "at most 100")
    for err in f.computed[1] if f.computed is not None else []:
        if err.code == "too_large" and err.field.startswith("DscRcgGlobal"):
            yield Hit(err.field, "the global discount exceeds the lines it applies to", "lower it")


@rule("BOLETA_RECEPTOR_135UF", "error", "boletas over 135 UF name the receptor (Ley 21.713)")
def _boleta_uf(f: Facts) -> Iterable[Hit]:
    uf = f.policy.uf_clp
    total = f.mnt_total()
    if not f.is_boleta or uf is None or total is None or total <= BOLETA_UF_LIMIT * uf:
        return
    if f.rut_receptor is None or str(f.rut_receptor) == RUT_CONSUMIDOR_FINAL:
        yield Hit(
            "Encabezado.Receptor.RUTRecep",
            f"a boleta of {total} pesos (over 135 UF) must name its receptor",
            "ask for the customer's RUT and put it in RUTRecep",
        )
