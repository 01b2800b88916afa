"""What the anomaly engine returns and the per-company settings it reads."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from ai_service.usecases.common import Evidence
from ai_service.usecases.po_reconciliation import ReconciliationTolerances


class AnomalyType(StrEnum):
    EXACT_DUPLICATE = "exact_duplicate"
    FUZZY_DUPLICATE = "fuzzy_duplicate"
    PRICE_SPIKE = "price_spike"
    VAT_ERROR = "vat_error"
    TOTAL_MISMATCH = "total_mismatch"
    QTY_OVER_PO = "qty_over_po"
    NEW_SUPPLIER_LARGE_AMOUNT = "new_supplier_large_amount"
    SPLIT_BELOW_THRESHOLD = "split_below_threshold"
    FUTURE_DATE = "future_date"
    CREDIT_NOTE_WITHOUT_VALID_REFERENCE = "credit_note_without_valid_reference"


class Severity(StrEnum):
    LOW = "low"  # worth a look
    MEDIUM = "medium"  # check before paying
    HIGH = "high"  # do not pay / book as is


class ExpectedRange(BaseModel):
    """What a normal value would have been: a range (a price band, the quantity still open) or
    one value (``low == high``: the IVA that 19 % gives, the total that adds up)."""

    model_config = ConfigDict(frozen=True)

    field: str  # SII element or quantity name: PrcItem, IVA, MntTotal, QtyItem, FchEmis...
    low: float | None = None
    high: float | None = None
    actual: float | str | None = None
    unit: str = "CLP"


class AnomalyAlert(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: AnomalyType
    severity: Severity
    message: str
    confidence: float = Field(ge=0, le=1)
    line_no: int | None = None
    expected: ExpectedRange | None = None
    #: the invoice key of the document this one duplicates
    duplicate_of: str | None = None
    #: other documents involved (earlier parts of a split, the note's referenced document)
    related: list[str] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)


class AnomalyFindings(BaseModel):
    model_config = ConfigDict(frozen=True)

    invoice_key: str
    alerts: list[AnomalyAlert]

    @property
    def types(self) -> set[AnomalyType]:
        return {a.type for a in self.alerts}

    @property
    def severity(self) -> Severity | None:
        order = [Severity.LOW, Severity.MEDIUM, Severity.HIGH]
        return max((a.severity for a in self.alerts), key=order.index, default=None)


class AnomalySettings(BaseModel):
    """Per-company knobs; the defaults suit a Chilean SME. Amounts are CLP with IVA."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: a copy with a retyped folio arrives within this many days of the original
    duplicate_window_days: int = Field(default=10, ge=0)
    #: prices of a (supplier, item) needed before a spike is judged, and how many recent ones
    price_min_history: int = Field(default=3, ge=2)
    price_recent: int = Field(default=8, ge=2)
    #: prices older than this are used only when too few are newer
    price_max_age_days: int = Field(default=180, ge=1)
    #: the band widens by this much per year between the sample and the invoice
    price_drift_per_year: float = Field(default=0.15, ge=0)
    #: robust z (MAD units in log space) above which a price is a spike ...
    price_k: float = Field(default=4.0, gt=0)
    #: ... a floor on the spread (stable prices still drift: inflation, list changes) ...
    price_min_spread: float = Field(default=0.04, ge=0)
    #: ... and a minimum rise over the median, so a busy supplier's tiny band does not fire
    price_min_increase: float = Field(default=0.30, ge=0)
    #: IVA and totals may be off by rounding of this many pesos
    rounding_clp: int = Field(default=1, ge=0)
    #: a first invoice of an unknown supplier above this total is flagged; None: half the
    #: approval threshold
    new_supplier_amount: int | None = Field(default=None, ge=0)
    #: invoices of one supplier within this many days are looked at together for a split
    split_window_days: int = Field(default=7, ge=0)
    #: each part of a split is at least this share of the approval threshold (parts "just
    #: below" the limit are what splitting looks like; small routine invoices are not)
    split_min_part_share: float = Field(default=0.75, ge=0, le=1)
    #: a supplier with this many such bursts elsewhere in its history bills like that
    split_routine_bursts: int = Field(default=3, ge=1)
    #: FchEmis this many days after reception is still tolerated (clock and time zones)
    future_grace_days: int = Field(default=0, ge=0)
    #: PO tolerances used by qty_over_po
    tolerances: ReconciliationTolerances = Field(default_factory=ReconciliationTolerances)
