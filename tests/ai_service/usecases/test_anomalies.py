"""Anomaly and duplicate detection: quality floors per anomaly type on held-out generated
companies, one focused test per rule (with the negatives that must stay quiet), determinism
and company isolation."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from ai_service.context import ReceivedInvoice
from ai_service.synth import AnomalyKind, generate_company
from ai_service.usecases.anomalies import (
    AnomalyDetector,
    AnomalySettings,
    AnomalyType,
    Severity,
)
from ai_service.usecases.common import ContextMismatchError
from ai_service.usecases.scoring import expected_calibration_error

from .received_builders import (
    ARIDOS,
    DAY,
    FERRETERIA,
    NEWCOMER,
    OTHER_COMPANY,
    booked_context,
    context,
    invoice,
    po,
    receipt,
)

# The engine was tuned on seeds 1-3; these seeds were first run to set the floors below.
HELD_OUT_SEEDS = (4242, 4243)
KINDS = ("construction", "restaurant", "it_services")

# measured on the held-out seeds, pooled over 3 kinds x 2 seeds (precision / recall): exact,
# vat, total, qty_over_po, new supplier, future date 1.00 / 1.00; fuzzy 0.84 / 1.00 (identical
# split parts with consecutive folios read as copies); price_spike 1.00 / 0.91; split 0.84 /
# 0.56 (recall is capped near 0.68: the first part to arrive has no other part to be seen
# with); credit notes 0.98 / 1.00. Floors sit a little below.
FLOORS: dict[AnomalyType, tuple[float, float]] = {
    AnomalyType.EXACT_DUPLICATE: (0.97, 0.97),
    AnomalyType.FUZZY_DUPLICATE: (0.75, 0.95),
    AnomalyType.PRICE_SPIKE: (0.90, 0.82),
    AnomalyType.VAT_ERROR: (0.97, 0.97),
    AnomalyType.TOTAL_MISMATCH: (0.97, 0.97),
    AnomalyType.QTY_OVER_PO: (0.92, 0.95),
    AnomalyType.NEW_SUPPLIER_LARGE_AMOUNT: (0.95, 0.95),
    AnomalyType.SPLIT_BELOW_THRESHOLD: (0.75, 0.48),
    AnomalyType.FUTURE_DATE: (0.97, 0.97),
    AnomalyType.CREDIT_NOTE_WITHOUT_VALID_REFERENCE: (0.90, 0.95),
}


SPLIT_GROUP_RECALL_FLOOR = 0.75
ECE_CEILING = 0.06


def ids(result: object) -> set[AnomalyType]:
    return {a.type for a in result.decision.alerts}  # type: ignore[attr-defined]


def alerts_of(result: object, kind: AnomalyType) -> list:  # type: ignore[type-arg]
    return [a for a in result.decision.alerts if a.type is kind]  # type: ignore[attr-defined]


# --- quality on held-out generated data ---------------------------------------------------------


@dataclass
class Evaluation:
    stats: dict[AnomalyType, Counter[str]]  # tp / fp / fn per type
    calibration: list[tuple[float, bool]]  # (alert confidence, alert right)
    #: split groups (the ids of their parts) and the parts flagged
    split_groups: set[frozenset[str]]
    split_flagged: set[str]


@pytest.fixture(scope="module")
def scored() -> Evaluation:
    """Stream each company's later 70 % of documents through the detector in order of
    reception, booking each accepted document afterwards, as the service would."""
    out = Evaluation({t: Counter() for t in AnomalyType}, [], set(), set())
    for seed in HELD_OUT_SEEDS:
        for kind in KINDS:
            company = generate_company(kind, seed, anomaly_rate=0.15)
            ctx, future = booked_context(company, 0.3)
            detector = AnomalyDetector(ctx)
            for doc in future:
                result = detector.check(doc.invoice, received_on=doc.received_at)
                assert result.decision is not None
                found = ids(result)
                truth = {AnomalyType(k.value) for k in doc.anomaly_kinds}
                for t in found | truth:
                    key = "tp" if t in found and t in truth else "fp" if t in found else "fn"
                    out.stats[t][key] += 1
                out.calibration += [(a.confidence, a.type in truth) for a in result.decision.alerts]
                for label in doc.label.anomalies:
                    if label.kind is AnomalyKind.SPLIT_BELOW_THRESHOLD:
                        group = frozenset({doc.id, *label.related_ids})
                        out.split_groups.add(frozenset(f"{seed}:{i}" for i in group))
                        if AnomalyType.SPLIT_BELOW_THRESHOLD in found:
                            out.split_flagged.add(f"{seed}:{doc.id}")
                if doc.label.decided:
                    detector.record(doc.invoice)
    return out


@pytest.mark.parametrize("kind", list(AnomalyType))
def test_precision_and_recall_floors(scored: Evaluation, kind: AnomalyType) -> None:
    c = scored.stats[kind]
    assert c["tp"] + c["fn"] >= 15, "too few labelled examples to measure"
    precision = c["tp"] / (c["tp"] + c["fp"])
    recall = c["tp"] / (c["tp"] + c["fn"])
    p_floor, r_floor = FLOORS[kind]
    assert precision >= p_floor, (kind, c)
    assert recall >= r_floor, (kind, c)


def test_most_splits_are_caught_on_some_part(scored: Evaluation) -> None:
    caught = [g for g in scored.split_groups if g & scored.split_flagged]
    assert len(scored.split_groups) >= 15
    assert len(caught) / len(scored.split_groups) >= SPLIT_GROUP_RECALL_FLOOR


def test_alert_confidence_is_calibrated(scored: Evaluation) -> None:
    confidence = [c for c, _ in scored.calibration]
    correct = [ok for _, ok in scored.calibration]
    assert expected_calibration_error(confidence, correct) <= ECE_CEILING


def test_labels_match_the_engine_types() -> None:
    assert {k.value for k in AnomalyKind} == {t.value for t in AnomalyType}


# --- duplicates ---------------------------------------------------------------------------------

CEMENT = ("Cemento Portland saco 25 kg", 100, 4590)
SAND = ("Arena gruesa m3", 10, 21500)


def test_exact_duplicate_points_at_the_original() -> None:
    original = invoice(12345, [CEMENT])
    result = AnomalyDetector(context([original])).check(original, received_on=DAY)
    [alert] = alerts_of(result, AnomalyType.EXACT_DUPLICATE)
    assert alert.duplicate_of == original.key
    assert alert.severity is Severity.HIGH
    assert result.needs_review and result.engine == "local"
    assert AnomalyType.FUZZY_DUPLICATE not in ids(result)


@pytest.mark.parametrize(
    ("folio", "how"),
    [(12354, "two digits swapped"), (12346, "one digit differs"), (1234, "a digit dropped")],
)
def test_fuzzy_duplicate_on_a_retyped_folio(folio: int, how: str) -> None:
    original = invoice(12345, [CEMENT, SAND])
    copy = invoice(folio, [CEMENT, SAND], fecha=DAY + timedelta(days=2))
    [alert] = alerts_of(
        AnomalyDetector(context([original])).check(copy, received_on=DAY + timedelta(days=3)),
        AnomalyType.FUZZY_DUPLICATE,
    )
    assert alert.duplicate_of == original.key
    assert how in alert.message
    assert alert.confidence >= 0.9


def test_the_same_document_read_from_a_pdf_is_a_fuzzy_duplicate() -> None:
    xml = invoice(40871, [CEMENT, SAND])
    # the PDF extraction misread one folio digit and lost the line split, the totals agree
    pdf = invoice(40671, [("CEMENTO Y ARENA SEGUN GUIA", 1, xml.neto)])
    [alert] = alerts_of(
        AnomalyDetector(context([xml])).check(pdf, received_on=DAY), AnomalyType.FUZZY_DUPLICATE
    )
    assert alert.duplicate_of == xml.key


def test_same_amount_from_another_supplier_or_a_month_later_is_no_duplicate() -> None:
    original = invoice(12345, [CEMENT])
    detector = AnomalyDetector(context([original]))
    other_supplier = invoice(12346, [CEMENT], emisor=ARIDOS)
    next_month = invoice(12346, [CEMENT], fecha=DAY + timedelta(days=31))
    credit_note = invoice(12346, [CEMENT], tipo=61, refs=[("33", "12345")])
    for doc in (other_supplier, next_month, credit_note):
        found = ids(detector.check(doc, received_on=doc.fecha))
        assert not found & {AnomalyType.EXACT_DUPLICATE, AnomalyType.FUZZY_DUPLICATE}, doc.key


# --- prices -------------------------------------------------------------------------------------


def cement_history(prices: list[int]) -> list:  # type: ignore[type-arg]
    wordings = [
        "Cemento Portland saco 25 kg",
        "CEMENTO PORTLAND SACO 25 KG",
        "Cemento Portland saco 25kg",
    ]
    return [
        invoice(
            1000 + i, [(wordings[i % 3], 50, p)], fecha=DAY - timedelta(days=15 * (len(prices) - i))
        )
        for i, p in enumerate(prices)
    ]


def test_price_spike_against_the_supplier_history_with_its_range() -> None:
    history = cement_history([4500, 4550, 4590, 4620, 4600, 4580])
    doc = invoice(2000, [("CEMENTO PORTLAND SACO 25KG", 50, 9900), SAND])
    [alert] = alerts_of(
        AnomalyDetector(context(history)).check(doc, received_on=DAY), AnomalyType.PRICE_SPIKE
    )
    assert alert.line_no == 1
    assert alert.expected is not None and alert.expected.field == "PrcItem"
    assert alert.expected.low < 4590 < alert.expected.high < 9900
    assert alert.expected.actual == 9900


def test_a_legit_price_increase_within_range_is_not_flagged() -> None:
    history = cement_history([4500, 4550, 4590, 4620, 4600, 4580])
    doc = invoice(2000, [("Cemento Portland saco 25 kg", 50, 4990)])  # +9 %
    assert AnomalyType.PRICE_SPIKE not in ids(
        AnomalyDetector(context(history)).check(doc, received_on=DAY)
    )


def test_prices_rise_over_time_widen_the_band() -> None:
    old = [invoice(1000 + i, [CEMENT], fecha=DAY - timedelta(days=700 + i)) for i in range(5)]
    doc = invoice(2000, [("Cemento Portland saco 25 kg", 100, 6300)])  # +37 % after two years
    assert AnomalyType.PRICE_SPIKE not in ids(
        AnomalyDetector(context(old)).check(doc, received_on=DAY)
    )


def test_no_spike_without_enough_history_or_from_another_suppliers_prices() -> None:
    doc = invoice(2000, [("Cemento Portland saco 25 kg", 50, 9900)])
    short = cement_history([4500, 4550])
    assert AnomalyType.PRICE_SPIKE not in ids(
        AnomalyDetector(context(short)).check(doc, received_on=DAY)
    )
    others = [i.model_copy(update={"emisor_rut": ARIDOS}) for i in cement_history([4500] * 6)]
    assert AnomalyType.PRICE_SPIKE not in ids(
        AnomalyDetector(context(others)).check(doc, received_on=DAY)
    )


def test_alike_wordings_of_different_products_keep_separate_prices() -> None:
    # "arnés" and "casco ... c/arnés" share words; pooled, the cascos' prices would make a
    # usual arnés price look like a spike
    casco, arnes = ("CASCO SEGURIDAD C/ARNES", 10, 5990), ("ARNES SEGURIDAD C/LINEA VIDA", 2, 45990)
    history = [
        invoice(
            1000 + i, [casco, arnes] if i % 2 else [casco], fecha=DAY - timedelta(days=10 * (6 - i))
        )
        for i in range(6)
    ]
    doc = invoice(2000, [("ARNES SEGURIDAD C/LINEA VIDA", 2, 46990)])
    assert AnomalyType.PRICE_SPIKE not in ids(
        AnomalyDetector(context(history)).check(doc, received_on=DAY)
    )


# --- arithmetic ---------------------------------------------------------------------------------


def test_vat_error_says_the_iva_expected() -> None:
    doc = invoice(1, [CEMENT], iva=80_000, total=459_000 + 80_000)
    [alert] = alerts_of(
        AnomalyDetector(context()).check(doc, received_on=DAY), AnomalyType.VAT_ERROR
    )
    assert alert.expected is not None and alert.expected.low == alert.expected.high == 87_210
    assert AnomalyType.TOTAL_MISMATCH not in ids(
        AnomalyDetector(context()).check(doc, received_on=DAY)
    )


def test_iva_rounds_half_up_and_exentas_carry_none() -> None:
    detector = AnomalyDetector(context())
    half = invoice(1, [("Clavos", 1, 50)])  # 19 % of 50 is 9.5 -> 10
    assert half.iva == 10 and AnomalyType.VAT_ERROR not in ids(
        detector.check(half, received_on=DAY)
    )
    exenta = invoice(2, [("Flete", 1, 100_000)], tipo=34)
    assert AnomalyType.VAT_ERROR not in ids(detector.check(exenta, received_on=DAY))
    with_iva = invoice(3, [("Flete", 1, 100_000)], tipo=34, iva=19_000, total=119_000)
    assert AnomalyType.VAT_ERROR in ids(detector.check(with_iva, received_on=DAY))


def test_total_mismatch_on_totals_and_on_lines() -> None:
    detector = AnomalyDetector(context())
    bad_total = invoice(1, [CEMENT], total=459_000)  # IVA left out of MntTotal
    [alert] = alerts_of(detector.check(bad_total, received_on=DAY), AnomalyType.TOTAL_MISMATCH)
    assert alert.expected is not None and alert.expected.low == 459_000 + 87_210
    lines_off = invoice(2, [CEMENT], neto=470_000, iva=89_300, total=559_300)
    [alert] = alerts_of(detector.check(lines_off, received_on=DAY), AnomalyType.TOTAL_MISMATCH)
    assert "lines add up to 459.000" in alert.message
    assert not alerts_of(
        detector.check(invoice(3, [CEMENT, SAND]), received_on=DAY), AnomalyType.TOTAL_MISMATCH
    )


# --- purchase orders ----------------------------------------------------------------------------


def test_qty_over_po_against_what_is_open_and_received() -> None:
    order = po("4500001", [("Cemento Portland saco 25 kg", 100, 4590)])
    rec = receipt("REC/1", order, {1: 100}, guia=501)
    ctx = context(pos=[order], receipts=[rec])
    over = invoice(
        10, [("CEM. PORTLAND 25KG", 140, 4590)], refs=[("801", "4500001"), ("52", "501")]
    )
    [alert] = alerts_of(AnomalyDetector(ctx).check(over, received_on=DAY), AnomalyType.QTY_OVER_PO)
    assert alert.severity is Severity.HIGH
    assert (
        alert.expected is not None and alert.expected.high == 100 and alert.expected.actual == 140
    )
    assert alert.related == ["4500001"]
    exact = invoice(
        11, [("CEM. PORTLAND 25KG", 100, 4590)], refs=[("801", "4500001"), ("52", "501")]
    )
    assert AnomalyType.QTY_OVER_PO not in ids(AnomalyDetector(ctx).check(exact, received_on=DAY))


def test_qty_over_po_counts_what_earlier_invoices_billed() -> None:
    order = po("4500002", [("Arena gruesa m3", 10, 21500)])
    first = invoice(
        20,
        [("ARENA GRUESA M3", 6, 21500)],
        refs=[("801", "4500002")],
        fecha=DAY - timedelta(days=5),
    )
    ctx = context([first], pos=[order])  # a service-like PO: no receipts, judged on ordered
    second = invoice(21, [("ARENA GRUESA M3", 6, 21500)], refs=[("801", "4500002")])
    [alert] = alerts_of(
        AnomalyDetector(ctx).check(second, received_on=DAY), AnomalyType.QTY_OVER_PO
    )
    assert "above the 4" in alert.message
    last = invoice(22, [("ARENA GRUESA M3", 4, 21500)], refs=[("801", "4500002")])
    assert AnomalyType.QTY_OVER_PO not in ids(AnomalyDetector(ctx).check(last, received_on=DAY))


# --- suppliers, approval, dates, notes ----------------------------------------------------------


def test_new_supplier_large_amount_and_its_negatives() -> None:
    detector = AnomalyDetector(context(threshold=5_000_000))
    big = invoice(7, [("Servicio de asesoría", 1, 3_000_000)], emisor=NEWCOMER)
    [alert] = alerts_of(detector.check(big, received_on=DAY), AnomalyType.NEW_SUPPLIER_LARGE_AMOUNT)
    assert alert.expected is not None and alert.expected.high == 2_500_000  # half the threshold
    small = invoice(8, [("Servicio de asesoría", 1, 300_000)], emisor=NEWCOMER)
    assert AnomalyType.NEW_SUPPLIER_LARGE_AMOUNT not in ids(detector.check(small, received_on=DAY))
    known = AnomalyDetector(context([invoice(1, [CEMENT], fecha=DAY - timedelta(days=40))]))
    big_known = invoice(9, [("Cemento", 1000, 4590)])
    assert AnomalyType.NEW_SUPPLIER_LARGE_AMOUNT not in ids(known.check(big_known, received_on=DAY))
    custom = AnomalyDetector(context(), settings=AnomalySettings(new_supplier_amount=10_000_000))
    assert AnomalyType.NEW_SUPPLIER_LARGE_AMOUNT not in ids(custom.check(big, received_on=DAY))


def part(folio: int, qty: int, day: int, emisor=FERRETERIA):  # type: ignore[no-untyped-def]
    return invoice(
        folio,
        [("Cemento Portland saco 25 kg", qty, 4590)],
        emisor=emisor,
        fecha=DAY + timedelta(days=day),
    )


def test_split_below_threshold_names_the_other_parts() -> None:
    # each 0.8-0.95 of the 5 M threshold (with IVA), three within three days
    first, second = part(100, 800, 0), part(101, 850, 1)
    detector = AnomalyDetector(context([first, second], threshold=5_000_000))
    third = part(102, 820, 2)
    [alert] = alerts_of(
        detector.check(third, received_on=DAY + timedelta(days=3)),
        AnomalyType.SPLIT_BELOW_THRESHOLD,
    )
    assert set(alert.related) == {first.key, second.key}
    assert alert.expected is not None and alert.expected.high == 5_000_000
    assert alert.expected.actual == first.total + second.total + third.total


def test_no_split_for_one_invoice_far_apart_other_suppliers_or_a_routine_pattern() -> None:
    def split_found(history: list[ReceivedInvoice], doc: ReceivedInvoice) -> bool:
        result = AnomalyDetector(context(history)).check(doc, received_on=doc.fecha)
        return AnomalyType.SPLIT_BELOW_THRESHOLD in ids(result)

    first = part(100, 800, 0)
    assert split_found([first], part(101, 810, 1))  # the control: two parts do add up
    assert not split_found([first], part(101, 100, 1))  # a small invoice is no part
    assert not split_found([first], part(101, 810, 30))
    assert not split_found([first], part(101, 810, 1, ARIDOS))
    # a supplier that bills two near-threshold invoices every month (two premises' rent) does so
    routine = [part(10 + 2 * m + k, 800, -30 * (m + 1) + k) for m in range(4) for k in range(2)]
    assert not split_found([*routine, first], part(101, 810, 1))
    assert split_found([*routine[:4], first], part(101, 810, 1))  # two bursts are not a habit


def test_future_date() -> None:
    detector = AnomalyDetector(context())
    doc = invoice(5, [CEMENT], fecha=DAY + timedelta(days=20))
    [alert] = alerts_of(detector.check(doc, received_on=DAY), AnomalyType.FUTURE_DATE)
    assert alert.severity is Severity.HIGH and "20 day(s)" in alert.message
    assert AnomalyType.FUTURE_DATE not in ids(detector.check(invoice(6, [CEMENT]), received_on=DAY))


def test_credit_notes_need_a_known_document_with_something_left_to_credit() -> None:
    factura = invoice(500, [CEMENT], fecha=DAY - timedelta(days=10))
    ctx = context([factura])
    detector = AnomalyDetector(ctx)
    good = invoice(900, [("Cemento Portland saco 25 kg", 30, 4590)], tipo=61, refs=[("33", "500")])
    assert AnomalyType.CREDIT_NOTE_WITHOUT_VALID_REFERENCE not in ids(
        detector.check(good, received_on=DAY)
    )
    bare = invoice(901, [("Devolución", 1, 10_000)], tipo=61)
    ghost = invoice(902, [("Devolución", 1, 10_000)], tipo=61, refs=[("33", "77777")])
    other_supplier = invoice(
        903, [("Devolución", 1, 10_000)], tipo=61, refs=[("33", "500")], emisor=ARIDOS
    )
    for note in (bare, ghost, other_supplier):
        [alert] = alerts_of(
            detector.check(note, received_on=DAY), AnomalyType.CREDIT_NOTE_WITHOUT_VALID_REFERENCE
        )
        assert alert.severity is Severity.HIGH
    # after a first note of 30 sacos, crediting 80 more exceeds the 100 billed
    detector.record(good)
    too_much = invoice(
        904, [("Cemento Portland saco 25 kg", 80, 4590)], tipo=61, refs=[("33", "500")]
    )
    [alert] = alerts_of(
        detector.check(too_much, received_on=DAY), AnomalyType.CREDIT_NOTE_WITHOUT_VALID_REFERENCE
    )
    assert alert.expected is not None and alert.expected.high == 70 * 4590
    assert set(alert.related) == {factura.key, good.key}


# --- envelope, determinism, isolation, caching --------------------------------------------------


def test_a_clean_document_has_no_alerts_and_needs_no_review() -> None:
    history = cement_history([4500, 4550, 4590, 4620])
    result = AnomalyDetector(context(history)).check(invoice(3000, [CEMENT]), received_on=DAY)
    assert result.decision is not None and result.decision.alerts == []
    assert not result.needs_review and not result.abstained and result.engine == "local"
    assert result.fallback_reason is None


def test_deterministic_across_instances_and_calls() -> None:
    company = generate_company("construction", 4242, anomaly_rate=0.15)
    ctx, future = booked_context(company, 0.5)
    a, b = AnomalyDetector(ctx), AnomalyDetector(ctx)
    for doc in future[:150]:
        first = a.check(doc.invoice, received_on=doc.received_at).model_dump_json()
        assert first == a.check(doc.invoice, received_on=doc.received_at).model_dump_json()
        assert first == b.check(doc.invoice, received_on=doc.received_at).model_dump_json()


def test_only_the_given_companys_context_is_seen() -> None:
    original = invoice(12345, [CEMENT])
    other = context([original], company=OTHER_COMPANY)
    # company B booked this supplier's folio; company A receiving the same folio is no duplicate
    mine = AnomalyDetector(context())
    assert AnomalyType.EXACT_DUPLICATE not in ids(mine.check(original, received_on=DAY))
    with pytest.raises(ContextMismatchError):
        AnomalyDetector(other).check(original, received_on=DAY)  # addressed to company A
    with pytest.raises(ContextMismatchError):
        mine.record(original.model_copy(update={"receptor_rut": OTHER_COMPANY}))


def test_checks_repeat_and_see_only_their_own_context() -> None:
    detector = AnomalyDetector(context([invoice(12345, [CEMENT])]))
    first = detector.check(invoice(12345, [CEMENT]), received_on=DAY)
    again = detector.check(invoice(12345, [CEMENT]), received_on=DAY)
    assert first == again and AnomalyType.EXACT_DUPLICATE in ids(first)
    # another context gets its own index (nothing leaks between contexts)
    fresh = AnomalyDetector(context())
    assert ids(fresh.check(invoice(12345, [CEMENT]), received_on=DAY)) == set()


def test_received_on_defaults_to_today() -> None:
    tomorrow = date.today() + timedelta(days=30)
    result = AnomalyDetector(context()).check(invoice(1, [CEMENT], fecha=tomorrow))
    assert AnomalyType.FUTURE_DATE in ids(result)
