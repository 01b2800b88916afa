"""Freezing the simulated drafts into received documents with folios, and the context Odoo
holds at the end of the period."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from ai_service.context.models import (
    TPO_DOC_REF_GUIA_DESPACHO,
    TPO_DOC_REF_ORDEN_COMPRA,
    AccountingDecision,
    CompanyContext,
    CompanyPolicy,
    ExpenseAccount,
    InvoiceLine,
    InvoiceReference,
    LineDecision,
    Receipt,
    ReceivedInvoice,
    Supplier,
)
from ai_service.synth.labels import InvoiceLabel, LineLabel, SyntheticInvoice
from ai_service.synth.specs import ProjectSpec
from ai_service.synth.wording import strip_accents

if TYPE_CHECKING:
    from ai_service.synth.generator import _Draft, _World

IVA_RATE = Decimal("0.19")
#: share of lines the accountant books to a neighbouring account (real books are not consistent)
LABEL_NOISE = 0.03

# --- freezing drafts into documents --------------------------------------------------------


def freeze_documents(world: _World) -> list[SyntheticInvoice]:
    guias: dict[int, int] = {}
    for i, (_n, _when, _po, supplier, _lines) in sorted(
        enumerate(world.receipts), key=lambda item: (item[1][1], item[0])
    ):
        guias[i] = world.next_folio(supplier.rut, 52)
    world.guia_by_receipt = guias
    order = sorted(range(len(world.drafts)), key=lambda i: (world.drafts[i].fecha, i))
    built: dict[int, SyntheticInvoice] = {}
    for i in order:
        built[i] = _build(world, i, world.drafts[i], guias, built)
    return [built[i] for i in order]


def _build(
    world: _World,
    index: int,
    draft: _Draft,
    guias: dict[int, int],
    built: dict[int, SyntheticInvoice],
) -> SyntheticInvoice:
    supplier, project = draft.supplier, draft.project
    # an exempt supplier issues facturas exentas (34), and its notas de crédito are exempt too
    exento = supplier.spec.exento
    tipo = 34 if exento and draft.tipo_dte == 33 else draft.tipo_dte
    lines, labels = [], []
    for n, (product, qty, price, dsc) in enumerate(draft.lines, start=1):
        amount = int((qty * price).to_integral_value())
        lines.append(
            InvoiceLine(
                line_no=n,
                name=world.item_name(supplier, product),
                description=dsc,
                quantity=qty,
                unit=product.unit,
                unit_price=price,
                amount=amount,
            )
        )
        account = product.account
        if world.rng.random() < LABEL_NOISE and product.account in world.spec.confusions:
            account = world.rng.choice(world.spec.confusions[product.account])
        po_line = (
            next((pl.line_no for pl in draft.po.lines if pl.product == product.names[0]), None)
            if draft.po
            else None
        )
        labels.append(
            LineLabel(
                line_no=n,
                account_code=account,
                product_key=product.key,
                po_number=draft.po.number if draft.po else None,
                po_line_no=po_line,
            )
        )
    references = []
    if draft.po is not None:
        references.append(
            InvoiceReference(
                line_no=1,
                tipo_doc_ref=TPO_DOC_REF_ORDEN_COMPRA,
                folio_ref=draft.po.number,
                fecha_ref=draft.po.date,
            )
        )
    if draft.receipt_index is not None:
        when = world.receipts[draft.receipt_index][1]
        references.append(
            InvoiceReference(
                line_no=len(references) + 1,
                tipo_doc_ref=TPO_DOC_REF_GUIA_DESPACHO,
                folio_ref=str(guias[draft.receipt_index]),
                fecha_ref=when,
            )
        )
    project_code: str | None = project.code
    account_code = max(zip(lines, labels, strict=True), key=lambda pair: pair[0].amount)[
        1
    ].account_code
    if draft.credit_of is not None:
        original = built[draft.credit_of]
        references.append(
            InvoiceReference(
                line_no=1,
                tipo_doc_ref=str(original.invoice.tipo_dte),
                folio_ref=str(original.invoice.folio),
                fecha_ref=original.invoice.fecha,
                cod_ref=3,
                razon_ref=world.rng.choice(
                    ("Devolución de mercadería", "Diferencia de precio", "Descuento comercial")
                ),
            )
        )
        account_code, project_code = original.label.account_code, original.label.project_code
        labels = [lab.model_copy(update={"account_code": account_code}) for lab in labels]
    total = sum(line.amount for line in lines)
    neto, exe = (0, total) if exento else (total, 0)
    iva = int((neto * IVA_RATE).to_integral_value())
    ships = draft.po is not None or world.rng.random() < supplier.spec.ships
    address, comuna = (
        _address(world, project) if ships and supplier.spec.ships > 0 else (None, None)
    )
    invoice = ReceivedInvoice(
        emisor_rut=supplier.rut,
        emisor_name=supplier.spec.name,
        emisor_giro=supplier.spec.giro,
        receptor_rut=world.company_rut,
        tipo_dte=tipo,
        folio=world.next_folio(supplier.rut, tipo),
        fecha=draft.fecha,
        neto=neto,
        exento=exe,
        tasa_iva=Decimal(19) if neto else None,
        iva=iva,
        total=neto + iva + exe,
        lines=lines,
        references=references,
        delivery_address=address,
        delivery_comuna=comuna,
    )
    received = draft.fecha + timedelta(days=world.rng.choice((0, 0, 1, 1, 2, 3)))
    decided = datetime.combine(
        received + timedelta(days=world.rng.randint(1, 12)), time(9)
    ) + timedelta(minutes=world.rng.randrange(600))
    if world.rng.random() < 0.02 and draft.po is None and draft.credit_of is None:
        # the accountant moves a few invoices to another cost centre
        project_code = world.rng.choice(world.spec.projects).code
    label = InvoiceLabel(
        account_code=account_code, project_code=project_code, lines=labels, decided_at=decided
    )
    return SyntheticInvoice(
        id=f"{world.spec.kind}-{index:05d}", received_at=received, invoice=invoice, label=label
    )


def _address(world: _World, project: ProjectSpec) -> tuple[str, str]:
    address, comuna = project.address, project.comuna
    roll = world.rng.random()
    if roll < 0.3:
        address, comuna = strip_accents(address).upper(), strip_accents(comuna).upper()
    elif roll < 0.45:
        address = address.replace("Av.", world.rng.choice(("Avda.", "Avenida", "AV"))).replace(
            "Camino", "Cno."
        )
    if world.rng.random() < 0.15:
        address = f"{address} {world.rng.choice(('bodega obra', 'porteria', 'acceso 2', 'local'))}"
    return address, comuna


# --- the context Odoo holds ----------------------------------------------------------------


def odoo_context(world: _World, documents: list[SyntheticInvoice]) -> CompanyContext:
    receipts = [
        Receipt(
            number=n,
            date=when,
            po_number=po.number,
            supplier_rut=supplier.rut,
            guia_folio=world.guia_by_receipt.get(i),
            lines=lines,
        )
        for i, (n, when, po, supplier, lines) in enumerate(world.receipts)
    ]
    decisions, invoices, seen = [], [], set()
    for doc in documents:
        if doc.invoice.key in seen:
            continue
        seen.add(doc.invoice.key)
        invoices.append(doc.invoice)
        if doc.label.decided and doc.label.decided_at is not None:
            decisions.append(
                AccountingDecision(
                    invoice_key=doc.invoice.key,
                    decided_at=doc.label.decided_at,
                    account_code=doc.label.account_code,
                    project_code=doc.label.project_code,
                    lines=[
                        LineDecision(
                            line_no=lab.line_no,
                            account_code=lab.account_code,
                            project_code=doc.label.project_code,
                        )
                        for lab in doc.label.lines
                    ],
                )
            )
    return CompanyContext(
        company_rut=world.company_rut,
        company_name=world.spec.company_name,
        accounts=[ExpenseAccount(code=c, name=n) for c, n in world.spec.accounts],
        projects=world.projects,
        suppliers=[
            Supplier(rut=s.rut, name=s.spec.name, giro=s.spec.giro) for s in world.suppliers
        ],
        purchase_orders=world.pos,
        receipts=receipts,
        invoices=invoices,
        decisions=decisions,
        policy=CompanyPolicy(approval_threshold=world.spec.approval_threshold),
    )
