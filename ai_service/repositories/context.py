"""Company context persistence: idempotent bulk upserts by natural key, versioned per company."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import Connection, Engine, delete, insert, select, update

from ai_service.api.errors import Unprocessable
from ai_service.context.models import (
    AccountingDecision,
    CompanyContext,
    CompanyPolicy,
    ExpenseAccount,
    Project,
    PurchaseOrder,
    Receipt,
    ReceivedInvoice,
    Supplier,
)
from ai_service.db.context_tables import context_items, context_versions
from ai_service.db.session import reading
from ai_service.repositories.companies import utcnow
from dte_core.errors import FieldError
from dte_core.models import field_errors


@dataclass(frozen=True)
class Kind:
    name: str
    model: type[BaseModel]
    field: str  # the CompanyContext field that holds these items

    def key(self, item: BaseModel) -> str:
        return str(_KEYS[self.name](item))


_KEYS: Final[dict[str, Any]] = {
    "account": lambda a: a.code,
    "project": lambda p: p.code,
    "supplier": lambda s: str(s.rut),
    "purchase_order": lambda po: po.number,
    "receipt": lambda r: r.number,
    "invoice": lambda inv: inv.key,
    "decision": lambda d: d.invoice_key,
    "policy": lambda _p: "policy",
}

KINDS: Final[dict[str, Kind]] = {
    k.name: k
    for k in (
        Kind("account", ExpenseAccount, "accounts"),
        Kind("project", Project, "projects"),
        Kind("supplier", Supplier, "suppliers"),
        Kind("purchase_order", PurchaseOrder, "purchase_orders"),
        Kind("receipt", Receipt, "receipts"),
        Kind("invoice", ReceivedInvoice, "invoices"),
        Kind("decision", AccountingDecision, "decisions"),
        Kind("policy", CompanyPolicy, "policy"),
    )
}
#: The plural names Odoo's payload uses (``{"accounts": [...], "projects": [...]}``).
BY_FIELD: Final[dict[str, Kind]] = {k.field: k for k in KINDS.values()}


@dataclass(frozen=True)
class UpsertResult:
    inserted: int
    updated: int
    unchanged: int
    version: int

    def as_dict(self) -> dict[str, int]:
        return self.__dict__.copy()


def validate_items(kind: Kind, raw: Iterable[Any], path: str) -> list[BaseModel]:
    """Every item validated; all problems reported together."""
    adapter = TypeAdapter(kind.model)
    items: list[BaseModel] = []
    problems: list[FieldError] = []
    for i, value in enumerate(raw):
        try:
            items.append(adapter.validate_python(value))
        except ValidationError as exc:
            problems += field_errors(exc, f"{path}[{i}]")
    if problems:
        raise Unprocessable(
            f"some {kind.field} are invalid; fix the listed fields and resend",
            code="invalid_context",
            fields=problems,
        )
    return items


def sections(body: dict[str, Any]) -> list[tuple[Kind, list[BaseModel]]]:
    """A ``PUT /v1/context`` body (``{"accounts": [...], "policy": {...}}``) as validated batches;
    unknown sections and every invalid item are reported together."""
    unknown = sorted(set(body) - set(BY_FIELD))
    if unknown:
        raise Unprocessable(
            f"unknown context sections {unknown}; use {sorted(BY_FIELD)}",
            code="invalid_context",
            fields=[FieldError(k, "unknown_section", "not a context section") for k in unknown],
        )
    batches: list[tuple[Kind, list[BaseModel]]] = []
    for name, raw in body.items():
        kind = BY_FIELD[name]
        items = [raw] if kind.name == "policy" else raw
        if not isinstance(items, list):
            raise Unprocessable(
                f"{name} must be a list",
                code="invalid_context",
                fields=[FieldError(name, "list_type", "expected a list")],
            )
        batches.append((kind, validate_items(kind, items, name)))
    return batches


def _bump(conn: Connection, company_id: str) -> int:
    current = conn.execute(
        select(context_versions.c.version)
        .where(context_versions.c.company_id == company_id)
        .with_for_update()
    ).scalar_one_or_none()
    if current is None:
        conn.execute(insert(context_versions).values(company_id=company_id, version=1))
        return 1
    conn.execute(
        update(context_versions)
        .where(context_versions.c.company_id == company_id)
        .values(version=current + 1)
    )
    return int(current) + 1


def upsert(
    engine: Engine, company_id: str, batches: Sequence[tuple[Kind, Sequence[BaseModel]]]
) -> UpsertResult:
    """Insert or replace items by natural key, in one transaction; a repeat changes nothing.

    Unchanged items are not rewritten and do not bump the version, so Odoo may resend its
    whole dataset on every sync without invalidating caches. Written items carry the new
    version, so a process holding an older one can fetch just what changed since.
    """
    now = utcnow()
    with engine.begin() as conn:
        writes: list[tuple[Kind, str, str, bool]] = []  # kind, key, data, is_new
        unchanged = 0
        for kind, items in batches:
            by_key = {kind.key(item): item.model_dump_json() for item in items}
            if not by_key:
                continue
            existing = dict(
                conn.execute(
                    select(context_items.c.key, context_items.c.data).where(
                        context_items.c.company_id == company_id,
                        context_items.c.kind == kind.name,
                        context_items.c.key.in_(list(by_key)),
                    )
                ).all()
            )
            for key, data in by_key.items():
                if existing.get(key) == data:
                    unchanged += 1
                else:
                    writes.append((kind, key, data, key not in existing))
        if not writes:
            return UpsertResult(0, 0, unchanged, _version(conn, company_id))
        version = _bump(conn, company_id)
        for kind, key, data, is_new in writes:
            values = {"data": data, "updated_at": now, "version": version}
            if is_new:
                conn.execute(
                    insert(context_items).values(
                        company_id=company_id, kind=kind.name, key=key, **values
                    )
                )
            else:
                conn.execute(
                    update(context_items)
                    .where(
                        context_items.c.company_id == company_id,
                        context_items.c.kind == kind.name,
                        context_items.c.key == key,
                    )
                    .values(**values)
                )
    inserted = sum(1 for *_, is_new in writes if is_new)
    return UpsertResult(inserted, len(writes) - inserted, unchanged, version)


def changed_since(engine: Engine, company_id: str, version: int) -> list[tuple[str, Any]]:
    """``(kind, item as JSON data)`` of every item written after ``version``, oldest first.

    Deletions leave no row: a caller that sees the version move with nothing here (or with
    fewer versions than it moved) must reload everything.
    """
    with reading(engine) as conn:
        rows = conn.execute(
            select(context_items.c.kind, context_items.c.data)
            .where(context_items.c.company_id == company_id, context_items.c.version > version)
            .order_by(context_items.c.version, context_items.c.kind, context_items.c.key)
        ).all()
    return [(str(kind), json.loads(data)) for kind, data in rows]


def remove(engine: Engine, company_id: str, kind: Kind, keys: Sequence[str]) -> int:
    with engine.begin() as conn:
        gone = conn.execute(
            delete(context_items).where(
                context_items.c.company_id == company_id,
                context_items.c.kind == kind.name,
                context_items.c.key.in_(list(keys)),
            )
        ).rowcount
        if gone:
            _bump(conn, company_id)
    return int(gone or 0)


def _version(conn: Connection, company_id: str) -> int:
    value = conn.execute(
        select(context_versions.c.version).where(context_versions.c.company_id == company_id)
    ).scalar_one_or_none()
    return int(value or 0)


def version(engine: Engine, company_id: str) -> int:
    with reading(engine) as conn:
        return _version(conn, company_id)


def counts(engine: Engine, company_id: str) -> dict[str, int]:
    from sqlalchemy import func

    with reading(engine) as conn:
        rows = conn.execute(
            select(context_items.c.kind, func.count())
            .where(context_items.c.company_id == company_id)
            .group_by(context_items.c.kind)
        ).all()
    found = {str(kind): int(n) for kind, n in rows}
    return {k.field: found.get(k.name, 0) for k in KINDS.values() if k.name != "policy"}


def load(engine: Engine, company_id: str, company_rut: str, company_name: str) -> CompanyContext:
    """The whole context of one company (and of no other)."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(context_items.c.kind, context_items.c.data)
            .where(context_items.c.company_id == company_id)
            .order_by(context_items.c.kind, context_items.c.key)
        ).all()
    values: dict[str, Any] = {k.field: [] for k in KINDS.values() if k.name != "policy"}
    for kind_name, data in rows:
        kind = KINDS.get(str(kind_name))
        if kind is None:
            continue
        item = json.loads(data)
        if kind.name == "policy":
            values["policy"] = item
        else:
            values[kind.field].append(item)
    return CompanyContext.model_validate(
        {"company_rut": company_rut, "company_name": company_name, **values}
    )
