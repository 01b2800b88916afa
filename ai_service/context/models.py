"""What the company's Odoo holds that the AI use cases read: chart of expense accounts, projects
(analytic accounts), suppliers, purchase orders with their receipts, past received invoices and
the accountant's decisions on them. One :class:`CompanyContext` per company; nothing in it may
refer to another company.

:class:`ReceivedInvoice` is a received DTE as the SII defines it (element names in comments).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cached_property

from lxml import etree
from pydantic import BaseModel, ConfigDict, Field

from dte_core.errors import FieldError, InvalidDocumentError
from dte_core.rut import Rut
from dte_core.xmlsafe import parse_untrusted

#: Referencia/TpoDocRef codes the use cases resolve (manual "Formato DTE", tabla de documentos).
TPO_DOC_REF_ORDEN_COMPRA = "801"
TPO_DOC_REF_GUIA_DESPACHO = "52"
TPO_DOC_REF_HES = "HES"  # hoja de entrada de servicios, a free-form code used by large buyers


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExpenseAccount(_Model):
    code: str
    name: str


class Project(_Model):
    """An Odoo analytic account: a construction site, a restaurant branch, a client project or
    the head office cost centre."""

    code: str
    name: str
    address: str | None = None
    comuna: str | None = None
    client: str | None = None
    start: date | None = None
    end: date | None = None
    budget: int | None = None

    def active_on(self, day: date) -> bool:
        return (self.start is None or self.start <= day) and (self.end is None or day <= self.end)


class Supplier(_Model):
    rut: Rut
    name: str
    giro: str | None = None


class PurchaseOrderLine(_Model):
    line_no: int
    product: str
    quantity: Decimal
    unit_price: Decimal
    #: total received through :class:`Receipt` lines (Odoo's qty_received)
    quantity_received: Decimal = Decimal(0)


class PurchaseOrder(_Model):
    number: str
    date: date
    supplier_rut: Rut
    project_code: str | None = None
    lines: list[PurchaseOrderLine]


class ReceiptLine(_Model):
    po_line_no: int
    quantity: Decimal


class Receipt(_Model):
    """A goods receipt (Odoo stock.picking) against a purchase order, usually covered by the
    supplier's guía de despacho."""

    number: str
    date: date
    po_number: str
    supplier_rut: Rut
    guia_folio: int | None = None
    lines: list[ReceiptLine]


class LineDecision(_Model):
    line_no: int
    account_code: str
    project_code: str | None = None


class AccountingDecision(_Model):
    """How the accountant booked one received invoice: account and project for the invoice and
    for each line."""

    invoice_key: str
    decided_at: datetime
    account_code: str
    project_code: str | None = None
    lines: list[LineDecision] = Field(default_factory=list)

    def line_account(self, line_no: int) -> str:
        return next((d.account_code for d in self.lines if d.line_no == line_no), self.account_code)


# --- received DTE -----------------------------------------------------------------------------


class InvoiceLine(_Model):
    line_no: int  # Detalle/NroLinDet
    name: str  # NmbItem
    description: str | None = None  # DscItem
    quantity: Decimal | None = None  # QtyItem
    unit: str | None = None  # UnmdItem
    unit_price: Decimal | None = None  # PrcItem
    amount: int  # MontoItem

    @property
    def text(self) -> str:
        return f"{self.name} {self.description}" if self.description else self.name


class InvoiceReference(_Model):
    line_no: int  # Referencia/NroLinRef
    tipo_doc_ref: str  # TpoDocRef: "801" orden de compra, "52" guía de despacho, "33" factura...
    folio_ref: str  # FolioRef (alphanumeric in the schema)
    fecha_ref: date | None = None  # FchRef
    cod_ref: int | None = None  # CodRef (notas): 1 anula, 2 corrige texto, 3 corrige montos
    razon_ref: str | None = None  # RazonRef


