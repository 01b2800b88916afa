"""Seeded synthetic data for a company's received invoices: realistic Spanish wording, purchase
orders with partial receipts, the accountant's decisions as labels and labelled anomalies.
See docs/synthetic-data.md."""

from ai_service.synth.generator import KINDS, generate_company, generate_dataset
from ai_service.synth.labels import (
    AnomalyKind,
    AnomalyLabel,
    InvoiceLabel,
    LineLabel,
    SyntheticCompany,
    SyntheticDataset,
    SyntheticInvoice,
)

__all__ = [
    "KINDS",
    "AnomalyKind",
    "AnomalyLabel",
    "InvoiceLabel",
    "LineLabel",
    "SyntheticCompany",
    "SyntheticDataset",
    "SyntheticInvoice",
    "generate_company",
    "generate_dataset",
]
