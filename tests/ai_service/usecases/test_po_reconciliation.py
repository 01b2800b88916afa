"""Purchase-order reconciliation: accuracy per outcome on held-out generated companies (with the
invoices' references and with them removed, so links must be inferred), one focused test per
outcome with the line pairs and deltas that explain it, tolerances, determinism and isolation."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest

from ai_service.context import InvoiceReference
from ai_service.synth import AnomalyKind, SyntheticCompany, SyntheticInvoice, generate_company
from ai_service.usecases.common import ContextMismatchError, UseCaseResult
from ai_service.usecases.po_matching import po_number_key
from ai_service.usecases.po_reconciliation import (
    PurchaseOrderReconciler,
    Reconciliation,
    ReconciliationOutcome,
    ReconciliationTolerances,
)
from ai_service.usecases.scoring import expected_calibration_error

from .received_builders import (
    ARIDOS,
    DAY,
    OTHER_COMPANY,
    booked_context,
    context,
    invoice,
    po,
    receipt,
)

Outcome = ReconciliationOutcome
HELD_OUT_SEEDS = (4242, 4243)
KINDS = ("construction", "restaurant", "it_services")

# measured on the held-out seeds (accuracy per true outcome): with references matched_exact,
# partial_delivery, over_invoiced, price_variance 1.00, no_po 0.998, line links 1408/1408;
# references removed: matched_exact and partial_delivery 1.00, no_po 0.998, price_variance
# 0.58. Without references an over-billing is not linked on purpose (po_matching._inferable),
# so over_invoiced has no floor there. No generated document has a qty_variance (invoices bill
# their guía exactly): the focused tests cover it. Floors sit a little below.
FLOORS_WITH_REFERENCES = {
    Outcome.MATCHED_EXACT: 0.97,
    Outcome.PARTIAL_DELIVERY: 0.97,
    Outcome.OVER_INVOICED: 0.95,
    Outcome.PRICE_VARIANCE: 0.9,
    Outcome.NO_PO: 0.98,
}
FLOORS_WITHOUT_REFERENCES = {
    Outcome.MATCHED_EXACT: 0.95,
    Outcome.PARTIAL_DELIVERY: 0.95,
    Outcome.NO_PO: 0.98,
}
LINE_LINK_FLOOR = 0.98
ECE_CEILING = 0.06


def true_outcomes(company: SyntheticCompany) -> dict[str, Outcome]:
    """The outcome each document should get, from the generator's truth: which PO line each
    line bills, what the accountant booked before it, the injected price spikes."""
    pos = {p.number: p for p in company.context.purchase_orders}
    billed: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    out = {}
    for doc in company.documents:
        links = [lab for lab in doc.label.lines if lab.po_number and lab.po_line_no]
        if not links or doc.invoice.tipo_dte not in (33, 34):
            out[doc.id] = Outcome.NO_PO
            continue
        after = dict(billed)
        for lab in links:
            qty = doc.invoice.lines[lab.line_no - 1].quantity or Decimal(0)
            key = (str(lab.po_number), int(lab.po_line_no or 0))
            after[key] = after.get(key, Decimal(0)) + qty
        lines = [(n, pl) for n in {str(lab.po_number) for lab in links} for pl in pos[n].lines]
        if any(after.get((n, pl.line_no), 0) > pl.quantity for n, pl in lines):
            out[doc.id] = Outcome.OVER_INVOICED
        elif AnomalyKind.PRICE_SPIKE in doc.anomaly_kinds:
            out[doc.id] = Outcome.PRICE_VARIANCE
        elif all(after.get((n, pl.line_no), 0) == pl.quantity for n, pl in lines):
            out[doc.id] = Outcome.MATCHED_EXACT
        else:
            out[doc.id] = Outcome.PARTIAL_DELIVERY
        if doc.label.decided:
            billed.update(after)
    return out


def outcome_of(result: UseCaseResult[Reconciliation]) -> ReconciliationOutcome:
    assert result.decision is not None
    return result.decision.outcome


def without_po_references(doc: SyntheticInvoice) -> SyntheticInvoice:
    refs = [r for r in doc.invoice.references if r.tipo_doc_ref not in ("801", "52")]
    return doc.model_copy(update={"invoice": doc.invoice.model_copy(update={"references": refs})})


@dataclass
class Evaluation:
    #: references kept (True) or removed (False) -> counts of (true, predicted) outcomes
    counts: dict[bool, Counter[tuple[str, str]]]
    #: (confidence, outcome right) of every document
    calibration: list[tuple[float, bool]]


@pytest.fixture(scope="module")
def scored() -> Evaluation:
    """Outcomes and line links of every later document, references kept and removed.
    Duplicates are left to the anomaly engine."""
    out = Evaluation({True: Counter(), False: Counter()}, [])
    for seed in HELD_OUT_SEEDS:
        for kind in KINDS:
            company = generate_company(kind, seed, anomaly_rate=0.15)
            truth = true_outcomes(company)
            for keep in (True, False):
                ctx, future = booked_context(company, 0.3)
                engine = PurchaseOrderReconciler(ctx)
                for doc in future:
                    if doc.anomaly_kinds & {
                        AnomalyKind.EXACT_DUPLICATE,
                        AnomalyKind.FUZZY_DUPLICATE,
                    }:
                        continue
                    seen = doc if keep else without_po_references(doc)
                    result = engine.reconcile(seen.invoice)
                    rec = result.candidates[0].value
                    out.counts[keep][(truth[doc.id].value, rec.outcome.value)] += 1
                    out.calibration.append((result.confidence, rec.outcome == truth[doc.id]))
                    pairs = {ln.invoice_line_no: (ln.po_number, ln.po_line_no) for ln in rec.lines}
                    for lab in doc.label.lines:
                        if lab.po_number and keep:
                            right = pairs.get(lab.line_no) == (lab.po_number, lab.po_line_no)
                            out.counts[keep][("link", str(right))] += 1
                    if doc.label.decided:
                        engine.record(doc.invoice)
    return out


def accuracy(counts: Counter[tuple[str, str]], outcome: Outcome) -> tuple[float, int]:
    total = sum(n for (t, _), n in counts.items() if t == outcome.value)
    right = counts[(outcome.value, outcome.value)]
    return right / max(1, total), total


@pytest.mark.parametrize("outcome", list(FLOORS_WITH_REFERENCES))
def test_accuracy_per_outcome_with_references(scored: Evaluation, outcome: Outcome) -> None:
    value, support = accuracy(scored.counts[True], outcome)
    assert support >= 10
    assert value >= FLOORS_WITH_REFERENCES[outcome], (outcome, scored.counts[True])


@pytest.mark.parametrize("outcome", list(FLOORS_WITHOUT_REFERENCES))
def test_accuracy_per_outcome_when_links_must_be_inferred(
    scored: Evaluation, outcome: Outcome
) -> None:
    value, support = accuracy(scored.counts[False], outcome)
    assert support >= 10
    assert value >= FLOORS_WITHOUT_REFERENCES[outcome], (outcome, scored.counts[False])


def test_line_links_follow_the_purchase_order_lines(
    scored: Evaluation,
) -> None:
    right, wrong = scored.counts[True][("link", "True")], scored.counts[True][("link", "False")]
    assert right + wrong > 300
    assert right / (right + wrong) >= LINE_LINK_FLOOR


def test_confidence_is_calibrated(scored: Evaluation) -> None:
    confidence = [c for c, _ in scored.calibration]
    correct = [ok for _, ok in scored.calibration]
    assert expected_calibration_error(confidence, correct) <= ECE_CEILING


# --- one outcome at a time ----------------------------------------------------------------------

CEMENT_PO = ("Cemento Portland saco 25 kg", 100, 4590)
REBAR_PO = ("Fierro estriado 12 mm x 6 m", 50, 8990)
REBAR8_PO = ("Fierro estriado 8 mm x 6 m", 40, 4190)


def setup(
    quantities: dict[int, float], tolerances: ReconciliationTolerances | None = None
) -> tuple[PurchaseOrderReconciler, list[tuple[str, str]]]:
    order = po("4500100", [CEMENT_PO, REBAR_PO, REBAR8_PO])
    rec = receipt("REC/1", order, quantities, guia=7001)
    engine = PurchaseOrderReconciler(context(pos=[order], receipts=[rec]), tolerances=tolerances)
    return engine, [("801", "4500100"), ("52", "7001")]


def test_matched_exact_three_way_with_abbreviated_wordings() -> None:
    engine, refs = setup({1: 100, 2: 50, 3: 40})
    doc = invoice(
        1,
        [
            ("FE A630 8MM 6MT", 40, 4190),
            ("CEM. PORTLAND 25KG", 100, 4590),
            ("FE A630 12MM 6MT", 50, 8990),
        ],
        refs=refs,
    )
    result = engine.reconcile(doc)
    rec = result.decision
    assert rec is not None and rec.outcome is Outcome.MATCHED_EXACT
    assert rec.linked_by == "reference"
    assert rec.purchase_orders == ["4500100"] and rec.receipts == ["REC/1"]
    # sizes keep the two rebars apart although their wordings are alike
    assert {(ln.invoice_line_no, ln.po_line_no) for ln in rec.lines} == {(1, 3), (2, 1), (3, 2)}
    assert all(ln.qty_delta == 0 and ln.price_delta == 0 for ln in rec.lines)
    assert result.engine == "local" and not result.needs_review and result.confidence >= 0.8
    assert {e.kind for e in result.evidence} >= {"purchase_order", "guia_despacho"}


def test_price_variance_with_the_delta_and_per_company_tolerance() -> None:
    engine, refs = setup({1: 100})
    doc = invoice(2, [("Cemento Portland saco 25 kg", 100, 4820)], refs=refs)  # +5 %
    rec = engine.reconcile(doc).decision
    assert rec is not None and rec.outcome is Outcome.PRICE_VARIANCE
    [line] = [ln for ln in rec.lines if ln.outcome is Outcome.PRICE_VARIANCE]
    assert line.price_delta == 230 and line.price_delta_pct == pytest.approx(5.01, abs=0.01)
    lenient, refs = setup({1: 100}, ReconciliationTolerances(price_pct=Decimal(6)))
    assert outcome_of(lenient.reconcile(doc)) is not Outcome.PRICE_VARIANCE
    by_pesos, refs = setup(
        {1: 100}, ReconciliationTolerances(price_pct=Decimal(0), price_abs_clp=Decimal(250))
    )
    assert outcome_of(by_pesos.reconcile(doc)) is not Outcome.PRICE_VARIANCE


def test_qty_variance_when_billing_other_than_the_guia_received() -> None:
    engine, refs = setup({1: 80})
    doc = invoice(3, [("Cemento Portland saco 25 kg", 90, 4590)], refs=refs)
    rec = engine.reconcile(doc).decision
    assert rec is not None and rec.outcome is Outcome.QTY_VARIANCE
    [line] = rec.lines
    assert (line.expected_qty, line.qty_delta, line.received) == (Decimal(80), Decimal(10), True)
    tolerant, refs = setup({1: 80}, ReconciliationTolerances(qty_pct=Decimal(15)))
    assert outcome_of(tolerant.reconcile(doc)) is Outcome.PARTIAL_DELIVERY


def test_partial_delivery_lists_what_stays_open() -> None:
    engine, refs = setup({1: 60})
    rec = engine.reconcile(
        invoice(4, [("Cemento Portland saco 25 kg", 60, 4590)], refs=refs)
    ).decision
    assert rec is not None and rec.outcome is Outcome.PARTIAL_DELIVERY
    open_lines = {(o.po_line_no, o.open_qty) for o in rec.open_po_lines}
    assert open_lines == {(1, Decimal(40)), (2, Decimal(50)), (3, Decimal(40))}


def test_over_invoiced_beyond_the_order_or_for_an_item_never_ordered() -> None:
    engine, refs = setup({1: 100, 2: 50, 3: 40})
    over = invoice(5, [("Cemento Portland saco 25 kg", 130, 4590)], refs=refs)
    rec = engine.reconcile(over).decision
    assert (
        rec is not None and rec.outcome is Outcome.OVER_INVOICED and rec.lines[0].ordered_qty == 100
    )
    extra = invoice(
        6,
        [*[CEMENT_PO, REBAR_PO, REBAR8_PO], ("Servicio de grúa horquilla", 1, 350_000)],
        refs=refs,
    )
    rec = engine.reconcile(extra).decision
    assert (
        rec is not None
        and rec.outcome is Outcome.OVER_INVOICED
        and rec.unmatched_invoice_lines == [4]
    )
    assert engine.reconcile(over).needs_review


def test_no_po_without_references_or_with_an_unknown_oc() -> None:
    engine, _ = setup({1: 100})
    plain = engine.reconcile(invoice(7, [("Casco de seguridad", 10, 5990)])).decision
    assert plain is not None and plain.outcome is Outcome.NO_PO and plain.lines == []
    unknown = engine.reconcile(invoice(8, [CEMENT_PO], refs=[("801", "4599999")])).decision
    assert (
        unknown is not None
        and unknown.outcome is Outcome.NO_PO
        and unknown.unknown_references == ["OC 4599999"]
    )
    # another supplier's OC number is not this supplier's order
    foreign = engine.reconcile(
        invoice(9, [CEMENT_PO], refs=[("801", "4500100")], emisor=ARIDOS)
    ).decision
    assert foreign is not None and foreign.outcome is Outcome.NO_PO


def _oc_ref(number: str) -> InvoiceReference:
    return InvoiceReference(line_no=1, tipo_doc_ref="801", folio_ref=number)


def test_inferred_link_from_an_unbilled_receipt_and_not_from_a_mere_open_po() -> None:
    order = po("4500200", [CEMENT_PO])
    received = receipt("REC/9", order, {1: 60})
    engine = PurchaseOrderReconciler(context(pos=[order], receipts=[received]))
    doc = invoice(10, [("CEMENTO PORTLAND SACO 25KG", 60, 4590)])
    result = engine.reconcile(doc)
    assert result.decision is not None and result.decision.linked_by == "inferred"
    assert result.decision.outcome is Outcome.PARTIAL_DELIVERY
    referenced = engine.reconcile(doc.model_copy(update={"references": [_oc_ref("4500200")]}))
    assert result.confidence < referenced.confidence
    other_qty = engine.reconcile(invoice(11, [("CEMENTO PORTLAND SACO 25KG", 35, 4590)])).decision
    assert other_qty is not None and other_qty.outcome is Outcome.NO_PO
    nothing_received = PurchaseOrderReconciler(context(pos=[order]))
    unreceived = invoice(12, [("CEMENTO PORTLAND SACO 25KG", 100, 4590)])
    assert outcome_of(nothing_received.reconcile(unreceived)) is Outcome.NO_PO


def test_one_invoice_billing_two_orders() -> None:
    first = po("4500301", [CEMENT_PO])
    second = po("4500302", [REBAR_PO])
    engine = PurchaseOrderReconciler(context(pos=[first, second]))
    doc = invoice(13, [CEMENT_PO, REBAR_PO], refs=[("801", "OC-4500301"), ("801", "4500302")])
    rec = engine.reconcile(doc).decision
    assert rec is not None and rec.outcome is Outcome.MATCHED_EXACT
    assert rec.purchase_orders == ["4500301", "4500302"]
    assert {(ln.invoice_line_no, ln.po_number) for ln in rec.lines} == {
        (1, "4500301"),
        (2, "4500302"),
    }


def test_pairs_maximise_the_whole_assignment() -> None:
    # "Pruebas de software" reads like line 1 but bills line 2 at its price and received quantity
    order = po(
        "4500400",
        [("Horas de desarrollo de software", 74, 29934), ("Horas de testing QA", 93, 22487)],
    )
    rec = receipt("REC/4", order, {1: 51, 2: 64}, guia=88)
    engine = PurchaseOrderReconciler(context(pos=[order], receipts=[rec]))
    doc = invoice(
        14,
        [("HH DES. BACKEND", 51, 29934), ("Pruebas de software", 64, 22487)],
        refs=[("52", "88")],
    )
    result = engine.reconcile(doc).decision
    assert result is not None and result.linked_by == "guia"
    assert {(ln.invoice_line_no, ln.po_line_no) for ln in result.lines} == {(1, 1), (2, 2)}


def test_what_earlier_invoices_billed_is_no_longer_open() -> None:
    order = po("4500500", [CEMENT_PO])
    r1 = receipt("REC/51", order, {1: 60}, guia=51, day=DAY - timedelta(days=10))
    r2 = receipt("REC/52", order, {1: 40}, guia=52, day=DAY - timedelta(days=2))
    first = invoice(
        20,
        [("Cemento Portland saco 25 kg", 60, 4590)],
        refs=[("801", "4500500"), ("52", "51")],
        fecha=DAY - timedelta(days=8),
    )
    engine = PurchaseOrderReconciler(context([first], pos=[order], receipts=[r1, r2]))
    second = invoice(
        21, [("Cemento Portland saco 25 kg", 40, 4590)], refs=[("801", "4500500"), ("52", "52")]
    )
    rec = engine.reconcile(second).decision
    assert rec is not None and rec.outcome is Outcome.MATCHED_EXACT
    assert rec.lines[0].previously_invoiced_qty == 60 and rec.open_po_lines == []
    engine.record(second)
    again = engine.reconcile(second.model_copy(update={"folio": 22})).decision
    assert again is not None and again.outcome is Outcome.OVER_INVOICED


def test_po_numbers_are_read_the_ways_suppliers_write_them() -> None:
    assert po_number_key("OC-4512") == po_number_key("oc 4512") == "4512"
    assert po_number_key("0004512") == "4512"


def test_notes_are_not_reconciled() -> None:
    engine, refs = setup({1: 100})
    note = invoice(30, [CEMENT_PO], tipo=61, refs=[*refs, ("33", "1")])
    assert outcome_of(engine.reconcile(note)) is Outcome.NO_PO


def test_deterministic_and_scoped_to_one_company() -> None:
    company = generate_company("construction", 4243, anomaly_rate=0.15)
    ctx, future = booked_context(company, 0.5)
    a, b = PurchaseOrderReconciler(ctx), PurchaseOrderReconciler(ctx)
    for doc in future[:150]:
        assert (
            a.reconcile(doc.invoice).model_dump_json() == b.reconcile(doc.invoice).model_dump_json()
        )
    doc = next(d for d in future if d.invoice.references_of("801"))
    with pytest.raises(ContextMismatchError):
        a.reconcile(doc.invoice.model_copy(update={"receptor_rut": OTHER_COMPANY}))
    # another company's context knows nothing of this company's orders
    engine, _ = setup({1: 100})
    theirs = PurchaseOrderReconciler(context(company=OTHER_COMPANY))
    theirs_doc = invoice(40, [CEMENT_PO], refs=[("801", "4500100")], receptor=OTHER_COMPANY)
    assert outcome_of(theirs.reconcile(theirs_doc)) is Outcome.NO_PO
    ours = engine.reconcile(invoice(41, [CEMENT_PO], refs=[("801", "4500100")]))
    assert outcome_of(ours) is Outcome.PARTIAL_DELIVERY


def test_a_left_over_line_pairs_by_its_exact_received_quantity() -> None:
    # "Ripio chancado" shares no word with "Gravilla 3/4 m3" and its price tripled: only the
    # guía's quantity says which PO line it bills, and the outcome is a price variance
    order = po("4500600", [("Arena gruesa m3", 25, 21986), ("Gravilla 3/4 m3", 17, 24688)])
    rec = receipt("REC/6", order, {1: 25, 2: 17}, guia=606)
    engine = PurchaseOrderReconciler(context(pos=[order], receipts=[rec]))
    doc = invoice(
        50,
        [("ARENA GRUESA POR M3", 25, 21986), ("Ripio chancado", 17, 69373)],
        refs=[("801", "4500600"), ("52", "606")],
    )
    result = engine.reconcile(doc).decision
    assert result is not None and result.outcome is Outcome.PRICE_VARIANCE
    assert result.unmatched_invoice_lines == []
    [line] = [ln for ln in result.lines if ln.invoice_line_no == 2]
    assert line.po_line_no == 2 and line.price_delta == 69373 - 24688
