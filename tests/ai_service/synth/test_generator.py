"""The synthetic company generator: seeded, realistic, and labelled so engines can be scored."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest

from ai_service.synth import AnomalyKind, SyntheticCompany, generate_company, generate_dataset
from dte_core.rut import check_digit

KINDS = ("construction", "restaurant", "it_services")


@pytest.fixture(scope="module", params=KINDS)
def company(request: pytest.FixtureRequest) -> SyntheticCompany:
    return generate_company(request.param, seed=4242)


def test_same_seed_same_data_and_another_seed_other_data() -> None:
    first = generate_dataset(7, n_invoices=150).model_dump_json()
    assert first == generate_dataset(7, n_invoices=150).model_dump_json()
    assert first != generate_dataset(8, n_invoices=150).model_dump_json()


def test_json_round_trip() -> None:
    company = generate_company("restaurant", 3, n_invoices=120)
    again = SyntheticCompany.model_validate_json(company.model_dump_json())
    assert again == company


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown company kind"):
        generate_company("bakery", 1)


def test_every_rut_has_a_valid_check_digit(company: SyntheticCompany) -> None:
    ruts = {company.context.company_rut, *(s.rut for s in company.context.suppliers)}
    ruts |= {d.invoice.emisor_rut for d in company.documents}
    assert len(ruts) > 10
    for rut in ruts:
        assert check_digit(rut.number) == rut.dv
    assert {d.invoice.receptor_rut for d in company.documents} == {company.context.company_rut}


def test_clean_documents_add_up(company: SyntheticCompany) -> None:
    clean = [d for d in company.documents if not d.label.anomalies]
    assert len(clean) > 500
    for doc in clean:
        inv = doc.invoice
        assert sum(line.amount for line in inv.lines) == inv.neto + inv.exento
        assert inv.iva == round(inv.neto * Decimal("0.19"))
        assert inv.total == inv.neto + inv.iva + inv.exento
        assert inv.fecha <= doc.received_at


def test_wording_varies_like_real_invoices(company: SyntheticCompany) -> None:
    names_by_product: dict[str, set[str]] = defaultdict(set)
    for doc in company.documents:
        for line, label in zip(doc.invoice.lines, doc.label.lines, strict=True):
            names_by_product[label.product_key].add(line.name)
    varied = [k for k, names in names_by_product.items() if len(names) >= 3]
    assert len(varied) >= 5, "products should appear under several wordings"
    all_names = {n for names in names_by_product.values() for n in names}
    assert any(n.isupper() for n in all_names) and any(not n.isupper() for n in all_names)


def test_abbreviations_and_dropped_accents_appear() -> None:
    company = generate_company("construction", 4242)
    names = {line.name for d in company.documents for line in d.invoice.lines}
    assert any("CEM" in n.upper() and "PORTLAND" in n.upper() for n in names)
    assert any(n.startswith(("Serv.", "SERV", "ARR", "Arr.")) for n in names)
    assert any("GRUA" in n.upper() for n in names), "accents dropped somewhere"


def test_prices_drift_upwards_over_time(company: SyntheticCompany) -> None:
    by_item: dict[tuple[str, str], list[tuple[object, Decimal]]] = defaultdict(list)
    for doc in company.documents:
        if doc.label.anomalies or doc.invoice.tipo_dte == 61:
            continue
        for line, label in zip(doc.invoice.lines, doc.label.lines, strict=True):
            assert line.unit_price is not None
            by_item[(str(doc.invoice.emisor_rut), label.product_key)].append(
                (doc.invoice.fecha, line.unit_price)
            )
    rises = []
    for series in by_item.values():
        if len(series) >= 8:
            series.sort()
            third = len(series) // 3
            early = sum(p for _, p in series[:third]) / third
            late = sum(p for _, p in series[-third:]) / third
            rises.append(late > early)
    assert len(rises) >= 5 and sum(rises) / len(rises) >= 0.8


def test_purchase_orders_receipts_and_references_resolve(company: SyntheticCompany) -> None:
    ctx = company.context
    if not ctx.purchase_orders:
        pytest.skip("kind without purchase orders")
    received: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    receipts_per_po: dict[str, int] = defaultdict(int)
    for receipt in ctx.receipts:
        receipts_per_po[receipt.po_number] += 1
        assert receipt.guia_folio is not None
        for line in receipt.lines:
            received[(receipt.po_number, line.po_line_no)] += line.quantity
    for po in ctx.purchase_orders:
        for line in po.lines:
            assert line.quantity_received == received[(po.number, line.line_no)]
            assert line.quantity_received <= line.quantity
    assert any(n >= 2 for n in receipts_per_po.values()), "some deliveries are partial"
    assert any(
        pl.quantity_received < pl.quantity for po in ctx.purchase_orders for pl in po.lines
    ), "some orders are never received in full"
    with_oc = [d for d in company.documents if d.invoice.references_of("801")]
    assert with_oc
    for doc in with_oc:
        po = ctx.po_by_number[doc.invoice.references_of("801")[0].folio_ref]
        assert po.supplier_rut == doc.invoice.emisor_rut
        assert po.project_code == doc.label.project_code
        guias = doc.invoice.references_of("52")
        assert guias, "goods against an OC arrive with a guía de despacho"
        key = (str(doc.invoice.emisor_rut), int(guias[0].folio_ref))
        assert ctx.receipts_by_guia[key][0].po_number == po.number
    assert any(d.invoice.delivery_address for d in company.documents)


def test_decisions_are_the_labels_of_accepted_documents(company: SyntheticCompany) -> None:
    ctx = company.context
    codes = set(ctx.account_by_code)
    projects = set(ctx.project_by_code)
    decisions = {d.invoice_key: d for d in ctx.decisions}
    for doc in company.documents:
        if not doc.label.decided:
            assert doc.anomaly_kinds & {
                AnomalyKind.EXACT_DUPLICATE,
                AnomalyKind.FUZZY_DUPLICATE,
            }
            continue
        decision = decisions[doc.invoice.key]
        assert decision.account_code == doc.label.account_code in codes
        assert decision.project_code == doc.label.project_code in projects
        for label in doc.label.lines:
            assert decision.line_account(label.line_no) == label.account_code in codes
    assert len({d.label.account_code for d in company.documents}) >= 8


def test_split_leaks_nothing_from_the_future(company: SyntheticCompany) -> None:
    ctx, future = company.split(0.7)
    known = {inv.key for inv in ctx.invoices}
    assert len(future) == len(company.documents) - int(len(company.documents) * 0.7)
    assert {d.invoice_key for d in ctx.decisions} <= known
    first_future = future[0].received_at
    past = company.documents[: len(company.documents) - len(future)]
    assert all(d.received_at <= first_future for d in past)
    fresh = [d for d in future if d.invoice.key not in {d.invoice.key for d in past}]
    assert fresh and all(d.invoice.key not in known for d in fresh)
    with pytest.raises(ValueError):
        company.split(1.0)