class ReceivedInvoice(_Model):
    emisor_rut: Rut  # Emisor/RUTEmisor
    emisor_name: str  # Emisor/RznSoc
    emisor_giro: str | None = None  # Emisor/GiroEmis
    receptor_rut: Rut  # Receptor/RUTRecep
    tipo_dte: int  # IdDoc/TipoDTE
    folio: int  # IdDoc/Folio
    fecha: date  # IdDoc/FchEmis
    neto: int = 0  # Totales/MntNeto
    exento: int = 0  # Totales/MntExe
    tasa_iva: Decimal | None = None  # Totales/TasaIVA
    iva: int = 0  # Totales/IVA
    total: int  # Totales/MntTotal
    lines: list[InvoiceLine]
    references: list[InvoiceReference] = Field(default_factory=list)
    delivery_address: str | None = None  # Transporte/DirDest
    delivery_comuna: str | None = None  # Transporte/CmnaDest

    @property
    def key(self) -> str:
        """The document's natural key: emisor, tipo_dte and folio identify a DTE."""
        return invoice_key(self.emisor_rut, self.tipo_dte, self.folio)

    def references_of(self, tipo_doc_ref: str) -> list[InvoiceReference]:
        return [r for r in self.references if r.tipo_doc_ref == tipo_doc_ref]

    @classmethod
    def from_xml(cls, data: bytes) -> ReceivedInvoice:
        """Parse untrusted bytes of a ``<DTE>`` (or ``<Documento>``) through the hardened parser."""
        return cls.from_element(parse_untrusted(data))

    @classmethod
    def all_from_xml(cls, data: bytes) -> list[ReceivedInvoice]:
        """Every document of an EnvioDTE (SetDTE/DTE/Documento), or the one of a lone DTE."""
        root = parse_untrusted(data)
        documents = [root] if etree.QName(root).localname == "Documento" else []
        documents += root.iter("{*}Documento")
        if not documents:
            raise InvalidDocumentError(
                "no <Documento> in the XML: pass an EnvioDTE, a <DTE> or its <Documento>",
                fields=[FieldError("Documento", "missing", "element not found")],
            )
        return [_read_documento(doc) for doc in documents]

    @classmethod
    def from_element(cls, el: etree._Element) -> ReceivedInvoice:
        """Read a parsed ``<DTE>`` or its ``<Documento>``, with or without the SiiDte namespace."""
        doc = el if etree.QName(el).localname == "Documento" else el.find("{*}Documento")
        if doc is None:
            raise InvalidDocumentError(
                "no <Documento> in the XML: pass a <DTE> or its <Documento>",
                fields=[FieldError("Documento", "missing", "element not found")],
            )
        return _read_documento(doc)


def invoice_key(emisor_rut: Rut | str, tipo_dte: int, folio: int) -> str:
    return f"{Rut.parse(emisor_rut)}:{tipo_dte}:{folio}"


class _Reader:
    """Reads SII elements and collects every problem so the caller can fix them at once."""

    def __init__(self, doc: etree._Element) -> None:
        self.doc = doc
        self.errors: list[FieldError] = []

    def text(self, path: str, base: etree._Element | None = None, required: bool = False) -> str:
        node = (base if base is not None else self.doc).find(
            "/".join(f"{{*}}{part}" for part in path.split("/"))
        )
        value = (node.text or "").strip() if node is not None else ""
        if required and not value:
            self.errors.append(FieldError(path, "missing", "required element is missing or empty"))
        return value

    def integer(self, path: str, base: etree._Element | None = None, required: bool = False) -> int:
        value = self.text(path, base, required)
        if not value:
            return 0
        try:
            return int(Decimal(value))
        except InvalidOperation:
            self.errors.append(FieldError(path, "not_a_number", f"{value!r} is not a number"))
            return 0

    def decimal(self, path: str, base: etree._Element | None = None) -> Decimal | None:
        value = self.text(path, base)
        if not value:
            return None
        try:
            return Decimal(value)
        except InvalidOperation:
            self.errors.append(FieldError(path, "not_a_number", f"{value!r} is not a number"))
            return None

    def day(self, path: str, base: etree._Element | None = None, required: bool = False) -> date:
        value = self.text(path, base, required)
        try:
            return date.fromisoformat(value)
        except ValueError:
            if value:
                self.errors.append(FieldError(path, "not_a_date", f"{value!r} is not AAAA-MM-DD"))
            return date.min

    def rut(self, path: str) -> Rut | None:
        value = self.text(path, required=True)
        if value and not Rut.is_valid(value):
            self.errors.append(FieldError(path, "invalid_rut", f"{value!r} is not a valid RUT"))
            return None
        return Rut.parse(value) if value else None


