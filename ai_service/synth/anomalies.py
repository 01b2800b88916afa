"""Injecting labelled anomalies into a clean stream of received documents.

Each kind of :class:`AnomalyKind` appears at least twice; a document carries at most one injected
anomaly, and the label names the documents it relates to (the original of a duplicate, the other
parts of a split) so an anomaly engine can be scored on exactly what it should find.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from ai_service.context.models import InvoiceLine, InvoiceReference, ReceivedInvoice
from ai_service.synth.labels import AnomalyKind, AnomalyLabel, LineLabel, SyntheticInvoice
from ai_service.synth.specs import make_rut
from ai_service.synth.wording import strip_accents

if TYPE_CHECKING:
    from ai_service.synth.generator import _World

IVA = Decimal("0.19")
_NEW_SUPPLIER_NAME = (
    ("Comercializadora", "Inversiones", "Importadora", "Servicios Integrales"),
    ("Altamira", "Del Norte", "Los Robles", "Pacífico Sur", "Santa Elena"),
    ("SpA", "Ltda.", "E.I.R.L."),
)


def retotal(invoice: ReceivedInvoice, lines: list[InvoiceLine]) -> ReceivedInvoice:
    """The invoice with these lines and totals that add up (IVA 19 % on the net)."""
    total = sum(line.amount for line in lines)
    exento = invoice.neto == 0 and invoice.exento > 0  # keeps the document's nature
    neto, exe = (0, total) if exento else (total, 0)
    iva = int((neto * IVA).to_integral_value())
    return invoice.model_copy(
        update={"lines": lines, "neto": neto, "exento": exe, "iva": iva, "total": neto + iva + exe}
    )


def _with(doc: SyntheticInvoice, label: AnomalyLabel, **changes: object) -> SyntheticInvoice:
    new_label = doc.label.model_copy(update={"anomalies": [*doc.label.anomalies, label]})
    return doc.model_copy(update={"label": new_label, **changes})


def _rejected(doc: SyntheticInvoice) -> SyntheticInvoice:
    """The accountant rejects a duplicate: it gets no AccountingDecision."""
    return doc.model_copy(update={"label": doc.label.model_copy(update={"decided": False})})


class _Injector:
    def __init__(self, world: _World, documents: list[SyntheticInvoice]) -> None:
        self.world, self.rng = world, world.rng
        self.docs = documents
        self.taken: set[str] = set()
        self.added: list[SyntheticInvoice] = []
        self.serial = 0

    def pick(self, accept: Callable[[SyntheticInvoice], bool]) -> int | None:
        candidates = [
            i
            for i, d in enumerate(self.docs)
            if d.id not in self.taken and not d.label.anomalies and accept(d)
        ]
        if not candidates:
            return None
        i = self.rng.choice(candidates)
        self.taken.add(self.docs[i].id)
        return i

    def new_id(self) -> str:
        self.serial += 1
        return f"{self.world.spec.kind}-x{self.serial:04d}"

    def free_folio(self, rut: str, tipo: int, near: int) -> int:
        folio = near
        while (rut, tipo, folio) in self.world.used_folios:
            folio += 1
        self.world.used_folios.add((rut, tipo, folio))
        return folio

    # --- one method per kind ---------------------------------------------------------------------

    def exact_duplicate(self, i: int) -> None:
        doc = self.docs[i]
        label = AnomalyLabel(
            kind=AnomalyKind.EXACT_DUPLICATE,
            related_ids=[doc.id],
            detail="the same DTE received twice",
        )
        copy = doc.model_copy(
            update={
                "id": self.new_id(),
                "received_at": doc.received_at + timedelta(days=self.rng.randint(0, 5)),
            }
        )
        self.added.append(_rejected(_with(copy, label)))

    def fuzzy_duplicate(self, i: int) -> None:
        doc = self.docs[i]
        digits = list(str(doc.invoice.folio))
        j = self.rng.randrange(len(digits) - 1)
        if digits[j] != digits[j + 1] and self.rng.random() < 0.5:
            digits[j], digits[j + 1] = digits[j + 1], digits[j]
        else:
            digits[-1 - self.rng.randrange(2)] = str(
                (int(digits[-1]) + self.rng.randint(1, 8)) % 10
            )
        rut = str(doc.invoice.emisor_rut)
        folio = self.free_folio(rut, doc.invoice.tipo_dte, int("".join(digits)))
        days = self.rng.randint(0, 4)
        invoice = doc.invoice.model_copy(
            update={"folio": folio, "fecha": doc.invoice.fecha + timedelta(days=days)}
        )
        label = AnomalyLabel(
            kind=AnomalyKind.FUZZY_DUPLICATE,
            related_ids=[doc.id],
            detail=f"folio {folio} looks like a retyped {doc.invoice.folio}",
        )
        copy = doc.model_copy(
            update={
                "id": self.new_id(),
                "invoice": invoice,
                "received_at": doc.received_at + timedelta(days=days),
            }
        )
        self.added.append(_rejected(_with(copy, label)))

    def price_spike(self, i: int) -> None:
        doc = self.docs[i]
        n = self.rng.randrange(len(doc.invoice.lines))
        line = doc.invoice.lines[n]
        assert line.unit_price is not None and line.quantity is not None
        factor = Decimal(str(round(self.rng.uniform(1.8, 3.5), 2)))
        price = (line.unit_price * factor).to_integral_value()
        lines = list(doc.invoice.lines)
        lines[n] = line.model_copy(
            update={"unit_price": price, "amount": int((price * line.quantity).to_integral_value())}
        )
        label = AnomalyLabel(
            kind=AnomalyKind.PRICE_SPIKE,
            line_no=line.line_no,
            detail=f"unit price {price} is {factor}x the usual {line.unit_price}",
        )
        self.docs[i] = _with(doc, label, invoice=retotal(doc.invoice, lines))

    def vat_error(self, i: int) -> None:
        doc = self.docs[i]
        inv = doc.invoice
        wrong = (
            int((inv.neto * Decimal("0.18")).to_integral_value())
            if self.rng.random() < 0.5
            else inv.iva + self.rng.choice((-1, 1)) * self.rng.randint(50, 20_000)
        )
        label = AnomalyLabel(
            kind=AnomalyKind.VAT_ERROR, detail=f"IVA {wrong} but 19% of {inv.neto} is {inv.iva}"
        )
        self.docs[i] = _with(
            doc,
            label,
            invoice=inv.model_copy(update={"iva": wrong, "total": inv.neto + wrong + inv.exento}),
        )

    def total_mismatch(self, i: int) -> None:
        doc = self.docs[i]
        inv = doc.invoice
        total = (
            inv.neto + inv.exento
            if inv.iva and self.rng.random() < 0.3
            else inv.total + self.rng.choice((-1, 1)) * self.rng.randint(1_000, 90_000)
        )
        label = AnomalyLabel(
            kind=AnomalyKind.TOTAL_MISMATCH,
            detail=f"MntTotal {total} but neto+IVA+exento is {inv.total}",
        )
        self.docs[i] = _with(doc, label, invoice=inv.model_copy(update={"total": total}))

    def qty_over_po(self, i: int) -> None:
        doc = self.docs[i]
        pos = {po.number: po for po in self.world.pos}
        lab = next(lab for lab in doc.label.lines if lab.po_number and lab.po_line_no)
        po_line = pos[lab.po_number].lines[lab.po_line_no - 1]  # type: ignore[index,operator]
        lines = list(doc.invoice.lines)
        n = lab.line_no - 1
        qty = (
            po_line.quantity * Decimal(str(round(self.rng.uniform(1.3, 2.0), 2)))
        ).to_integral_value() + 1
        price = lines[n].unit_price or Decimal(0)
        lines[n] = lines[n].model_copy(
            update={"quantity": qty, "amount": int((qty * price).to_integral_value())}
        )
        label = AnomalyLabel(
            kind=AnomalyKind.QTY_OVER_PO,
            line_no=lab.line_no,
            detail=f"bills {qty} of OC {lab.po_number} line {lab.po_line_no}, "
            f"which ordered {po_line.quantity}",
        )
        self.docs[i] = _with(doc, label, invoice=retotal(doc.invoice, lines))

    def future_date(self, i: int) -> None:
        doc = self.docs[i]
        fecha = doc.received_at + timedelta(days=self.rng.randint(15, 200))
        label = AnomalyLabel(
            kind=AnomalyKind.FUTURE_DATE,
            detail=f"FchEmis {fecha} after reception on {doc.received_at}",
        )
        self.docs[i] = _with(doc, label, invoice=doc.invoice.model_copy(update={"fecha": fecha}))

    def new_supplier_large_amount(self, i: int) -> None:
        base = self.docs[i]
        self.taken.discard(base.id)  # the template document itself stays clean
        rng = self.rng
        rut = make_rut(rng, 78_000_000, 78_999_999)
        name = " ".join(rng.choice(words) for words in _NEW_SUPPLIER_NAME)
        line = base.invoice.lines[0]
        price = line.unit_price or Decimal(line.amount)
        target = self.world.spec.approval_threshold * rng.uniform(2.0, 6.0) / 1.19
        qty = max(Decimal(1), Decimal(round(target / float(price))))
        lines = [
            line.model_copy(
                update={
                    "line_no": 1,
                    "quantity": qty,
                    "amount": int((qty * price).to_integral_value()),
                    "name": strip_accents(line.name).upper(),
                }
            )
        ]
        invoice = retotal(
            base.invoice.model_copy(
                update={
                    "emisor_rut": rut,
                    "emisor_name": name,
                    "folio": rng.randint(1, 400),
                    "references": [],
                    "tipo_dte": 33,
                }
            ),
            lines,
        )
        label = AnomalyLabel(
            kind=AnomalyKind.NEW_SUPPLIER_LARGE_AMOUNT,
            detail=f"first invoice of unknown supplier {rut} for {invoice.total}",
        )
        doc_label = base.label.model_copy(
            update={
                "lines": [
                    base.label.lines[0].model_copy(
                        update={"line_no": 1, "po_number": None, "po_line_no": None}
                    )
                ],
                "account_code": base.label.lines[0].account_code,
                "anomalies": [label],
            }
        )
        self.added.append(
            SyntheticInvoice(
                id=self.new_id(), received_at=base.received_at, invoice=invoice, label=doc_label
            )
        )

    def split_below_threshold(self, i: int) -> None:
        base = self.docs[i]
        self.taken.discard(base.id)
        threshold = self.world.spec.approval_threshold
        parts = self.rng.randint(2, 4)
        ids = [self.new_id() for _ in range(parts)]
        line = base.invoice.lines[0]
        price = line.unit_price or Decimal(line.amount)
        rut = str(base.invoice.emisor_rut)
        folio = self.world.next_folio(base.invoice.emisor_rut, base.invoice.tipo_dte)
        for n, doc_id in enumerate(ids):
            target = (
                threshold
                * self.rng.uniform(0.80, 0.97)
                / (1.19 if base.invoice.tipo_dte == 33 else 1)
            )
            qty = max(Decimal(1), Decimal(int(target / float(price))))
            lines = [
                line.model_copy(
                    update={
                        "line_no": 1,
                        "quantity": qty,
                        "amount": int((qty * price).to_integral_value()),
                    }
                )
            ]
            day = base.invoice.fecha + timedelta(days=self.rng.randint(0, 2))
            invoice = retotal(
                base.invoice.model_copy(
                    update={
                        "folio": self.free_folio(rut, base.invoice.tipo_dte, folio + n),
                        "fecha": day,
                        "references": [],
                    }
                ),
                lines,
            )
            label = AnomalyLabel(
                kind=AnomalyKind.SPLIT_BELOW_THRESHOLD,
                related_ids=[x for x in ids if x != doc_id],
                detail=f"part {n + 1} of {parts}, each below the approval threshold {threshold}",
            )
            lab_lines = [
                LineLabel(
                    line_no=1,
                    account_code=base.label.lines[0].account_code,
                    product_key=base.label.lines[0].product_key,
                )
            ]
            doc_label = base.label.model_copy(
                update={
                    "lines": lab_lines,
                    "account_code": lab_lines[0].account_code,
                    "anomalies": [label],
                }
            )
            self.added.append(
                SyntheticInvoice(
                    id=doc_id, received_at=day + timedelta(days=1), invoice=invoice, label=doc_label
                )
            )

    def credit_note_without_valid_reference(self, i: int) -> None:
        base = self.docs[i]
        self.taken.discard(base.id)
        rut = str(base.invoice.emisor_rut)
        line = base.invoice.lines[0]
        qty = max(Decimal(1), ((line.quantity or Decimal(1)) / 3).to_integral_value())
        price = line.unit_price or Decimal(line.amount)
        lines = [
            line.model_copy(
                update={
                    "line_no": 1,
                    "quantity": qty,
                    "amount": int((qty * price).to_integral_value()),
                }
            )
        ]
        references: list[InvoiceReference] = []
        if self.rng.random() < 0.6:
            ghost = self.free_folio(rut, 33, base.invoice.folio + self.rng.randint(50_000, 90_000))
            self.world.used_folios.discard((rut, 33, ghost))  # never issued: that is the point
            references = [
                InvoiceReference(
                    line_no=1,
                    tipo_doc_ref="33",
                    folio_ref=str(ghost),
                    fecha_ref=base.invoice.fecha,
                    cod_ref=3,
                    razon_ref="Devolución de mercadería",
                )
            ]
        invoice = retotal(
            base.invoice.model_copy(
                update={
                    "tipo_dte": 61,
                    "folio": self.world.next_folio(base.invoice.emisor_rut, 61),
                    "references": references,
                }
            ),
            lines,
        )
        detail = (
            "references factura folio that the supplier never issued"
            if references
            else "nota de crédito without Referencia"
        )
        label = AnomalyLabel(kind=AnomalyKind.CREDIT_NOTE_WITHOUT_VALID_REFERENCE, detail=detail)
        lab_lines = [
            base.label.lines[0].model_copy(
                update={"line_no": 1, "po_number": None, "po_line_no": None}
            )
        ]
        doc_label = base.label.model_copy(
            update={
                "lines": lab_lines,
                "account_code": lab_lines[0].account_code,
                "anomalies": [label],
            }
        )
        self.added.append(
            SyntheticInvoice(
                id=self.new_id(),
                received_at=base.received_at + timedelta(days=3),
                invoice=invoice,
                label=doc_label,
            )
        )


def _is_invoice(d: SyntheticInvoice) -> bool:
    return d.invoice.tipo_dte in (33, 34)


_ELIGIBLE: dict[AnomalyKind, Callable[[SyntheticInvoice], bool]] = {
    AnomalyKind.EXACT_DUPLICATE: _is_invoice,
    AnomalyKind.FUZZY_DUPLICATE: lambda d: _is_invoice(d) and d.invoice.folio >= 10,
    AnomalyKind.PRICE_SPIKE: lambda d: (
        _is_invoice(d) and all(line.quantity and line.unit_price for line in d.invoice.lines)
    ),
    AnomalyKind.VAT_ERROR: lambda d: d.invoice.tipo_dte == 33 and d.invoice.neto > 100_000,
    AnomalyKind.TOTAL_MISMATCH: _is_invoice,
    AnomalyKind.QTY_OVER_PO: lambda d: (
        _is_invoice(d) and any(lab.po_line_no for lab in d.label.lines)
    ),
    AnomalyKind.NEW_SUPPLIER_LARGE_AMOUNT: lambda d: d.invoice.tipo_dte == 33,
    AnomalyKind.SPLIT_BELOW_THRESHOLD: lambda d: (
        d.invoice.tipo_dte == 33 and 0 < (d.invoice.lines[0].unit_price or 0) < 200_000
    ),
    AnomalyKind.FUTURE_DATE: _is_invoice,
    AnomalyKind.CREDIT_NOTE_WITHOUT_VALID_REFERENCE: lambda d: d.invoice.tipo_dte == 33,
}


def inject_anomalies(
    world: _World, documents: list[SyntheticInvoice], rate: float
) -> list[SyntheticInvoice]:
    injector = _Injector(world, documents)
    per_kind = max(2, round(rate * len(documents) / len(AnomalyKind)))
    for kind in AnomalyKind:
        for _ in range(per_kind):
            i = injector.pick(_ELIGIBLE[kind])
            if i is not None:
                getattr(injector, kind.value)(i)
    return injector.docs + injector.added
