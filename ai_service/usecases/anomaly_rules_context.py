"""The anomaly rules that read the company's context beyond the supplier's price history:
quantities against purchase orders, unknown suppliers, approval splitting, dates and the
references of notas de crédito y débito."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal

from ai_service.context.models import ReceivedInvoice
from ai_service.usecases.anomaly_models import AnomalyAlert, AnomalyType, ExpectedRange, Severity
from ai_service.usecases.anomaly_rules import RuleInput, ev, fmt, line_signature
from ai_service.usecases.invoice_history import (
    FACTURAS,
    NOTA_CREDITO,
    NOTA_DEBITO,
    NOTAS,
    family,
    referenced_documents,
)
from ai_service.usecases.item_similarity import normalize
from ai_service.usecases.po_matching import match_lines

# --- purchase orders ----------------------------------------------------------------------------


def qty_over_po(r: RuleInput) -> list[AnomalyAlert]:
    inv = r.invoice
    if inv.tipo_dte not in FACTURAS:
        return []
    links = r.po_index.links(inv)
    if not links.pos:
        return []
    tol = r.settings.tolerances
    expected = r.po_index.expected_quantities(links.pos, links.receipts, inv.fecha)
    pairs = match_lines(inv.lines, [(po, pl) for po in links.pos for pl in po.lines], expected)
    alerts = []
    for pair in pairs:
        qty = pair.line.quantity
        if qty is None:
            continue
        ordered = pair.po_line.quantity
        open_qty = ordered - r.po_index.invoiced.get(pair.key, Decimal(0))
        has_receipts = bool(r.po_index.receipts_by_po.get(pair.po.number))
        received = expected.get(pair.key, Decimal(0)) if has_receipts else None
        over_po = qty > open_qty + tol.qty_slack(ordered)
        over_received = received is not None and qty > received + tol.qty_slack(received)
        if received is not None:
            # 3-way: billing what arrived is fine even when more arrived than was ordered (Odoo
            # bills received quantities); billing more than arrived is the anomaly
            if not over_received:
                continue
        elif not over_po:
            continue
        what = "ordered and still open" if over_po else "received and not billed yet"
        limit = open_qty if over_po or received is None else received
        alerts.append(
            AnomalyAlert(
                type=AnomalyType.QTY_OVER_PO,
                severity=Severity.HIGH if over_po else Severity.MEDIUM,
                message=(
                    f"line {pair.line.line_no} bills {qty} of OC {pair.po.number} line "
                    f"{pair.po_line.line_no} ('{pair.po_line.product}'), above the {limit} "
                    f"{what} (ordered {ordered})"
                ),
                confidence=round(0.75 + 0.2 * min(1.0, pair.score.score), 3),
                line_no=pair.line.line_no,
                expected=ExpectedRange(
                    field="QtyItem",
                    low=0,
                    high=float(max(limit, Decimal(0))),
                    actual=float(qty),
                    unit=pair.line.unit or "units",
                ),
                related=[pair.po.number],
                evidence=[
                    ev(
                        "purchase_order",
                        f"OC line {pair.po_line.line_no}: ordered {ordered}, open {open_qty}, "
                        f"linked via {links.via}",
                        pair.po.number,
                        pair.score.score,
                    )
                ],
            )
        )
    return alerts


# --- suppliers and approval ---------------------------------------------------------------------


def new_supplier_large_amount(r: RuleInput) -> list[AnomalyAlert]:
    inv = r.invoice
    rut = str(inv.emisor_rut)
    if inv.tipo_dte in NOTAS or r.history.has_supplier(rut):
        return []
    approval = r.context.policy.approval_threshold
    unknown = rut not in r.known_suppliers
    if not unknown:  # registered in Odoo, just never invoiced: only above the approval limit
        limit = approval
    elif r.settings.new_supplier_amount is not None:
        limit = r.settings.new_supplier_amount
    else:
        limit = approval // 2
    if inv.total < limit:
        return []
    who = (
        "a supplier unknown to the company"
        if unknown
        else "a registered supplier never invoiced before"
    )
    return [
        AnomalyAlert(
            type=AnomalyType.NEW_SUPPLIER_LARGE_AMOUNT,
            severity=Severity.HIGH if unknown else Severity.MEDIUM,
            message=(
                f"first invoice of {who} ({inv.emisor_name}, {rut}) for {fmt(inv.total)}, "
                f"above {fmt(limit)}"
            ),
            confidence=0.9 if unknown else 0.7,
            expected=ExpectedRange(field="MntTotal", low=0, high=limit, actual=inv.total),
            evidence=[
                ev(
                    "supplier",
                    "not in the supplier master" if unknown else "no invoice in the history",
                    rut,
                )
            ],
        )
    ]


def _split_like(
    invoices: list[ReceivedInvoice], floor: float, threshold: int, days: int
) -> list[tuple[date, date]]:
    """Date spans where the supplier billed several invoices within ``days``, each between
    ``floor`` and ``threshold``, together above it (one pass over its invoices by date)."""
    eligible = [
        inv
        for inv in invoices
        if family(inv.tipo_dte) == "factura" and floor <= inv.total < threshold
    ]
    spans = []
    i = 0
    while i < len(eligible):
        j = i
        while j + 1 < len(eligible) and (eligible[j + 1].fecha - eligible[i].fecha).days <= days:
            j += 1
        if j > i and sum(inv.total for inv in eligible[i : j + 1]) > threshold:
            spans.append((eligible[i].fecha, eligible[j].fecha))
            i = j + 1
        else:
            i += 1
    return spans


def _items(invoice: ReceivedInvoice) -> set[str]:
    return {normalize(line.name) for line in invoice.lines}


def split_below_threshold(r: RuleInput) -> list[AnomalyAlert]:
    inv, s = r.invoice, r.settings
    threshold = r.context.policy.approval_threshold
    floor = threshold * s.split_min_part_share
    if family(inv.tipo_dte) != "factura" or not floor <= inv.total < threshold:
        return []
    rut = str(inv.emisor_rut)
    days = timedelta(days=s.split_window_days)
    signature, items = line_signature(inv), _items(inv)
    parts = [
        other
        for other in r.history.of_supplier_between(rut, inv.fecha - days, inv.fecha + days)
        if other.key != inv.key
        and family(other.tipo_dte) == "factura"
        and floor <= other.total < threshold
        # a split bills the same goods in parts; a copy of this document is a duplicate
        and bool(_items(other) & items)
        and not (other.total == inv.total and line_signature(other) == signature)
    ]
    total = inv.total + sum(p.total for p in parts)
    if not parts or total <= threshold:
        return []
    # a supplier that routinely bills like this (one bill per branch, monthly rent of two
    # premises) is not splitting: count such bursts in its history away from this one
    spans = r.history.memo(
        rut,
        ("split_spans", floor, threshold, s.split_window_days),
        lambda: _split_like(r.history.of_supplier(rut), floor, threshold, s.split_window_days),
    )
    routine = [span for span in spans if span[1] < inv.fecha - days or span[0] > inv.fecha + days]
    if len(routine) >= s.split_routine_bursts:
        return []
    return [
        AnomalyAlert(
            type=AnomalyType.SPLIT_BELOW_THRESHOLD,
            severity=Severity.HIGH if total > 2 * threshold else Severity.MEDIUM,
            message=(
                f"{len(parts) + 1} invoices of {inv.emisor_name} within {s.split_window_days} "
                f"days for the same items, each below the approval threshold "
                f"{fmt(threshold)}, add up to {fmt(total)}"
            ),
            confidence=round(
                min(0.95, 0.6 + 0.1 * len(parts) + 0.2 * min(1.0, total / threshold - 1)), 3
            ),
            expected=ExpectedRange(field="sum of MntTotal", low=0, high=threshold, actual=total),
            related=[p.key for p in parts],
            evidence=[ev("invoice", f"{p.fecha}: total {fmt(p.total)}", p.key) for p in parts]
            + [ev("supplier_pattern", f"{len(routine)} similar burst(s) in its history", rut)],
        )
    ]


# --- dates and references -----------------------------------------------------------------------


def future_date(r: RuleInput) -> list[AnomalyAlert]:
    inv = r.invoice
    ahead = (inv.fecha - r.received_on).days
    if ahead <= r.settings.future_grace_days:
        return []
    return [
        AnomalyAlert(
            type=AnomalyType.FUTURE_DATE,
            severity=Severity.HIGH if ahead > 2 else Severity.MEDIUM,
            message=(
                f"FchEmis {inv.fecha} is {ahead} day(s) after the document was received "
                f"({r.received_on})"
            ),
            confidence=0.99 if ahead > 2 else 0.8,
            expected=ExpectedRange(
                field="FchEmis", high=None, actual=inv.fecha.isoformat(), unit="date", low=None
            ),
            evidence=[ev("date", f"received {r.received_on}")],
        )
    ]


def _net(invoice: ReceivedInvoice) -> int:
    return invoice.neto + invoice.exento


def credit_note_without_valid_reference(r: RuleInput) -> list[AnomalyAlert]:
    inv = r.invoice
    if inv.tipo_dte not in NOTAS:
        return []
    kind = "nota de crédito" if inv.tipo_dte in NOTA_CREDITO else "nota de débito"
    referenced = referenced_documents(inv)

    def alert(
        message: str, related: Iterable[str] = (), expected: ExpectedRange | None = None
    ) -> AnomalyAlert:
        keys = list(related)
        return AnomalyAlert(
            type=AnomalyType.CREDIT_NOTE_WITHOUT_VALID_REFERENCE,
            severity=Severity.HIGH,
            message=f"{kind} {inv.folio}: {message}",
            confidence=0.9,
            related=keys,
            expected=expected,
            evidence=[ev("reference", message, keys[0] if keys else None)],
        )

    if not referenced:
        return [alert("no Referencia to a document it corrects")]
    alerts = []
    for key in referenced:
        target = r.history.by_key.get(key)
        if target is None:
            alerts.append(
                alert(
                    f"references {key}, not among the documents received from this supplier",
                    [key],
                )
            )
            continue
        if inv.tipo_dte not in NOTA_CREDITO:
            continue
        # net amounts (MntNeto + MntExe): IVA follows them, and a note to a factura exenta
        # sometimes carries IVA by mistake, which is not what this rule is about
        notes = [n for n in r.history.notes_referring_to(key) if n.key != inv.key]
        credited = sum(_net(n) for n in notes if n.tipo_dte in NOTA_CREDITO)
        debited = sum(_net(n) for n in notes if n.tipo_dte in NOTA_DEBITO)
        remaining = _net(target) - credited + debited
        if _net(inv) > remaining + r.settings.rounding_clp:
            alerts.append(
                alert(
                    f"credits a net {fmt(_net(inv))} but only {fmt(remaining)} remains of "
                    f"{key} (net {fmt(_net(target))}, credited before {fmt(credited)})",
                    [key, *(n.key for n in notes)],
                    ExpectedRange(field="MntNeto+MntExe", low=0, high=remaining, actual=_net(inv)),
                )
            )
    return alerts
