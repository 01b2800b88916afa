"""The anomaly rules on the document itself and its supplier's history: duplicates, prices,
arithmetic (the rules on purchase orders, suppliers, approval, dates and references are in
:mod:`ai_service.usecases.anomaly_rules_context`). A rule reads the document, the company's
context and the history index and returns its alerts; none scans the whole history (look-ups by
key, by supplier and date range, by (supplier, amount), by (supplier, item)).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from ai_service.context.models import CompanyContext, ReceivedInvoice
from ai_service.usecases.anomaly_models import (
    AnomalyAlert,
    AnomalySettings,
    AnomalyType,
    ExpectedRange,
    Severity,
)
from ai_service.usecases.common import Evidence
from ai_service.usecases.invoice_history import (
    FACTURAS,
    InvoiceHistory,
    PricePoint,
    family,
    robust_range,
    unit_price,
)
from ai_service.usecases.item_similarity import normalize
from ai_service.usecases.po_matching import PurchaseOrderIndex

IVA_RATE = Decimal("0.19")
#: documents whose Totales carry IVA at the general rate
WITH_IVA = frozenset({30, 33, 45, 55, 56, 60, 61})


@dataclass(frozen=True)
class RuleInput:
    invoice: ReceivedInvoice
    context: CompanyContext
    history: InvoiceHistory
    po_index: PurchaseOrderIndex
    known_suppliers: set[str]
    settings: AnomalySettings
    received_on: date


Rule = Callable[[RuleInput], list[AnomalyAlert]]


def fmt(amount: float | Decimal | int) -> str:
    return f"{amount:,.0f}".replace(",", ".")


def ev(kind: str, detail: str, ref: str | None = None, score: float = 1.0) -> Evidence:
    return Evidence(kind=kind, ref=ref, detail=detail, score=round(score, 3))


# --- duplicates ---------------------------------------------------------------------------------


def line_signature(invoice: ReceivedInvoice) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((normalize(line.name), line.amount) for line in invoice.lines))


def folio_typo(a: int, b: int) -> str | None:
    """How folio ``b`` could be a retyped ``a``: one digit changed, two neighbours swapped, a
    digit dropped or doubled; None when it could not."""
    sa, sb = str(a), str(b)
    if sa == sb:
        return "same folio"
    if len(sa) == len(sb):
        diff = [i for i in range(len(sa)) if sa[i] != sb[i]]
        if len(diff) == 1:
            return "one digit differs"
        i, j = [*diff, 0, 0][:2]
        if len(diff) == 2 and j == i + 1 and sa[i] == sb[j] and sa[j] == sb[i]:
            return "two digits swapped"
        return None
    short, long_ = (sa, sb) if len(sa) < len(sb) else (sb, sa)
    if len(long_) - len(short) == 1:
        for i in range(len(long_)):
            if long_[:i] + long_[i + 1 :] == short:
                return "a digit dropped or doubled"
    return None


def exact_duplicate(r: RuleInput) -> list[AnomalyAlert]:
    prior = r.history.by_key.get(r.invoice.key)
    if prior is None:
        return []
    same = prior.total == r.invoice.total and line_signature(prior) == line_signature(r.invoice)
    detail = "same amounts and lines" if same else "but different amounts or lines"
    return [
        AnomalyAlert(
            type=AnomalyType.EXACT_DUPLICATE,
            severity=Severity.HIGH,
            message=(
                f"document {r.invoice.key} was already received ({detail}, dated "
                f"{prior.fecha}): a DTE is identified by emisor, tipo and folio"
            ),
            confidence=0.99,
            duplicate_of=prior.key,
            evidence=[
                ev("duplicate_of", f"booked on {prior.fecha}, total {fmt(prior.total)}", prior.key)
            ],
        )
    ]


def fuzzy_duplicate(r: RuleInput) -> list[AnomalyAlert]:
    inv = r.invoice
    window = r.settings.duplicate_window_days
    signature = line_signature(inv)
    best: tuple[float, ReceivedInvoice, list[str]] | None = None
    for prior in r.history.with_amount(str(inv.emisor_rut), inv.total):
        if prior.key == inv.key or family(prior.tipo_dte) != family(inv.tipo_dte):
            continue
        days = abs((inv.fecha - prior.fecha).days)
        if days > window:
            continue
        typo = folio_typo(prior.folio, inv.folio)
        same_lines = line_signature(prior) == signature
        if typo is None and not same_lines:
            continue
        reasons = [f"same total {fmt(inv.total)}", f"{days} day(s) apart"]
        if typo:
            reasons.append(f"folio {inv.folio} vs {prior.folio}: {typo}")
        if same_lines:
            reasons.append("same lines")
        score = 0.95 if typo and same_lines else 0.8 if typo else 0.7
        if best is None or score > best[0]:
            best = (score, prior, reasons)
    if best is None:
        return []
    score, prior, reasons = best
    return [
        AnomalyAlert(
            type=AnomalyType.FUZZY_DUPLICATE,
            severity=Severity.HIGH if score >= 0.8 else Severity.MEDIUM,
            message=(
                f"looks like a copy of {prior.key} (folio {prior.folio}, {prior.fecha}): "
                + "; ".join(reasons)
            ),
            confidence=score,
            duplicate_of=prior.key,
            evidence=[ev("duplicate_of", "; ".join(reasons), prior.key, score)],
        )
    ]


# --- prices -------------------------------------------------------------------------------------


def _price_sample(
    points: list[PricePoint], invoice: ReceivedInvoice, s: AnomalySettings
) -> list[PricePoint]:
    """The prices to judge by: those of the last ``price_max_age_days``, or the last
    ``price_min_history`` of any age when too few are that recent."""
    points = [p for p in points if p.invoice_key != invoice.key]
    fresh = [p for p in points if (invoice.fecha - p.fecha).days <= s.price_max_age_days]
    return fresh if len(fresh) >= s.price_min_history else points[-s.price_min_history :]


def price_spike(r: RuleInput) -> list[AnomalyAlert]:
    inv, s = r.invoice, r.settings
    if inv.tipo_dte not in FACTURAS:
        return []
    catalogue = r.history.catalogues.get(str(inv.emisor_rut))
    if catalogue is None:
        return []
    alerts = []
    for line in inv.lines:
        price = unit_price(line)
        item = catalogue.find(line.name)
        if price is None or price <= 0 or item is None:
            continue
        points = _price_sample(item.recent(inv.fecha, s.price_recent), inv, s)
        if len(points) < s.price_min_history:
            continue
        median, low, high = robust_range([p.price for p in points], s.price_k, s.price_min_spread)
        # prices rise with time (inflation, list changes): an old sample allows more
        years = max(0, (inv.fecha - points[len(points) // 2].fecha).days) / 365
        allowance = (1 + s.price_drift_per_year) ** years
        high *= allowance
        if float(price) <= high or float(price) < median * (1 + s.price_min_increase) * allowance:
            continue
        ratio = float(price) / median
        last = points[-1]
        alerts.append(
            AnomalyAlert(
                type=AnomalyType.PRICE_SPIKE,
                severity=Severity.HIGH if ratio >= 1.8 else Severity.MEDIUM,
                message=(
                    f"line {line.line_no} '{line.name}': unit price {fmt(price)} is "
                    f"{ratio:.2f}x the supplier's usual {fmt(median)} (expected "
                    f"{fmt(low)}-{fmt(high)} from its last {len(points)} prices)"
                ),
                confidence=round(min(0.97, 0.7 + 0.03 * len(points)), 3),
                line_no=line.line_no,
                expected=ExpectedRange(
                    field="PrcItem", low=round(low), high=round(high), actual=float(price)
                ),
                evidence=[
                    ev(
                        "price_history",
                        f"{len(points)} prices {points[0].fecha}..{last.fecha}, median "
                        f"{fmt(median)}, last {fmt(last.price)}",
                        last.invoice_key,
                    )
                ],
            )
        )
    return alerts


# --- arithmetic ---------------------------------------------------------------------------------


def _iva_of(neto: int) -> int:
    return int((Decimal(neto) * IVA_RATE).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def vat_error(r: RuleInput) -> list[AnomalyAlert]:
    inv, tol = r.invoice, r.settings.rounding_clp
    if inv.tipo_dte == 34 and inv.iva:
        expected, why = 0, "a factura exenta carries no IVA"
    elif inv.tipo_dte in WITH_IVA and inv.neto > 0:
        expected, why = _iva_of(inv.neto), f"19% of MntNeto {fmt(inv.neto)}"
        if abs(inv.iva - expected) <= tol:
            return []
    else:
        return []
    rate = f" (TasaIVA says {inv.tasa_iva})" if inv.tasa_iva not in (None, Decimal(19)) else ""
    return [
        AnomalyAlert(
            type=AnomalyType.VAT_ERROR,
            severity=Severity.HIGH,
            message=f"IVA {fmt(inv.iva)} but {why} is {fmt(expected)}{rate}",
            confidence=0.99,
            expected=ExpectedRange(field="IVA", low=expected, high=expected, actual=inv.iva),
            evidence=[
                ev("arithmetic", f"IVA {inv.iva} - expected {expected} = {inv.iva - expected}")
            ],
        )
    ]


def total_mismatch(r: RuleInput) -> list[AnomalyAlert]:
    inv, tol = r.invoice, r.settings.rounding_clp
    alerts = []
    expected = inv.neto + inv.exento + inv.iva
    if abs(inv.total - expected) > tol:
        alerts.append(
            AnomalyAlert(
                type=AnomalyType.TOTAL_MISMATCH,
                severity=Severity.HIGH,
                message=(
                    f"MntTotal {fmt(inv.total)} but MntNeto + MntExe + IVA is {fmt(expected)} "
                    f"(difference {fmt(inv.total - expected)})"
                ),
                confidence=0.99,
                expected=ExpectedRange(
                    field="MntTotal", low=expected, high=expected, actual=inv.total
                ),
                evidence=[ev("arithmetic", f"{inv.neto} + {inv.exento} + {inv.iva} = {expected}")],
            )
        )
    lines_sum = sum(line.amount for line in inv.lines)
    if inv.neto + inv.exento and abs(lines_sum - (inv.neto + inv.exento)) > tol * len(inv.lines):
        alerts.append(
            AnomalyAlert(
                type=AnomalyType.TOTAL_MISMATCH,
                severity=Severity.MEDIUM,
                message=(
                    f"the lines add up to {fmt(lines_sum)} but MntNeto + MntExe is "
                    f"{fmt(inv.neto + inv.exento)} (a global discount would explain it)"
                ),
                confidence=0.85,
                expected=ExpectedRange(
                    field="MntNeto+MntExe",
                    low=lines_sum,
                    high=lines_sum,
                    actual=inv.neto + inv.exento,
                ),
                evidence=[ev("arithmetic", f"sum of {len(inv.lines)} MontoItem = {lines_sum}")],
            )
        )
    for line in inv.lines:
        if line.quantity is None or line.unit_price is None:
            continue
        product = int(
            (line.quantity * line.unit_price).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        )
        if abs(product - line.amount) > max(tol, abs(line.amount) // 1000):
            alerts.append(
                AnomalyAlert(
                    type=AnomalyType.TOTAL_MISMATCH,
                    severity=Severity.MEDIUM,
                    message=(
                        f"line {line.line_no}: {line.quantity} x {fmt(line.unit_price)} = "
                        f"{fmt(product)} but MontoItem is {fmt(line.amount)}"
                    ),
                    confidence=0.8,
                    line_no=line.line_no,
                    expected=ExpectedRange(
                        field="MontoItem", low=product, high=product, actual=line.amount
                    ),
                    evidence=[ev("arithmetic", "QtyItem x PrcItem")],
                )
            )
    return alerts
