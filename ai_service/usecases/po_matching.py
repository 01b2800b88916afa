"""The purchase-order side of reconciliation: an index of one company's POs and receipts, what
its past invoices already billed of each PO line, and the line matcher (invoice line to PO
line by wording, unit price and quantity).

Built once per context; :meth:`PurchaseOrderIndex.record` adds a newly booked invoice.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
from scipy.optimize import linear_sum_assignment

from ai_service.context.models import (
    TPO_DOC_REF_GUIA_DESPACHO,
    TPO_DOC_REF_ORDEN_COMPRA,
    CompanyContext,
    InvoiceLine,
    PurchaseOrder,
    PurchaseOrderLine,
    Receipt,
    ReceivedInvoice,
)
from ai_service.usecases.invoice_history import FACTURAS, unit_price
from ai_service.usecases.item_similarity import text_similarity

_NOT_ALNUM = re.compile(r"[^0-9A-Z]")
#: a pair scoring below this is not the same item
MIN_PAIR_SCORE = 0.3
#: how far back an inferred PO may be dated, and how much after the invoice (clock skew)
INFER_WINDOW = (timedelta(days=180), timedelta(days=5))
#: receipts dated this long after the invoice still count as what it bills (late booking)
RECEIPT_GRACE = timedelta(days=3)

PoLineKey = tuple[str, int]  # (PO number, line_no)


def po_number_key(number: str) -> str:
    """Spellings of one PO number meet here: "OC-4512", "oc 4512", "0004512" -> "4512"."""
    text = _NOT_ALNUM.sub("", number.upper())
    for prefix in ("OC", "PO", "ORDEN", "ORD"):
        if text.startswith(prefix) and text[len(prefix) :].isdigit():
            text = text[len(prefix) :]
            break
    return text.lstrip("0") or text


@dataclass(frozen=True)
class PairScore:
    score: float
    text: float
    price: float
    quantity: float


def pair_score(
    line: InvoiceLine, po_line: PurchaseOrderLine, expected_qty: Decimal | None
) -> PairScore:
    """How likely the invoice line bills the PO line: wording counts most, then unit price
    (a PO fixes it), then quantity against what is expected (received, else still open)."""
    # NmbItem carries the product; DscItem sometimes helps, but may carry other numbers (a
    # project, an address) that must not read as a size conflict
    text = text_similarity(line.name, po_line.product)
    if line.description:
        text = max(text, text_similarity(line.text, po_line.product))
    price = unit_price(line)
    # a PO fixes the price: 2 % off still fits well (0.82), 10 % poorly (0.37), 25 % not at all
    price_fit = (
        math.exp(-abs(float(price - po_line.unit_price)) / float(po_line.unit_price) / 0.1)
        if price is not None and po_line.unit_price > 0
        else 0.5
    )
    qty = line.quantity
    if qty is None or expected_qty is None or expected_qty <= 0 or qty <= 0:
        qty_fit = 0.5
    elif qty == expected_qty:
        qty_fit = 1.0
    else:  # an exact quantity says much more than a close one
        qty_fit = 0.5 * float(min(qty, expected_qty) / max(qty, expected_qty))
    score = 0.5 * text + 0.3 * price_fit + 0.2 * qty_fit
    return PairScore(score=score, text=text, price=price_fit, quantity=qty_fit)


@dataclass(frozen=True)
class Pair:
    line: InvoiceLine
    po: PurchaseOrder
    po_line: PurchaseOrderLine
    score: PairScore

    @property
    def key(self) -> PoLineKey:
        return (self.po.number, self.po_line.line_no)


def _acceptable(s: PairScore) -> bool:
    """A pair worth making: a good overall score, or the exact quantity expected on that PO
    line with some likeness of wording (a price spike leaves wording and quantity only)."""
    return s.score >= MIN_PAIR_SCORE or (s.quantity == 1.0 and s.text >= 0.15)


def match_lines(
    lines: Sequence[InvoiceLine],
    po_lines: Sequence[tuple[PurchaseOrder, PurchaseOrderLine]],
    expected: dict[PoLineKey, Decimal],
) -> list[Pair]:
    """One-to-one pairs maximising the summed score (Hungarian assignment: the best single
    pair is not always part of the best pairing, e.g. two lines both worded like "software");
    unacceptable pairs are dropped."""
    if not lines or not po_lines:
        return []
    scores = [
        [pair_score(line, pl, expected.get((po.number, pl.line_no))) for po, pl in po_lines]
        for line in lines
    ]
    matrix = np.array([[s.score if _acceptable(s) else 0.0 for s in row] for row in scores])
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    pairs = [
        Pair(lines[i], po_lines[j][0], po_lines[j][1], scores[i][j])
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True)
        if _acceptable(scores[i][j])
    ]
    # by elimination: a line left over whose quantity is exactly what one left-over PO line
    # expects bills that line, whatever the wording ("Ripio chancado" for "Gravilla 3/4")
    used_lines = {p.line.line_no for p in pairs}
    used_po = {p.key for p in pairs}
    free = [j for j, (po, pl) in enumerate(po_lines) if (po.number, pl.line_no) not in used_po]
    for i, line in enumerate(lines):
        if line.line_no in used_lines:
            continue
        exact = [j for j in free if scores[i][j].quantity == 1.0]
        if len(exact) == 1:
            j = exact[0]
            pairs.append(Pair(line, po_lines[j][0], po_lines[j][1], scores[i][j]))
            free.remove(j)
    pairs.sort(key=lambda p: p.line.line_no)
    return pairs


@dataclass(frozen=True)
class Links:
    """Which POs and receipts an invoice is about, and how that was found."""

    pos: list[PurchaseOrder]
    receipts: list[Receipt]  # the receipts its guías de despacho cover
    via: str  # "reference", "guia", "inferred" or "none"
    unknown_refs: list[str]  # OC/guía references that point to nothing of this supplier


class PurchaseOrderIndex:
    def __init__(self, context: CompanyContext, invoices: Iterable[ReceivedInvoice] = ()) -> None:
        self.by_number: dict[str, PurchaseOrder] = {}
        self.by_supplier: dict[str, list[tuple[date, str]]] = {}
        for po in context.purchase_orders:
            self.by_number[po.number] = po
            self.by_number.setdefault(po_number_key(po.number), po)
            bisect.insort(
                self.by_supplier.setdefault(str(po.supplier_rut), []), (po.date, po.number)
            )
        self.receipts_by_po: dict[str, list[Receipt]] = {}
        for receipt in sorted(context.receipts, key=lambda r: (r.date, r.number)):
            self.receipts_by_po.setdefault(receipt.po_number, []).append(receipt)
        self.receipts_by_guia = context.receipts_by_guia
        #: quantity already billed per PO line by booked invoices
        self.invoiced: dict[PoLineKey, Decimal] = {}
        self._recorded: set[str] = set()
        for invoice in sorted(invoices, key=lambda inv: (inv.fecha, inv.key)):
            self.record(invoice)

    def po(self, number: str) -> PurchaseOrder | None:
        return self.by_number.get(number) or self.by_number.get(po_number_key(number))

    # --- linking -------------------------------------------------------------------------------

    def links(self, invoice: ReceivedInvoice, *, infer: bool = True) -> Links:
        rut = str(invoice.emisor_rut)
        pos: dict[str, PurchaseOrder] = {}
        receipts: dict[str, Receipt] = {}
        unknown: list[str] = []
        via = "none"
        for ref in invoice.references_of(TPO_DOC_REF_ORDEN_COMPRA):
            po = self.po(ref.folio_ref)
            if po is not None and str(po.supplier_rut) == rut:
                pos[po.number] = po
                via = "reference"
            else:
                unknown.append(f"OC {ref.folio_ref}")
        for ref in invoice.references_of(TPO_DOC_REF_GUIA_DESPACHO):
            folio = ref.folio_ref.strip().lstrip("0")
            found = self.receipts_by_guia.get((rut, int(folio))) if folio.isdigit() else None
            if not found:
                unknown.append(f"guía {ref.folio_ref}")
                continue
            for receipt in found:
                receipts[receipt.number] = receipt
                po = self.by_number.get(receipt.po_number)
                if po is not None and po.number not in pos:
                    pos[po.number] = po
                    via = "reference" if via == "reference" else "guia"
        # an invoice naming an OC or guía we do not know is reported as such, not re-linked
        if not pos and infer and not unknown and invoice.tipo_dte in FACTURAS:
            inferred = self.infer(invoice)
            if inferred:
                return Links(inferred, [], "inferred", unknown)
        ordered = sorted(pos.values(), key=lambda po: (po.date, po.number))
        return Links(ordered, sorted(receipts.values(), key=lambda r: r.number), via, unknown)

    def infer(self, invoice: ReceivedInvoice) -> list[PurchaseOrder]:
        """POs of the supplier, dated near the invoice, with goods received and not billed yet
        that the invoice bills: each invoice line must match such a PO line in wording (or in
        wording and price) *and* bill exactly a received quantity. Without a reference, only
        a receipt is evidence enough: an open PO nothing arrived for is left alone."""
        rut = str(invoice.emisor_rut)
        entries = self.by_supplier.get(rut, [])
        lo = bisect.bisect_left(entries, (invoice.fecha - INFER_WINDOW[0], ""))
        hi = bisect.bisect_right(entries, (invoice.fecha + INFER_WINDOW[1], "\uffff"))
        remaining = list(invoice.lines)
        chosen: list[PurchaseOrder] = []
        candidates = [
            self.by_number[number]
            for _, number in entries[lo:hi]
            if self.receipts_by_po.get(number)
        ]
        while remaining and candidates:
            best: tuple[float, PurchaseOrder, list[Pair]] | None = None
            for po in candidates:
                unbilled = self.expected_quantities([po], [], invoice.fecha)
                options = self._received_options(po, invoice.fecha, unbilled)
                open_lines = [(po, pl) for pl in po.lines if unbilled[(po.number, pl.line_no)] > 0]
                pairs = [
                    p
                    for p in match_lines(remaining, open_lines, unbilled)
                    if _inferable(p, options.get(p.key, set()))
                ]
                if pairs:
                    total = sum(p.score.score for p in pairs)
                    if best is None or total > best[0] + 1e-9:
                        best = (total, po, pairs)
            if best is None:
                break
            chosen.append(best[1])
            candidates.remove(best[1])
            matched = {p.line.line_no for p in best[2]}
            remaining = [line for line in remaining if line.line_no not in matched]
        if remaining:  # a line the supplier never delivered this way: do not guess a link
            return []
        return sorted(chosen, key=lambda po: (po.date, po.number))

    def _received_options(
        self, po: PurchaseOrder, fecha: date, unbilled: dict[PoLineKey, Decimal]
    ) -> dict[PoLineKey, set[Decimal]]:
        """Quantities an invoice without references may bill per PO line: all that arrived and
        is not billed yet, or what one receipt brought (if not billed yet)."""
        options: dict[PoLineKey, set[Decimal]] = {}
        for receipt in self.receipts_by_po.get(po.number, []):
            if receipt.date > fecha + RECEIPT_GRACE:
                continue
            for rl in receipt.lines:
                key = (po.number, rl.po_line_no)
                if 0 < rl.quantity <= unbilled.get(key, Decimal(0)):
                    options.setdefault(key, set()).add(rl.quantity)
        for key, qty in unbilled.items():
            if qty > 0:
                options.setdefault(key, set()).add(qty)
        return options

    # --- quantities ----------------------------------------------------------------------------

    def received(self, po: PurchaseOrder, up_to: date) -> dict[int, Decimal]:
        out: dict[int, Decimal] = {}
        for receipt in self.receipts_by_po.get(po.number, []):
            if receipt.date <= up_to + RECEIPT_GRACE:
                for rl in receipt.lines:
                    out[rl.po_line_no] = out.get(rl.po_line_no, Decimal(0)) + rl.quantity
        return out

    def expected_quantities(
        self, pos: Sequence[PurchaseOrder], receipts: Sequence[Receipt], fecha: date
    ) -> dict[PoLineKey, Decimal]:
        """What the invoice should bill per PO line: the quantities of the receipts its guías
        cover; without guías, what was received up to its date and not billed yet; for a PO
        with no receipts at all (services), what is still open."""
        expected: dict[PoLineKey, Decimal] = {}
        if receipts:
            for receipt in receipts:
                for rl in receipt.lines:
                    key = (receipt.po_number, rl.po_line_no)
                    expected[key] = expected.get(key, Decimal(0)) + rl.quantity
            for po in pos:
                for pl in po.lines:
                    expected.setdefault((po.number, pl.line_no), Decimal(0))
            return expected
        for po in pos:
            has_receipts = bool(self.receipts_by_po.get(po.number))
            received = self.received(po, fecha)
            for pl in po.lines:
                key = (po.number, pl.line_no)
                base = received.get(pl.line_no, Decimal(0)) if has_receipts else pl.quantity
                expected[key] = max(Decimal(0), base - self.invoiced.get(key, Decimal(0)))
        return expected

    def record(self, invoice: ReceivedInvoice) -> list[Pair]:
        """Count what a booked invoice billed of each PO line (once per document)."""
        if invoice.key in self._recorded or invoice.tipo_dte not in FACTURAS:
            return []
        self._recorded.add(invoice.key)
        links = self.links(invoice, infer=False)
        if not links.pos:
            return []
        expected = self.expected_quantities(links.pos, links.receipts, invoice.fecha)
        pairs = match_lines(
            invoice.lines, [(po, pl) for po in links.pos for pl in po.lines], expected
        )
        for pair in pairs:
            if pair.line.quantity is not None:
                self.invoiced[pair.key] = (
                    self.invoiced.get(pair.key, Decimal(0)) + pair.line.quantity
                )
        return pairs


def _inferable(pair: Pair, received: set[Decimal]) -> bool:
    """Without a reference, a line is taken to bill a PO line only when it bills exactly a
    received quantity of an item alike in wording or in price. Linking lines that bill more
    than arrived was measured to link far more invoices that bill no PO at all than it
    caught over-billings, so those are left to the anomaly rules and a person."""
    qty = pair.line.quantity
    if qty is None or qty not in received:
        return False
    return pair.score.text >= 0.5 or pair.score.price >= 0.8