def _read_documento(doc: etree._Element) -> ReceivedInvoice:
    r = _Reader(doc)
    enc = "Encabezado/"
    emisor, receptor = r.rut(enc + "Emisor/RUTEmisor"), r.rut(enc + "Receptor/RUTRecep")
    lines = [
        InvoiceLine(
            line_no=r.integer("NroLinDet", det) or n,
            name=r.text("NmbItem", det, required=True),
            description=r.text("DscItem", det) or None,
            quantity=r.decimal("QtyItem", det),
            unit=r.text("UnmdItem", det) or None,
            unit_price=r.decimal("PrcItem", det),
            amount=r.integer("MontoItem", det, required=True),
        )
        for n, det in enumerate(doc.findall("{*}Detalle"), start=1)
    ]
    references = [
        InvoiceReference(
            line_no=r.integer("NroLinRef", ref) or n,
            tipo_doc_ref=r.text("TpoDocRef", ref, required=True),
            folio_ref=r.text("FolioRef", ref) or "0",
            fecha_ref=(r.day("FchRef", ref) if r.text("FchRef", ref) else None),
            cod_ref=r.integer("CodRef", ref) or None,
            razon_ref=r.text("RazonRef", ref) or None,
        )
        for n, ref in enumerate(doc.findall("{*}Referencia"), start=1)
    ]
    fields: dict[str, object] = {
        "tipo_dte": r.integer(enc + "IdDoc/TipoDTE", required=True),
        "folio": r.integer(enc + "IdDoc/Folio", required=True),
        "fecha": r.day(enc + "IdDoc/FchEmis", required=True),
        "emisor_name": r.text(enc + "Emisor/RznSoc", required=True),
        "emisor_giro": r.text(enc + "Emisor/GiroEmis") or None,
        "neto": r.integer(enc + "Totales/MntNeto"),
        "exento": r.integer(enc + "Totales/MntExe"),
        "tasa_iva": r.decimal(enc + "Totales/TasaIVA"),
        "iva": r.integer(enc + "Totales/IVA"),
        "total": r.integer(enc + "Totales/MntTotal", required=True),
        "delivery_address": r.text(enc + "Transporte/DirDest") or None,
        "delivery_comuna": r.text(enc + "Transporte/CmnaDest") or None,
    }
    if not lines:
        r.errors.append(FieldError("Detalle", "missing", "a DTE has at least one Detalle"))
    if r.errors or emisor is None or receptor is None:
        raise InvalidDocumentError(
            "the DTE cannot be read: " + "; ".join(f"{e.field}: {e.message}" for e in r.errors),
            fields=r.errors,
        )
    fields.update(emisor_rut=emisor, receptor_rut=receptor, lines=lines, references=references)
    return ReceivedInvoice.model_validate(fields)


# --- the company's context --------------------------------------------------------------------


class CompanyPolicy(_Model):
    #: invoices above this total (CLP, IVA included) need a manager's approval
    approval_threshold: int = 5_000_000


class CompanyContext(_Model):
    """Everything one company's Odoo knows that the use cases may read."""

    company_rut: Rut
    company_name: str
    accounts: list[ExpenseAccount]
    projects: list[Project] = Field(default_factory=list)
    suppliers: list[Supplier] = Field(default_factory=list)
    purchase_orders: list[PurchaseOrder] = Field(default_factory=list)
    receipts: list[Receipt] = Field(default_factory=list)
    #: received invoices already booked, the documents the decisions refer to
    invoices: list[ReceivedInvoice] = Field(default_factory=list)
    decisions: list[AccountingDecision] = Field(default_factory=list)
    policy: CompanyPolicy = Field(default_factory=CompanyPolicy)

    def replaced(self, **changes: object) -> CompanyContext:
        """A new context with some fields changed (``model_copy`` would carry the cached lookups
        of this one over)."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self).model_validate({**values, **changes})

    # cached lookups: the model is frozen, so they never go stale
    @cached_property
    def account_by_code(self) -> dict[str, ExpenseAccount]:
        return {a.code: a for a in self.accounts}

    @cached_property
    def project_by_code(self) -> dict[str, Project]:
        return {p.code: p for p in self.projects}

    @cached_property
    def supplier_by_rut(self) -> dict[str, Supplier]:
        return {str(s.rut): s for s in self.suppliers}

    @cached_property
    def po_by_number(self) -> dict[str, PurchaseOrder]:
        return {po.number: po for po in self.purchase_orders}

    @cached_property
    def invoice_by_key(self) -> dict[str, ReceivedInvoice]:
        return {inv.key: inv for inv in self.invoices}

    @cached_property
    def receipts_by_guia(self) -> dict[tuple[str, int], list[Receipt]]:
        out: dict[tuple[str, int], list[Receipt]] = {}
        for receipt in self.receipts:
            if receipt.guia_folio is not None:
                out.setdefault((str(receipt.supplier_rut), receipt.guia_folio), []).append(receipt)
        return out

    def decided_invoices(self) -> list[tuple[ReceivedInvoice, AccountingDecision]]:
        """Decisions with their invoices, oldest first (decisions on unknown invoices skipped)."""
        pairs = [
            (self.invoice_by_key[d.invoice_key], d)
            for d in sorted(self.decisions, key=lambda d: (d.decided_at, d.invoice_key))
            if d.invoice_key in self.invoice_by_key
        ]
        return pairs
