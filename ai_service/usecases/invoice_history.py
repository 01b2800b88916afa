"""An index over one company's past received invoices, built once per context so each anomaly
check is a few dictionary look-ups: documents by natural key, per supplier in date order, per
(supplier, amount), a price series per (supplier, item) and what credit and debit notes already
did to each referenced document.

The index only ever holds the documents of the context it was built from (one company), and
:meth:`InvoiceHistory.record` adds a newly booked document without rebuilding it.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TypeVar

from ai_service.context.models import InvoiceLine, ReceivedInvoice, invoice_key
from ai_service.usecases.item_similarity import normalize, numbers_conflict, text_similarity

#: TipoDTE codes (SII "Formato Documentos Tributarios Electrónicos", tipos de documento):
#: facturas (30, 32, 45 on paper; 33, 34, 46 electronic) and notas de crédito / débito
FACTURAS = frozenset({30, 32, 33, 34, 45, 46})
NOTA_CREDITO = {60, 61}
NOTA_DEBITO = {55, 56}
NOTAS = frozenset(NOTA_CREDITO | NOTA_DEBITO)
#: wordings this alike belong to the same item of a supplier's catalogue
SAME_ITEM_SIMILARITY = 0.72

V = TypeVar("V")


def unit_price(line: InvoiceLine) -> Decimal | None:
    """The line's net unit price: PrcItem, else MontoItem over QtyItem; None when neither says."""
    if line.unit_price is not None and line.unit_price > 0:
        return line.unit_price
    if line.quantity:
        return Decimal(line.amount) / line.quantity
    return None


def family(tipo_dte: int) -> str:
    """Documents a duplicate may be confused with: a factura is not a duplicate of the nota de
    crédito that cancels it, even with the same amount."""
    if tipo_dte in NOTA_CREDITO:
        return "credito"
    if tipo_dte in NOTA_DEBITO:
        return "debito"
    return "factura"


@dataclass(frozen=True)
class PricePoint:
    fecha: date
    price: Decimal
    invoice_key: str
    line_no: int


@dataclass
class ItemSeries:
    """One item of a supplier's catalogue: the wordings seen for it and its prices by date."""

    wording: str
    wordings: set[str] = field(default_factory=set)
    points: list[PricePoint] = field(default_factory=list)

    def add(self, point: PricePoint) -> None:
        bisect.insort(self.points, point, key=lambda p: (p.fecha, p.invoice_key, p.line_no))

    def price_fits(self, price: Decimal, factor: float = 1.6) -> bool:
        last = [float(p.price) for p in self.points[-5:]]
        median = statistics.median(last) if last else float(price)
        return median / factor <= float(price) <= median * factor

    def recent(self, before: date, size: int) -> list[PricePoint]:
        """The last ``size`` prices dated on or before ``before`` (prices drift with time, so the
        recent ones say what is usual now)."""
        end = bisect.bisect_right(self.points, before, key=lambda p: p.fecha)
        return self.points[max(0, end - size) : end]


class SupplierCatalogue:
    """The items one supplier bills, grouped over the wordings its ERP prints."""

    def __init__(self) -> None:
        self.items: list[ItemSeries] = []
        self._by_norm: dict[str, ItemSeries] = {}

    def find(self, name: str, price: Decimal | None = None) -> ItemSeries | None:
        """The item this wording names: the same normalized wording, else the most alike one.
        With ``price`` (while building the history) an alike wording at a price far from the
        item's is another product ("ARNES SEGURIDAD" is not "CASCO SEGURIDAD C/ARNES")."""
        norm = normalize(name)
        if norm in self._by_norm:
            return self._by_norm[norm]
        best, best_score = None, SAME_ITEM_SIMILARITY
        for item in self.items:
            if numbers_conflict(name, item.wording):
                continue
            score = text_similarity(name, item.wording)
            if score >= best_score and (price is None or item.price_fits(price)):
                best, best_score = item, score
        return best

    def add(self, name: str, point: PricePoint) -> None:
        item = self.find(name, point.price)
        if item is None:
            item = ItemSeries(wording=name)
            self.items.append(item)
        norm = normalize(name)
        item.wordings.add(norm)
        self._by_norm[norm] = item
        item.add(point)


