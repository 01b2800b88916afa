"""Company context: the Odoo data (accounts, projects, suppliers, purchase orders, past
decisions) the AI use cases read, and the received invoice they judge."""

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
    Project,
    PurchaseOrder,
    PurchaseOrderLine,
    Receipt,
    ReceiptLine,
    ReceivedInvoice,
    Supplier,
    invoice_key,
)

__all__ = [
    "TPO_DOC_REF_GUIA_DESPACHO",
    "TPO_DOC_REF_ORDEN_COMPRA",
    "AccountingDecision",
    "CompanyContext",
    "CompanyPolicy",
    "ExpenseAccount",
    "InvoiceLine",
    "InvoiceReference",
    "LineDecision",
    "Project",
    "PurchaseOrder",
    "PurchaseOrderLine",
    "Receipt",
    "ReceiptLine",
    "ReceivedInvoice",
    "Supplier",
    "invoice_key",
]
