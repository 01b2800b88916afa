"""What the generator outputs: documents as the company received them, each with the truth about
it (how the accountant booked it, which purchase-order line each line bills, which anomaly was
injected), and the company context as Odoo holds it."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from ai_service.context.models import CompanyContext, ReceivedInvoice


class AnomalyKind(StrEnum):
    #: the same DTE received again (same emisor, tipo, folio, content)
    EXACT_DUPLICATE = "exact_duplicate"
    #: a copy with a mistyped folio, same amounts and lines, dated within a few days
    FUZZY_DUPLICATE = "fuzzy_duplicate"
    #: one line's unit price far above what the supplier usually charges for it
    PRICE_SPIKE = "price_spike"
    #: Totales/IVA is not 19 % of MntNeto (the total adds up with the wrong IVA)
    VAT_ERROR = "vat_error"
    #: MntTotal is not MntNeto + IVA + MntExe
    TOTAL_MISMATCH = "total_mismatch"
    #: a line bills more than the purchase-order line it references ordered
    QTY_OVER_PO = "qty_over_po"
    #: first invoice of a supplier unknown to the company, for a large amount
    NEW_SUPPLIER_LARGE_AMOUNT = "new_supplier_large_amount"
    #: invoices of one supplier within days, each below the approval threshold, the sum above
    SPLIT_BELOW_THRESHOLD = "split_below_threshold"
    #: FchEmis later than the day the document was received
    FUTURE_DATE = "future_date"
    #: a nota de crédito (61) with no Referencia, or one to a folio the supplier never invoiced
    CREDIT_NOTE_WITHOUT_VALID_REFERENCE = "credit_note_without_valid_reference"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AnomalyLabel(_Model):
    kind: AnomalyKind
    #: ids of the other documents involved: the original of a duplicate, the other parts of a split
    related_ids: list[str] = Field(default_factory=list)
    line_no: int | None = None
    detail: str


class LineLabel(_Model):
    line_no: int
    account_code: str
    product_key: str  # the catalogue product the line bills
    po_number: str | None = None
    po_line_no: int | None = None


class InvoiceLabel(_Model):
    account_code: str  # the account of the line with the largest amount
    project_code: str | None
    lines: list[LineLabel]
    anomalies: list[AnomalyLabel] = Field(default_factory=list)
    #: False for documents the accountant rejected (duplicates): no AccountingDecision exists
    decided: bool = True
    decided_at: datetime | None = None


class SyntheticInvoice(_Model):
    id: str  # unique per received document, also for an exact duplicate of another one
    received_at: date
    invoice: ReceivedInvoice
    label: InvoiceLabel

    @property
    def anomaly_kinds(self) -> set[AnomalyKind]:
        return {a.kind for a in self.label.anomalies}


class SyntheticCompany(_Model):
    kind: str
    seed: int
    #: everything Odoo holds at the end of the period, with every decision
    context: CompanyContext
    #: every received document in order of reception, anomalies included
    documents: list[SyntheticInvoice]

    def split(self, fraction: float = 0.7) -> tuple[CompanyContext, list[SyntheticInvoice]]:
        """The context as it was when the first ``fraction`` of documents had been received and
        booked, and the later documents (with their labels) to evaluate an engine on."""
        if not 0 < fraction < 1:
            raise ValueError("fraction must be between 0 and 1")
        cut = int(len(self.documents) * fraction)
        past, future = self.documents[:cut], self.documents[cut:]
        keys = {d.invoice.key for d in past}
        seen: set[str] = set()
        invoices = []
        for doc in past:
            if doc.invoice.key not in seen:
                seen.add(doc.invoice.key)
                invoices.append(doc.invoice)
        context = self.context.replaced(
            invoices=invoices,
            decisions=[d for d in self.context.decisions if d.invoice_key in keys],
        )
        return context, future

    def anomalous(self) -> list[SyntheticInvoice]:
        return [d for d in self.documents if d.label.anomalies]


class SyntheticDataset(_Model):
    seed: int
    companies: list[SyntheticCompany]

    def company(self, kind: str) -> SyntheticCompany:
        return next(c for c in self.companies if c.kind == kind)
