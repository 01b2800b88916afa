"""Injected anomalies carry explicit labels an anomaly engine can be scored against."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from ai_service.synth import AnomalyKind, SyntheticCompany, SyntheticInvoice, generate_company


@pytest.fixture(scope="module", params=("construction", "restaurant", "it_services"))
def company(request: pytest.FixtureRequest) -> SyntheticCompany:
    return generate_company(request.param, seed=99)


def _of(company: SyntheticCompany, kind: AnomalyKind) -> list[SyntheticInvoice]:
    docs = [d for d in company.documents if kind in d.anomaly_kinds]
    assert len(docs) >= 2, f"{kind} should be injected at least twice"
    return docs


def _by_id(company: SyntheticCompany) -> dict[str, SyntheticInvoice]:
    return {d.id: d for d in company.documents}


def test_every_kind_is_present_and_ids_are_unique(company: SyntheticCompany) -> None:
    ids = [d.id for d in company.documents]
    assert len(ids) == len(set(ids))
    for kind in AnomalyKind:
        _of(company, kind)
    assert all(len(d.label.anomalies) <= 1 for d in company.documents)


def test_exact_duplicates(company: SyntheticCompany) -> None:
    ids = _by_id(company)
    for doc in _of(company, AnomalyKind.EXACT_DUPLICATE):
        original = ids[doc.label.anomalies[0].related_ids[0]]
        assert original.invoice == doc.invoice and original.id != doc.id
        assert not doc.label.decided


def test_fuzzy_duplicates_have_a_retyped_folio(company: SyntheticCompany) -> None:
    ids = _by_id(company)
    for doc in _of(company, AnomalyKind.FUZZY_DUPLICATE):
        original = ids[doc.label.anomalies[0].related_ids[0]].invoice
        inv = doc.invoice
        assert inv.emisor_rut == original.emisor_rut and inv.folio != original.folio
        assert len(str(inv.folio)) >= len(str(original.folio)) - 1
        assert (inv.total, inv.lines) == (original.total, original.lines)
        assert timedelta(0) <= inv.fecha - original.fecha <= timedelta(days=4)


def test_amount_anomalies(company: SyntheticCompany) -> None:
    for doc in _of(company, AnomalyKind.VAT_ERROR):
        inv = doc.invoice
        assert inv.iva != round(inv.neto * Decimal("0.19"))
        assert inv.total == inv.neto + inv.iva + inv.exento
    for doc in _of(company, AnomalyKind.TOTAL_MISMATCH):
        inv = doc.invoice
        assert inv.total != inv.neto + inv.iva + inv.exento
    for doc in _of(company, AnomalyKind.PRICE_SPIKE):
        line_no = doc.label.anomalies[0].line_no
        spiked = next(line for line in doc.invoice.lines if line.line_no == line_no)
        product = next(lab.product_key for lab in doc.label.lines if lab.line_no == line_no)
        usual = [
            line.unit_price
            for d in company.documents
            if not d.label.anomalies and d.invoice.emisor_rut == doc.invoice.emisor_rut
            for line, lab in zip(d.invoice.lines, d.label.lines, strict=True)
            if lab.product_key == product and line.unit_price
        ]
        assert usual and spiked.unit_price is not None
        assert spiked.unit_price > Decimal("1.5") * max(usual)


def test_qty_over_po(company: SyntheticCompany) -> None:
    for doc in _of(company, AnomalyKind.QTY_OVER_PO):
        anomaly = doc.label.anomalies[0]
        label = next(lab for lab in doc.label.lines if lab.line_no == anomaly.line_no)
        assert label.po_number and label.po_line_no
        po = company.context.po_by_number[label.po_number]
        ordered = po.lines[label.po_line_no - 1].quantity
        line = next(line for line in doc.invoice.lines if line.line_no == anomaly.line_no)
        assert line.quantity is not None and line.quantity > ordered


def test_new_supplier_large_amount(company: SyntheticCompany) -> None:
    known = {s.rut for s in company.context.suppliers}
    threshold = company.context.policy.approval_threshold
    for doc in _of(company, AnomalyKind.NEW_SUPPLIER_LARGE_AMOUNT):
        assert doc.invoice.emisor_rut not in known
        assert doc.invoice.total > threshold
        same = [d for d in company.documents if d.invoice.emisor_rut == doc.invoice.emisor_rut]
        assert same == [doc]


def test_split_below_threshold(company: SyntheticCompany) -> None:
    ids = _by_id(company)
    threshold = company.context.policy.approval_threshold
    for doc in _of(company, AnomalyKind.SPLIT_BELOW_THRESHOLD):
        group = [doc] + [ids[i] for i in doc.label.anomalies[0].related_ids]
        assert len(group) >= 2
        assert len({d.invoice.emisor_rut for d in group}) == 1
        assert all(d.invoice.total < threshold for d in group)
        assert sum(d.invoice.total for d in group) > threshold
        dates = [d.invoice.fecha for d in group]
        assert max(dates) - min(dates) <= timedelta(days=2)


def test_future_date(company: SyntheticCompany) -> None:
    for doc in _of(company, AnomalyKind.FUTURE_DATE):
        assert doc.invoice.fecha > doc.received_at
    normal = [d for d in company.documents if not d.label.anomalies]
    assert all(d.invoice.fecha <= d.received_at for d in normal)


def test_credit_notes(company: SyntheticCompany) -> None:
    issued = {
        (str(d.invoice.emisor_rut), d.invoice.folio)
        for d in company.documents
        if d.invoice.tipo_dte in (33, 34)
    }
    bad = _of(company, AnomalyKind.CREDIT_NOTE_WITHOUT_VALID_REFERENCE)
    for doc in bad:
        assert doc.invoice.tipo_dte == 61
        refs = doc.invoice.references
        assert not refs or (str(doc.invoice.emisor_rut), int(refs[0].folio_ref)) not in issued
    good = [d for d in company.documents if d.invoice.tipo_dte == 61 and not d.label.anomalies]
    assert good, "valid notas de crédito exist too, so the anomaly is not just 'tipo 61'"
    for doc in good:
        ref = doc.invoice.references[0]
        assert (str(doc.invoice.emisor_rut), int(ref.folio_ref)) in issued
