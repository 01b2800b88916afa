"""Purchase-order reconciliation: which purchase orders (and receipts, for a 3-way match) a
received invoice bills, line by line, and whether it bills them as ordered.

Links come from the invoice's Referencia (TpoDocRef 801 orden de compra, 52 guía de despacho ->
the receipt that guía covered) or, without references, are inferred from the supplier's open
POs near the invoice date whose lines the invoice bills at the received or open quantity. Each
invoice line is paired with a PO line by wording (char trigrams + word prefixes), unit price and
quantity; the deltas are judged with the company's tolerances.

Outcome, most serious first: ``over_invoiced`` (more than ordered, or an item not on the PO),
``price_variance``, ``qty_variance`` (the quantity differs from what was received),
``partial_delivery`` (bills less than is still open on the PO), ``matched_exact``; ``no_po``
when the invoice bills no known PO.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from ai_service.context.models import CompanyContext, ReceivedInvoice
from ai_service.usecases.common import (
    LLM_NOT_WIRED,
    Candidate,
    Evidence,
    SupportsLLM,
    UseCaseResult,
    check_scope,
)
from ai_service.usecases.invoice_history import FACTURAS, unit_price
from ai_service.usecases.po_matching import Links, Pair, PurchaseOrderIndex, match_lines

ENGINE_NAME = "po-reconciliation-v1"


class ReconciliationTolerances(BaseModel):
    """Per-company tolerances (Odoo's purchase "bill control" settings): a unit price passes
    when within ``price_pct`` percent *or* ``price_abs_clp`` pesos of the PO price; a quantity
    when within ``qty_pct`` percent of what was expected."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    price_pct: Decimal = Field(default=Decimal(2), ge=0, le=100)
    price_abs_clp: Decimal = Field(default=Decimal(1), ge=0)
    qty_pct: Decimal = Field(default=Decimal(0), ge=0, le=100)
    #: confidence below this leaves the link to a person (abstain)
    threshold: float = Field(default=0.5, ge=0, le=1)

    def price_ok(self, invoiced: Decimal, ordered: Decimal) -> bool:
        allowed = max(self.price_abs_clp, ordered * self.price_pct / 100)
        return abs(invoiced - ordered) <= allowed

    def qty_slack(self, reference: Decimal) -> Decimal:
        # a hair of slack for decimal quantities printed with fewer digits (QtyItem 12.3333)
        return max(abs(reference) * self.qty_pct / 100, Decimal("0.0001"))


class ReconciliationOutcome(StrEnum):
    MATCHED_EXACT = "matched_exact"
    PRICE_VARIANCE = "price_variance"
    QTY_VARIANCE = "qty_variance"
    PARTIAL_DELIVERY = "partial_delivery"
    OVER_INVOICED = "over_invoiced"
    NO_PO = "no_po"


#: most serious first: the invoice's outcome is its worst line's
SEVERITY_ORDER = (
    ReconciliationOutcome.OVER_INVOICED,
    ReconciliationOutcome.PRICE_VARIANCE,
    ReconciliationOutcome.QTY_VARIANCE,
    ReconciliationOutcome.PARTIAL_DELIVERY,
    ReconciliationOutcome.MATCHED_EXACT,
)


class LineReconciliation(BaseModel):
    """One invoice line against the PO line it bills, with the deltas that explain it."""

    model_config = ConfigDict(frozen=True)

    invoice_line_no: int
    invoice_item: str
    po_number: str
    po_line_no: int
    po_item: str
    similarity: float
    invoice_qty: Decimal | None
    ordered_qty: Decimal
    previously_invoiced_qty: Decimal
    #: what this invoice should bill: the receipt's quantity (3-way) or what is still open
    expected_qty: Decimal
    received: bool  # expected_qty comes from goods receipts
    qty_delta: Decimal | None  # invoice_qty - expected_qty
    invoice_unit_price: Decimal | None
    po_unit_price: Decimal
    price_delta: Decimal | None
    price_delta_pct: float | None
    outcome: ReconciliationOutcome


class OpenPoLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    po_number: str
    po_line_no: int
    po_item: str
    open_qty: Decimal


class Reconciliation(BaseModel):
    model_config = ConfigDict(frozen=True)

    invoice_key: str
    outcome: ReconciliationOutcome
    purchase_orders: list[str]
    receipts: list[str]
    linked_by: str  # reference, guia, inferred, none
    lines: list[LineReconciliation]
    #: invoice lines matching no line of the linked POs (billed but never ordered)
    unmatched_invoice_lines: list[int]
    #: PO lines still open after this invoice (more deliveries or bills to come)
    open_po_lines: list[OpenPoLine]
    unknown_references: list[str]
    message: str


class PurchaseOrderReconciler:
    """The local PO-reconciliation engine for one company."""

    def __init__(
        self,
        context: CompanyContext,
        *,
        tolerances: ReconciliationTolerances | None = None,
        llm: SupportsLLM | None = None,
    ) -> None:
        self.context = context
        self.tolerances = tolerances or ReconciliationTolerances()
        self.llm = llm
        self.index = PurchaseOrderIndex(context, context.invoices)

    def record(self, invoice: ReceivedInvoice) -> None:
        """Take in an invoice just booked: what it billed is no longer open."""
        check_scope(self.context, invoice)
        self.index.record(invoice)

    def reconcile(self, invoice: ReceivedInvoice) -> UseCaseResult[Reconciliation]:
        check_scope(self.context, invoice)
        reconciliation, confidence, evidence = self._reconcile(invoice)
        result = UseCaseResult[Reconciliation].decide(
            [Candidate[Reconciliation](value=reconciliation, score=confidence)],
            self.tolerances.threshold,
            evidence,
            LLM_NOT_WIRED if self.llm is not None else None,
        )
        needs_review = (
            result.abstained
            or bool(reconciliation.unknown_references)
            or reconciliation.outcome
            not in (
                ReconciliationOutcome.MATCHED_EXACT,
                ReconciliationOutcome.PARTIAL_DELIVERY,
                ReconciliationOutcome.NO_PO,
            )
        )
        return result.model_copy(update={"needs_review": needs_review})

    def _reconcile(self, invoice: ReceivedInvoice) -> tuple[Reconciliation, float, list[Evidence]]:
        if invoice.tipo_dte not in FACTURAS:
            links = Links([], [], "none", [])
        else:
            links = self.index.links(invoice)
        if not links.pos:
            message = "no purchase order found for this document"
            if links.unknown_refs:
                message += f"; unknown references: {', '.join(links.unknown_refs)}"
            rec = _empty(invoice, links, message)
            # an OC reference we cannot resolve is itself doubtful
            return rec, (UNKNOWN_REFERENCE_ACCURACY if links.unknown_refs else NO_PO_ACCURACY), []
        expected = self.index.expected_quantities(links.pos, links.receipts, invoice.fecha)
        po_lines = [(po, pl) for po in links.pos for pl in po.lines]
        pairs = match_lines(invoice.lines, po_lines, expected)
        lines = [self._line(pair, expected, bool(links.receipts)) for pair in pairs]
        matched_lines = {p.line.line_no for p in pairs}
        matched_po = {p.key for p in pairs}
        unmatched = [ln.line_no for ln in invoice.lines if ln.line_no not in matched_lines]
        open_lines = self._open_after(links, pairs, matched_po)
        outcomes = {line.outcome for line in lines}
        if unmatched:
            outcomes.add(ReconciliationOutcome.OVER_INVOICED)
        if open_lines:
            outcomes.add(ReconciliationOutcome.PARTIAL_DELIVERY)
        outcome = next(o for o in SEVERITY_ORDER if o in outcomes or o is SEVERITY_ORDER[-1])
        rec = Reconciliation(
            invoice_key=invoice.key,
            outcome=outcome,
            purchase_orders=[po.number for po in links.pos],
            receipts=[r.number for r in links.receipts],
            linked_by=links.via,
            lines=lines,
            unmatched_invoice_lines=unmatched,
            open_po_lines=open_lines,
            unknown_references=links.unknown_refs,
            message=_message(outcome, lines, unmatched, open_lines),
        )
        return rec, _confidence(links, pairs, len(invoice.lines)), _evidence(links, lines)

    def _qty_differs(self, qty: Decimal, expected: Decimal, three_way: bool) -> bool:
        """Against the receipts a guía names, any difference counts; against everything received
        so far, only billing more than arrived (the rest may be billed later)."""
        slack = self.tolerances.qty_slack(expected)
        return abs(qty - expected) > slack if three_way else qty > expected + slack

    def _line(
        self, pair: Pair, expected: dict[tuple[str, int], Decimal], three_way: bool
    ) -> LineReconciliation:
        tol = self.tolerances
        key = pair.key
        ordered = pair.po_line.quantity
        previous = self.index.invoiced.get(key, Decimal(0))
        exp = expected.get(key, Decimal(0))
        received = bool(self.index.receipts_by_po.get(pair.po.number))
        qty = pair.line.quantity
        price = unit_price(pair.line)
        po_price = pair.po_line.unit_price
        outcome = ReconciliationOutcome.MATCHED_EXACT
        remaining = ordered - previous
        if qty is not None and qty > remaining + tol.qty_slack(ordered):
            outcome = ReconciliationOutcome.OVER_INVOICED
        elif price is not None and not tol.price_ok(price, po_price):
            outcome = ReconciliationOutcome.PRICE_VARIANCE
        elif received and qty is not None and self._qty_differs(qty, exp, three_way):
            outcome = ReconciliationOutcome.QTY_VARIANCE
        return LineReconciliation(
            invoice_line_no=pair.line.line_no,
            invoice_item=pair.line.name,
            po_number=pair.po.number,
            po_line_no=pair.po_line.line_no,
            po_item=pair.po_line.product,
            similarity=round(pair.score.text, 3),
            invoice_qty=qty,
            ordered_qty=ordered,
            previously_invoiced_qty=previous,
            expected_qty=exp,
            received=received,
            qty_delta=None if qty is None else qty - exp,
            invoice_unit_price=price,
            po_unit_price=po_price,
            price_delta=None if price is None else price - po_price,
            price_delta_pct=(
                None
                if price is None or po_price == 0
                else round(float((price - po_price) / po_price * 100), 2)
            ),
            outcome=outcome,
        )

    def _open_after(
        self, links: Links, pairs: list[Pair], matched: set[tuple[str, int]]
    ) -> list[OpenPoLine]:
        billed = {p.key: p.line.quantity or Decimal(0) for p in pairs}
        out = []
        for po in links.pos:
            for pl in po.lines:
                key = (po.number, pl.line_no)
                left = pl.quantity - self.index.invoiced.get(key, Decimal(0)) - billed.get(key, 0)
                if left > self.tolerances.qty_slack(pl.quantity):
                    out.append(
                        OpenPoLine(
                            po_number=po.number,
                            po_line_no=pl.line_no,
                            po_item=pl.product,
                            open_qty=left,
                        )
                    )
        return out


def _empty(invoice: ReceivedInvoice, links: Links, message: str) -> Reconciliation:
    return Reconciliation(
        invoice_key=invoice.key,
        outcome=ReconciliationOutcome.NO_PO,
        purchase_orders=[],
        receipts=[],
        linked_by="none",
        lines=[],
        unmatched_invoice_lines=[],
        open_po_lines=[],
        unknown_references=links.unknown_refs,
        message=message,
    )


#: accuracy of the outcome per way the PO was found, measured on generated companies of the
#: tuning seeds: a reference is near-certain, an inferred link a little less
_LINK_ACCURACY = {"reference": 0.99, "guia": 0.99, "inferred": 0.96}
NO_PO_ACCURACY = 0.97
UNKNOWN_REFERENCE_ACCURACY = 0.6


def _confidence(links: Links, pairs: list[Pair], n_lines: int) -> float:
    """The link's measured accuracy, lowered when the line pairs are weak or leave invoice lines
    unpaired (the outcome follows from the pairs by arithmetic)."""
    base = _LINK_ACCURACY.get(links.via, 0.5)
    if not pairs:
        return round(base * 0.5, 3)
    mean = sum(p.score.score for p in pairs) / len(pairs)
    coverage = len(pairs) / max(1, n_lines)
    return round(base * (0.9 + 0.1 * min(1.0, mean / 0.6)) * (0.8 + 0.2 * coverage), 3)


def _evidence(links: Links, lines: list[LineReconciliation]) -> list[Evidence]:
    out = [
        Evidence(
            kind="purchase_order", ref=po.number, detail=f"OC {po.number} ({links.via})", score=1.0
        )
        for po in links.pos
    ]
    out += [
        Evidence(
            kind="guia_despacho",
            ref=r.number,
            detail=f"receipt {r.number} of guía {r.guia_folio}",
            score=1.0,
        )
        for r in links.receipts
    ]
    for line in lines:
        if line.outcome is not ReconciliationOutcome.MATCHED_EXACT:
            out.append(
                Evidence(
                    kind=line.outcome.value,
                    ref=f"{line.po_number}/{line.po_line_no}",
                    detail=(
                        f"line {line.invoice_line_no}: qty {line.invoice_qty} vs expected "
                        f"{line.expected_qty} (ordered {line.ordered_qty}, billed before "
                        f"{line.previously_invoiced_qty}); price {line.invoice_unit_price} vs "
                        f"{line.po_unit_price}"
                    ),
                    score=line.similarity,
                )
            )
    return out


def _message(
    outcome: ReconciliationOutcome,
    lines: list[LineReconciliation],
    unmatched: list[int],
    open_lines: list[OpenPoLine],
) -> str:
    if outcome is ReconciliationOutcome.MATCHED_EXACT:
        return "every line matches its purchase order line in quantity and price"
    parts = [
        f"line {ln.invoice_line_no}: {ln.outcome.value}"
        for ln in lines
        if ln.outcome != "matched_exact"
    ]
    if unmatched:
        parts.append(f"lines not on the purchase order: {', '.join(map(str, unmatched))}")
    if open_lines:
        parts.append(f"{len(open_lines)} purchase order line(s) still open")
    return "; ".join(parts)
