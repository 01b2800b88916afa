"""Eval tasks whose engines learn every document they see: PO reconciliation and anomaly
detection. Generated cases are judged in the order they were received, and taken in after;
hard cases are judged at the end and not taken in."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from ai_service.llm.base import LLMClient
from ai_service.llm.prompts import PromptRegistry
from ai_service.usecases.anomalies import AnomalyDetector
from ai_service.usecases.po_reconciliation import (
    PurchaseOrderReconciler,
    Reconciliation,
    ReconciliationOutcome,
    ReconciliationTolerances,
)
from evals import companies, scorers
from evals.cases import Case
from evals.outputs import (
    AnomaliesOutput,
    AnomalyCode,
    AnomalyItem,
    PoLineMatch,
    PoReconciliationOutput,
)
from evals.scoring import labelled
from evals.tasks import EvalTask, Gate, Prediction, complete_llm, register, stamp, timed_local
from evals.tasks_invoices import document_view, invoice_of

# ------------------------------------------------------------------------ PO reconciliation


def po_class(purchase_orders: Sequence[str], over_invoiced: bool) -> str:
    if over_invoiced:
        return "over_invoiced"
    return "linked" if purchase_orders else "no_po"


def _po_prediction(rec: Reconciliation, confidence: float) -> Prediction:
    lines = {str(ln.invoice_line_no): f"{ln.po_number}:{ln.po_line_no}" for ln in rec.lines}
    over = rec.outcome is ReconciliationOutcome.OVER_INVOICED
    pos = sorted(set(rec.purchase_orders))
    return Prediction(
        label=po_class(pos, over),
        confidence=confidence,
        data={"purchase_orders": pos, "lines": lines, "outcome": rec.outcome.value},
    )


class PoRunner:
    def __init__(self, company: str) -> None:
        self.context = companies.past_context(company)
        self.engine = PurchaseOrderReconciler(self.context)
        # a hard case edits a document of the stream: judged against the orders as they stood
        # before the stream, or the stream's own bill of that document would make it a re-bill
        self.before_stream = PurchaseOrderReconciler(self.context)

    def local(self, case: Case) -> Prediction:
        engine = self.before_stream if case.split == "hard" else self.engine

        def run() -> Prediction:
            result = engine.reconcile(invoice_of(case))
            return _po_prediction(result.candidates[0].value, result.confidence)

        return timed_local(run)

    def _orders(self, case: Case) -> list[dict[str, Any]]:
        invoice = invoice_of(case)
        rut = str(invoice.emisor_rut)
        orders = [
            po
            for po in self.context.purchase_orders
            if str(po.supplier_rut) == rut and po.date <= invoice.fecha
        ][-6:]
        return [
            {
                "id": po.number,
                "date": po.date.isoformat(),
                "project": po.project_code,
                "lines": [
                    {
                        "id": f"{po.number}:{ln.line_no}",
                        "product": ln.product,
                        "quantity": str(ln.quantity),
                        "unit_price": str(ln.unit_price),
                        "quantity_received": str(ln.quantity_received),
                    }
                    for ln in po.lines
                ],
            }
            for po in orders
        ]

    def llm(self, case: Case, client: LLMClient, prompts: PromptRegistry) -> Prediction:
        local = self.local(case)

        def fallback() -> PoReconciliationOutput:
            lines = local.data["lines"]
            return PoReconciliationOutput(
                purchase_order_id=(local.data["purchase_orders"] or [None])[0],
                line_matches=[
                    PoLineMatch(
                        nro_lin_det=ln.line_no,
                        po_line_id=lines.get(str(ln.line_no)),
                        quantity_ok=True,
                        price_ok=True,
                    )
                    for ln in invoice_of(case).lines
                ],
                discrepancies=[],
                confidence=local.confidence or 0.0,
            )

        tolerances = ReconciliationTolerances()
        out, result, started = complete_llm(
            case,
            client,
            prompts,
            prompt="po_reconciliation",
            model=PoReconciliationOutput,
            variables={
                "document": document_view(invoice_of(case)),
                "purchase_orders": self._orders(case),
                "tolerances": tolerances.model_dump(mode="json"),
            },
            local_output=fallback,
            engine_name="po-reconciliation-local",
        )
        lines = {str(m.nro_lin_det): m.po_line_id for m in out.line_matches if m.po_line_id}
        pos = sorted({v.split(":")[0] for v in lines.values()})
        over = any(d.kind == "quantity" for d in out.discrepancies) and not all(
            m.quantity_ok for m in out.line_matches
        )
        pred = Prediction(
            label=po_class(pos, over),
            confidence=out.confidence,
            data={"purchase_orders": pos, "lines": lines},
        )
        return stamp(pred, result, started)

    def after(self, case: Case) -> None:
        if case.split == "test":
            self.engine.record(invoice_of(case))


def score_po(cases: Sequence[Case], preds: Sequence[Prediction]) -> dict[str, Any]:
    expected = [po_class(c.expected["purchase_orders"], c.expected["over_invoiced"]) for c in cases]
    out = labelled(cases, preds, expected)
    line_hits = line_total = exact = 0
    fields_pred, fields_true = [], []
    for case, pred in zip(cases, preds, strict=True):
        want, got = case.expected["lines"], pred.data.get("lines", {})
        numbers = {str(ln["line_no"]) for ln in case.input["invoice"]["lines"]}
        hits = sum(want.get(n) == got.get(n) for n in numbers)
        line_hits, line_total = line_hits + hits, line_total + len(numbers)
        same_pos = sorted(case.expected["purchase_orders"]) == pred.data.get("purchase_orders")
        exact += hits == len(numbers) and same_pos
        fields_true.append({"purchase_orders": ",".join(case.expected["purchase_orders"])})
        fields_pred.append({"purchase_orders": ",".join(pred.data.get("purchase_orders", []))})
    metrics = out["metrics"]
    metrics["line_link_accuracy"] = round(line_hits / max(line_total, 1), 4)
    metrics["invoice_exact_match"] = round(exact / max(len(cases), 1), 4)
    metrics["po_set_match"] = scorers.field_exact_match(fields_pred, fields_true)["all_fields"]
    return out


register(
    EvalTask(
        name="po_reconciliation",
        prompt="po_reconciliation",
        output_model=PoReconciliationOutput,
        runner=PoRunner,
        score=score_po,
        gates=(Gate("line_link_accuracy"), Gate("invoice_exact_match"), Gate("macro_f1")),
        description="which PO lines each invoice line bills; over-invoicing",
    )
)


# ------------------------------------------------------------------------------ anomalies

#: the prompt's coarse codes for the engine's alert types (how the two are compared)
CODE_OF_KIND: dict[str, AnomalyCode] = {
    "exact_duplicate": "duplicate",
    "fuzzy_duplicate": "duplicate",
    "price_spike": "amount_outlier",
    "new_supplier_large_amount": "new_emisor",
    "vat_error": "totals_mismatch",
    "total_mismatch": "totals_mismatch",
    "future_date": "date_inconsistency",
    "qty_over_po": "other",
    "split_below_threshold": "other",
    "credit_note_without_valid_reference": "other",
}
NONE = "none"


def anomaly_label(kinds: Sequence[str], expected: Sequence[str]) -> str:
    """The kind scored: the expected one when it was found, else the first found, else none."""
    for kind in expected:
        if kind in kinds:
            return kind
    return sorted(kinds)[0] if kinds else NONE


class AnomalyRunner:
    def __init__(self, company: str) -> None:
        self.context = companies.past_context(company)
        self.engine = AnomalyDetector(self.context)

    def _received(self, case: Case) -> date:
        return date.fromisoformat(case.input["received_on"])

    def local(self, case: Case) -> Prediction:
        def run() -> Prediction:
            result = self.engine.check(invoice_of(case), received_on=self._received(case))
            findings = result.decision
            kinds = sorted({a.type.value for a in findings.alerts}) if findings else []
            return Prediction(
                label=anomaly_label(kinds, case.expected["kinds"]),
                confidence=result.confidence,
                data={"kinds": kinds, "codes": sorted({CODE_OF_KIND[k] for k in kinds})},
            )

        return timed_local(run)

    def llm(self, case: Case, client: LLMClient, prompts: PromptRegistry) -> Prediction:
        local = self.local(case)
        invoice = invoice_of(case)

        def fallback() -> AnomaliesOutput:
            return AnomaliesOutput(
                anomalies=[
                    AnomalyItem(
                        code=CODE_OF_KIND[k],
                        severity="medium",
                        explanation=k,
                        fields=[],
                    )
                    for k in local.data["kinds"]
                ]
            )

        past = self.engine.history.of_supplier(str(invoice.emisor_rut))
        history = {
            "known_supplier": str(invoice.emisor_rut) in self.engine.known_suppliers,
            "supplier_invoices": len(past),
            "recent": [
                {"folio": i.folio, "fecha": i.fecha.isoformat(), "total": i.total}
                for i in past[-5:]
            ],
        }
        out, result, started = complete_llm(
            case,
            client,
            prompts,
            prompt="anomalies",
            model=AnomaliesOutput,
            variables={
                "document": document_view(invoice),
                "history": history,
                "signals": local.data["kinds"],
            },
            local_output=fallback,
            engine_name="anomaly-local",
        )
        codes = sorted({a.code for a in out.anomalies})
        expected_codes = [CODE_OF_KIND[k] for k in case.expected["kinds"]]
        pred = Prediction(
            label=anomaly_label(codes, expected_codes),
            data={"codes": codes},
        )
        return stamp(pred, result, started)

    def after(self, case: Case) -> None:
        if case.split == "test":
            self.engine.record(invoice_of(case))


def score_anomalies(cases: Sequence[Case], preds: Sequence[Prediction]) -> dict[str, Any]:
    coarse = any("kinds" not in p.data for p in preds)
    if coarse:  # an LLM answers in the prompt's codes
        expected = [
            anomaly_label(
                [CODE_OF_KIND[k] for k in c.expected["kinds"]],
                [CODE_OF_KIND[k] for k in c.expected["kinds"]],
            )
            for c in cases
        ]
    else:
        expected = [anomaly_label(c.expected["kinds"], c.expected["kinds"]) for c in cases]
    for p in preds:
        p.confidence = None  # rules' confidence is not a probability of being right
    out = labelled(cases, preds, expected)
    flagged = [bool(p.data.get("codes")) for p in preds]
    truth = [bool(c.expected["kinds"]) for c in cases]
    tp = sum(f and t for f, t in zip(flagged, truth, strict=True))
    metrics = out["metrics"]
    metrics["flag_precision"] = round(tp / max(sum(flagged), 1), 4)
    metrics["flag_recall"] = round(tp / max(sum(truth), 1), 4)
    metrics["anomalous_cases"] = sum(truth)
    anomalous = [i for i, t in enumerate(truth) if t]
    metrics["anomalous_accuracy"] = round(
        scorers.accuracy(
            [preds[i].ranked[0] if preds[i].ranked else preds[i].label for i in anomalous],
            [expected[i] for i in anomalous],
        ),
        4,
    )
    return out


register(
    EvalTask(
        name="anomalies",
        prompt="anomalies",
        output_model=AnomaliesOutput,
        runner=AnomalyRunner,
        score=score_anomalies,
        gates=(Gate("macro_f1"), Gate("flag_precision"), Gate("flag_recall")),
        description="anomaly and duplicate detection on the received stream",
    )
)
