"""Hand-built received invoices, POs and receipts for the anomaly and PO-reconciliation rule
tests, and the streaming evaluation both engines are scored with on generated companies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from ai_service.context import (
    CompanyContext,
    CompanyPolicy,
    ExpenseAccount,
    InvoiceLine,
    InvoiceReference,
    PurchaseOrder,
    PurchaseOrderLine,
    Receipt,
    ReceiptLine,
    ReceivedInvoice,
    Supplier,
)
from ai_service.synth import SyntheticCompany, SyntheticInvoice
from dte_core.rut import Rut, check_digit


def rut(number: int) -> Rut:
    return Rut(number, check_digit(number))


COMPANY = rut(76086428)
OTHER_COMPANY = rut(77777777)
FERRETERIA = rut(76123456)
ARIDOS = rut(76234567)
NEWCOMER = rut(78345678)
DAY = date(2026, 3, 10)

Line = tuple[str, float, int]  # name, quantity, unit price


def invoice(
    folio: int,
    lines: Sequence[Line],
    *,
    emisor: Rut = FERRETERIA,
    tipo: int = 33,
    fecha: date = DAY,
    refs: Sequence[tuple[str, str]] = (),
    receptor: Rut = COMPANY,
    **totals: int,
) -> ReceivedInvoice:
    """A document whose totals add up unless ``totals`` overrides some (neto, iva, total...)."""
    built = [
        InvoiceLine(
            line_no=n,
            name=name,
            quantity=Decimal(str(qty)),
            unit_price=Decimal(price),
            amount=int((Decimal(str(qty)) * price).quantize(Decimal(1), rounding=ROUND_HALF_UP)),
        )
        for n, (name, qty, price) in enumerate(lines, start=1)
    ]
    amount = sum(line.amount for line in built)
    neto, exento = (0, amount) if tipo == 34 else (amount, 0)
    iva = int((Decimal(neto) * Decimal("0.19")).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    values = {"neto": neto, "exento": exento, "iva": iva, "total": neto + exento + iva}
    values.update(totals)
    names = {FERRETERIA: "Ferretería Los Andes Ltda.", ARIDOS: "Áridos del Maipo SpA"}
    return ReceivedInvoice.model_validate(
        {
            "emisor_rut": emisor,
            "emisor_name": names.get(emisor, "Comercializadora Nueva SpA"),
            "receptor_rut": receptor,
            "tipo_dte": tipo,
            "folio": folio,
            "fecha": fecha,
            "tasa_iva": Decimal(19) if neto else None,
            "lines": built,
            "references": [
                InvoiceReference(line_no=n, tipo_doc_ref=t, folio_ref=f)
                for n, (t, f) in enumerate(refs, start=1)
            ],
            **values,
        }
    )


def po(
    number: str, lines: Sequence[Line], *, supplier: Rut = FERRETERIA, day: date = DAY
) -> PurchaseOrder:
    return PurchaseOrder(
        number=number,
        date=day - timedelta(days=20),
        supplier_rut=supplier,
        lines=[
            PurchaseOrderLine(
                line_no=n, product=name, quantity=Decimal(str(qty)), unit_price=Decimal(price)
            )
            for n, (name, qty, price) in enumerate(lines, start=1)
        ],
    )


def receipt(
    number: str,
    order: PurchaseOrder,
    quantities: dict[int, float],
    *,
    guia: int | None = None,
    day: date = DAY - timedelta(days=3),
) -> Receipt:
    return Receipt(
        number=number,
        date=day,
        po_number=order.number,
        supplier_rut=order.supplier_rut,
        guia_folio=guia,
        lines=[ReceiptLine(po_line_no=n, quantity=Decimal(str(q))) for n, q in quantities.items()],
    )


def context(
    invoices: Sequence[ReceivedInvoice] = (),
    *,
    company: Rut = COMPANY,
    pos: Sequence[PurchaseOrder] = (),
    receipts: Sequence[Receipt] = (),
    threshold: int = 5_000_000,
) -> CompanyContext:
    return CompanyContext(
        company_rut=company,
        company_name="Constructora Ejemplo SpA",
        accounts=[ExpenseAccount(code="5101001", name="Materiales")],
        suppliers=[
            Supplier(rut=FERRETERIA, name="Ferretería Los Andes Ltda."),
            Supplier(rut=ARIDOS, name="Áridos del Maipo SpA"),
        ],
        purchase_orders=list(pos),
        receipts=list(receipts),
        invoices=list(invoices),
        policy=CompanyPolicy(approval_threshold=threshold),
    )


def booked_context(
    company: SyntheticCompany, fraction: float
) -> tuple[CompanyContext, list[SyntheticInvoice]]:
    """The context after the first ``fraction`` of documents, holding only the documents the
    accountant booked (rejected duplicates never reach Odoo's books), and the later documents."""
    ctx, future = company.split(fraction)
    booked = {d.invoice_key for d in ctx.decisions}
    return ctx.replaced(invoices=[i for i in ctx.invoices if i.key in booked]), future
