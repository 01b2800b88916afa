"""The totals engine: MontoItem per line, global discounts and surcharges, IVA, MntTotal.

Rules from the SII format manual (DTE v2.2, Detalle and Totales; boletas v4.1):
- ``MontoItem = round(QtyItem x PrcItem) - DescuentoMonto + RecargoMonto`` (QtyItem 1 when
  absent); a percentage discount/surcharge is ``round(QtyItem x PrcItem x pct / 100)``.
- Integer pesos, rounded half up (the SII's "aproximación a la unidad").
- ``DscRcgGlobal`` applies to the sum of the lines of its kind: affected lines by default, exempt
  ones with ``IndExeDR=1``, non-billable ones with ``IndExeDR=2``; a % applies to that sum.
- ``IVA = round(MntNeto x 19%)``; with gross prices (boletas without ``IndMntNeto=2``, facturas
  with ``MntBruto=1``) the net is ``round(gross / 1.19)`` and the IVA is what remains, so the
  total is exactly what the customer saw.
- ``MntTotal = MntNeto + MntExe + IVA + GrntDep``; ``MontoNF`` is informative only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from dte_core.codes import BOLETA_TIPOS, EXENTA_TIPOS, TASA_IVA, IndExe, IndExeDR, TpoMov, TpoValor
from dte_core.errors import FieldError, InvalidDocumentError
from dte_core.models import Detalle, Documento, DscRcgGlobal, Totales

_HUNDRED = Decimal(100)
_IVA_FACTOR = 1 + TASA_IVA / _HUNDRED


def round_pesos(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class _Buckets:
    afecto: int = 0
    exento: int = 0
    no_facturable: int = 0
    garantia: int = 0

    def add(self, kind: IndExeDR | str, amount: int) -> None:
        if kind == IndExeDR.EXENTO:
            self.exento += amount
        elif kind == IndExeDR.NO_FACTURABLE:
            self.no_facturable += amount
        else:
            self.afecto += amount

    def of(self, kind: IndExeDR | None) -> int:
        if kind == IndExeDR.EXENTO:
            return self.exento
        if kind == IndExeDR.NO_FACTURABLE:
            return self.no_facturable
        return self.afecto


def _line(i: int, line: Detalle, errors: list[FieldError]) -> Detalle:
    """The line with NroLinDet, DescuentoMonto/RecargoMonto and MontoItem filled in."""
    at = f"Detalle[{i}]"
    update: dict[str, object] = {"NroLinDet": line.NroLinDet or i + 1}
    if line.PrcItem is None:
        if line.MontoItem is None:
            errors.append(FieldError(f"{at}.MontoItem", "required", "give PrcItem or MontoItem"))
        return line.model_copy(update=update)
    base = line.PrcItem * (line.QtyItem if line.QtyItem is not None else Decimal(1))
    adjust: dict[str, int] = {}
    for kind in ("Descuento", "Recargo"):
        pct: Decimal | None = getattr(line, f"{kind}Pct")
        given: int | None = getattr(line, f"{kind}Monto")
        amount = given
        if pct is not None:
            amount = round_pesos(base * pct / _HUNDRED)
            if given is not None and given != amount:
                errors.append(
                    FieldError(
                        f"{at}.{kind}Monto",
                        "inconsistent",
                        f"{kind}Pct {pct}% of {round_pesos(base)} is {amount}, not {given}",
                    )
                )
            update[f"{kind}Monto"] = amount
        adjust[kind] = amount or 0
    monto = round_pesos(base) - adjust["Descuento"] + adjust["Recargo"]
    if monto < 0:
        errors.append(FieldError(f"{at}.DescuentoMonto", "too_large", "the line goes negative"))
        return line.model_copy(update=update)
    if line.MontoItem is not None and line.MontoItem != monto:
        errors.append(
            FieldError(
                f"{at}.MontoItem",
                "inconsistent",
                f"QtyItem x PrcItem - discount + surcharge is {monto}, not {line.MontoItem}",
            )
        )
    update["MontoItem"] = monto
    return line.model_copy(update=update)


def _bucket_lines(doc: Documento, lines: list[Detalle], errors: list[FieldError]) -> _Buckets:
    buckets = _Buckets()
    exenta = doc.tipo in EXENTA_TIPOS
    for i, line in enumerate(lines):
        amount = line.MontoItem or 0
        ind = line.IndExe
        if ind is None:
            buckets.add(IndExeDR.EXENTO if exenta else "afecto", amount)
        elif ind == IndExe.EXENTO:
            buckets.exento += amount
        elif ind == IndExe.NO_FACTURABLE:
            buckets.no_facturable += amount
        elif ind == IndExe.NO_FACTURABLE_NEGATIVO:
            buckets.no_facturable -= amount
        elif ind == IndExe.GARANTIA_ENVASES:
            buckets.garantia += amount
        elif amount:  # NO_VENTA, A_REBAJAR
            errors.append(
                FieldError(f"Detalle[{i}].MontoItem", "must_be_zero", f"IndExe {int(ind)} lines")
            )
    if exenta and buckets.afecto:
        errors.append(FieldError("Detalle", "not_exempt", f"tipo {doc.tipo} is exempt"))
    return buckets


def _global(
    buckets: _Buckets, items: list[DscRcgGlobal], errors: list[FieldError]
) -> list[DscRcgGlobal]:
    lines_only = _Buckets(buckets.afecto, buckets.exento, buckets.no_facturable)
    done = []
    for i, dr in enumerate(items):
        base = lines_only.of(dr.IndExeDR)
        value = (
            round_pesos(Decimal(base) * dr.ValorDR / _HUNDRED)
            if dr.TpoValor == TpoValor.PORCENTAJE
            else round_pesos(dr.ValorDR)
        )
        sign = -1 if dr.TpoMov == TpoMov.DESCUENTO else 1
        buckets.add(dr.IndExeDR or "afecto", sign * value)
        if buckets.of(dr.IndExeDR) < 0:
            errors.append(FieldError(f"DscRcgGlobal[{i}].ValorDR", "too_large", "goes negative"))
        done.append(dr.model_copy(update={"NroLinDR": dr.NroLinDR or i + 1}))
    return done


def compute(doc: Documento) -> tuple[Documento, Totales, list[FieldError]]:
    """The document with computed line amounts, its computed Totales, and the errors found."""
    errors: list[FieldError] = []
    lines = [_line(i, line, errors) for i, line in enumerate(doc.Detalle)]
    buckets = _bucket_lines(doc, lines, errors)
    globales = _global(buckets, list(doc.DscRcgGlobal), errors)
    idd = doc.Encabezado.IdDoc
    boleta = doc.tipo in BOLETA_TIPOS
    gross = (boleta and idd.IndMntNeto is None) or (not boleta and idd.MntBruto == 1)
    afecto = max(buckets.afecto, 0)
    if gross:
        neto = round_pesos(Decimal(afecto) / _IVA_FACTOR)
        iva = afecto - neto
    else:
        neto = afecto
        iva = round_pesos(Decimal(neto) * TASA_IVA / _HUNDRED)
    total = neto + buckets.exento + iva + buckets.garantia
    totales = Totales(
        MntNeto=neto if afecto else None,
        MntExe=buckets.exento if buckets.exento else None,
        TasaIVA=TASA_IVA if afecto and not boleta else None,
        IVA=iva if afecto else None,
        GrntDep=buckets.garantia or None,
        MntTotal=total,
        MontoNF=buckets.no_facturable or None,
    )
    refs = [
        r.model_copy(update={"NroLinRef": r.NroLinRef or i + 1})
        for i, r in enumerate(doc.Referencia)
    ]
    done = doc.model_copy(update={"Detalle": lines, "DscRcgGlobal": globales, "Referencia": refs})
    return done, totales, errors


def _compare(given: Totales, computed: Totales) -> list[FieldError]:
    errors = []
    for name in Totales.model_fields:
        value = getattr(given, name)
        if value is None:
            continue
        expected = getattr(computed, name)
        if Decimal(value) != Decimal(expected or 0):
            errors.append(
                FieldError(
                    f"Encabezado.Totales.{name}",
                    "inconsistent",
                    f"the lines give {name} = {expected or 0}, not {value}",
                )
            )
    return errors


def complete(doc: Documento) -> Documento:
    """Fill in every computed amount; given amounts must agree, field by field."""
    done, computed, errors = compute(doc)
    given = doc.Encabezado.Totales
    if given is not None:
        errors += _compare(given, computed)
        computed = computed.model_copy(
            update={
                n: getattr(given, n)
                for n in ("SaldoAnterior", "VlrPagar")
                if getattr(given, n) is not None
            }
        )
    if errors:
        raise InvalidDocumentError("the amounts do not add up", fields=errors)
    enc = done.Encabezado.model_copy(update={"Totales": computed})
    return done.model_copy(update={"Encabezado": enc})
