"""Company context tables (what Odoo holds, per company); migration ``0004_context``.

Context items are stored as validated JSON documents keyed by their natural key: Odoo pushes
whole records, the use cases read whole records, and no query filters inside them. Each company
has a version that every write bumps, so each process can cache the context it built and know,
with one cheap query, when to rebuild it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, String, Table, Text

from dte_core.storage import metadata

context_items = Table(
    "context_items",
    metadata,
    Column("company_id", String(64), ForeignKey("companies.id"), primary_key=True),
    # account | project | supplier | purchase_order | receipt | invoice | decision | policy
    Column("kind", String(20), primary_key=True),
    Column("key", String(120), primary_key=True),
    Column("data", Text, nullable=False),  # the item as validated JSON
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # the company's context version that wrote it: "what changed since version N"
    Column("version", BigInteger, nullable=False, index=True),
)

context_versions = Table(
    "context_versions",
    metadata,
    Column("company_id", String(64), ForeignKey("companies.id"), primary_key=True),
    Column("version", BigInteger, nullable=False),
)
