"""Anomaly and duplicate detection on a received document, against the company's context and
its history of received invoices. Deterministic local engine: the rules live in
:mod:`ai_service.usecases.anomaly_rules`, the history index in
:mod:`ai_service.usecases.invoice_history`.

Alerts: exact_duplicate, fuzzy_duplicate, price_spike, vat_error, total_mismatch, qty_over_po,
new_supplier_large_amount, split_below_threshold, future_date,
credit_note_without_valid_reference. Each says how serious it is, why (evidence), and what was
expected (a price range, the amount that adds up, the document it duplicates).
"""

from __future__ import annotations

from datetime import date

from ai_service.context.models import CompanyContext, ReceivedInvoice
from ai_service.usecases.anomaly_models import (
    AnomalyAlert,
    AnomalyFindings,
    AnomalySettings,
    AnomalyType,
    ExpectedRange,
    Severity,
)
from ai_service.usecases.anomaly_rules import (
    Rule,
    RuleInput,
    exact_duplicate,
    fuzzy_duplicate,
    price_spike,
    total_mismatch,
    vat_error,
)
from ai_service.usecases.anomaly_rules_context import (
    credit_note_without_valid_reference,
    future_date,
    new_supplier_large_amount,
    qty_over_po,
    split_below_threshold,
)
from ai_service.usecases.common import (
    LLM_NOT_WIRED,
    Candidate,
    SupportsLLM,
    UseCaseResult,
    check_scope,
)
from ai_service.usecases.invoice_history import InvoiceHistory
from ai_service.usecases.po_matching import PurchaseOrderIndex

ENGINE_NAME = "anomaly-rules-v1"
#: share of documents with no alert that carried no injected anomaly, measured on generated
#: companies of the tuning seeds at a 15 % anomaly rate (missed split parts are most of the rest)
CLEAN_CONFIDENCE = 0.98

__all__ = [
    "ENGINE_NAME",
    "RULES",
    "AnomalyAlert",
    "AnomalyDetector",
    "AnomalyFindings",
    "AnomalySettings",
    "AnomalyType",
    "ExpectedRange",
    "Severity",
]


RULES: tuple[Rule, ...] = (
    exact_duplicate,
    fuzzy_duplicate,
    price_spike,
    vat_error,
    total_mismatch,
    qty_over_po,
    new_supplier_large_amount,
    split_below_threshold,
    future_date,
    credit_note_without_valid_reference,
)


def run_rules(r: RuleInput) -> list[AnomalyAlert]:
    return [alert for rule in RULES for alert in rule(r)]


class AnomalyDetector:
    """The local anomaly engine for one company: indexes its history once, then each
    :meth:`check` is a handful of dictionary look-ups."""

    def __init__(
        self,
        context: CompanyContext,
        *,
        settings: AnomalySettings | None = None,
        llm: SupportsLLM | None = None,
    ) -> None:
        self.context = context
        self.settings = settings or AnomalySettings()
        self.llm = llm
        self.history = InvoiceHistory(context.invoices)
        self.po_index = PurchaseOrderIndex(context, context.invoices)
        self.known_suppliers = set(context.supplier_by_rut)

    def record(self, invoice: ReceivedInvoice) -> None:
        """Take in a document just booked, so the next checks see it in the history."""
        check_scope(self.context, invoice)
        self.history.record(invoice)
        self.po_index.record(invoice)

    def check(
        self, invoice: ReceivedInvoice, *, received_on: date | None = None
    ) -> UseCaseResult[AnomalyFindings]:
        """Every anomaly of ``invoice`` (a document just received, not yet in the history);
        ``received_on`` defaults to today and matters only for future_date."""
        check_scope(self.context, invoice)
        alerts = run_rules(
            RuleInput(
                invoice=invoice,
                context=self.context,
                history=self.history,
                po_index=self.po_index,
                known_suppliers=self.known_suppliers,
                settings=self.settings,
                received_on=received_on or date.today(),
            )
        )
        findings = AnomalyFindings(invoice_key=invoice.key, alerts=alerts)
        # the engine's confidence is that of its least certain alert, or how often a document
        # no rule fired on is clean
        confidence = min((a.confidence for a in alerts), default=CLEAN_CONFIDENCE)
        return UseCaseResult[AnomalyFindings](
            decision=findings,
            confidence=confidence,
            candidates=[Candidate[AnomalyFindings](value=findings, score=confidence)],
            evidence=[e for a in alerts for e in a.evidence],
            engine="local",
            fallback_reason=LLM_NOT_WIRED if self.llm is not None else None,
            threshold=0.0,
            abstained=False,
            needs_review=any(a.severity is not Severity.LOW for a in alerts),
        )