class InvoiceHistory:
    def __init__(self, invoices: Iterable[ReceivedInvoice] = ()) -> None:
        self.by_key: dict[str, ReceivedInvoice] = {}
        self._by_supplier: dict[str, list[tuple[date, str]]] = {}
        self._by_amount: dict[tuple[str, int], list[str]] = {}
        self.catalogues: dict[str, SupplierCatalogue] = {}
        #: referenced document key -> keys of the notes referring to it
        self.notes_on: dict[str, list[str]] = {}
        self._memo: dict[str, dict[Hashable, object]] = {}
        for invoice in sorted(invoices, key=lambda inv: (inv.fecha, inv.key)):
            self.record(invoice)

    def record(self, invoice: ReceivedInvoice) -> None:
        """Add a booked document; a second document with a known key is ignored (it is the same
        DTE)."""
        key = invoice.key
        if key in self.by_key:
            return
        rut = str(invoice.emisor_rut)
        self.by_key[key] = invoice
        self._memo.pop(rut, None)
        bisect.insort(self._by_supplier.setdefault(rut, []), (invoice.fecha, key))
        self._by_amount.setdefault((rut, invoice.total), []).append(key)
        if invoice.tipo_dte in NOTAS:
            for ref_key in referenced_documents(invoice):
                self.notes_on.setdefault(ref_key, []).append(key)
            return  # notes carry returned quantities, not prices the supplier charges
        catalogue = self.catalogues.setdefault(rut, SupplierCatalogue())
        for line in invoice.lines:
            price = unit_price(line)
            if price is not None:
                catalogue.add(line.name, PricePoint(invoice.fecha, price, key, line.line_no))

    # --- look-ups ------------------------------------------------------------------------------

    def has_supplier(self, rut: str) -> bool:
        return rut in self._by_supplier

    def supplier_count(self, rut: str) -> int:
        return len(self._by_supplier.get(rut, ()))

    def of_supplier_between(self, rut: str, first: date, last: date) -> list[ReceivedInvoice]:
        """The supplier's documents dated ``first``..``last`` (inclusive), oldest first."""
        entries = self._by_supplier.get(rut, [])
        lo = bisect.bisect_left(entries, (first, ""))
        hi = bisect.bisect_right(entries, (last, "\uffff"))
        return [self.by_key[key] for _, key in entries[lo:hi]]

    def of_supplier(self, rut: str) -> list[ReceivedInvoice]:
        return [self.by_key[key] for _, key in self._by_supplier.get(rut, [])]

    def memo(self, rut: str, key: Hashable, compute: Callable[[], V]) -> V:
        """A value derived from one supplier's documents, kept until that supplier's next
        document is recorded."""
        cache = self._memo.setdefault(rut, {})
        if key not in cache:
            cache[key] = compute()
        return cache[key]  # type: ignore[return-value]

    def with_amount(self, rut: str, total: int) -> list[ReceivedInvoice]:
        return [self.by_key[key] for key in self._by_amount.get((rut, total), [])]

    def notes_referring_to(self, key: str) -> list[ReceivedInvoice]:
        return [self.by_key[k] for k in self.notes_on.get(key, [])]


def referenced_documents(invoice: ReceivedInvoice) -> list[str]:
    """Keys of the tax documents (not OC, guía or HES) a nota refers to, same emisor."""
    keys = []
    for ref in invoice.references:
        if not ref.tipo_doc_ref.isdigit() or int(ref.tipo_doc_ref) not in FACTURAS | NOTAS:
            continue
        folio = ref.folio_ref.strip().lstrip("0")
        if folio.isdigit():
            keys.append(invoice_key(invoice.emisor_rut, int(ref.tipo_doc_ref), int(folio)))
    return keys


def robust_range(values: list[Decimal], k: float, min_spread: float) -> tuple[float, float, float]:
    """Median and the band ``median ± k`` robust standard deviations, in log space so a spread
    is a ratio: the spread is 1.4826 x MAD (the normal-consistent MAD), floored at
    ``min_spread`` (a relative spread) so a supplier with perfectly stable prices still has a
    band."""
    logs = [math.log(float(v)) for v in values]
    med = statistics.median(logs)
    mad = statistics.median(abs(x - med) for x in logs) * 1.4826
    spread = max(mad, math.log1p(min_spread))
    return math.exp(med), math.exp(med - k * spread), math.exp(med + k * spread)
