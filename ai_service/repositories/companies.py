"""Companies and their API keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from ai_service.api.errors import BadRequest, Conflict, NotFound
from ai_service.db.session import reading
from ai_service.db.tables import api_keys, companies
from ai_service.secrets import SecretBox
from dte_core.errors import FieldError
from dte_core.rut import Rut


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Company:
    id: str
    rut: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class IssuedKey:
    id: str
    company_id: str
    prefix: str
    key: str  # the only time the full key exists outside its holder
    created_at: datetime


def _company(row: Row[Any]) -> Company:
    return Company(id=row.id, rut=row.rut, name=row.name, created_at=aware(row.created_at))


def create_company(
    engine: Engine, box: SecretBox, *, rut: str, name: str
) -> tuple[Company, IssuedKey]:
    """A company and its first API key, in one transaction."""
    canonical = str(Rut.parse(rut))
    clean_name = name.strip()
    if not clean_name or len(clean_name) > 200:
        raise BadRequest(
            "the company name must have 1 to 200 characters",
            code="invalid_name",
            fields=[FieldError("name", "invalid_name", "1 to 200 characters")],
        )
    company = Company(id=str(uuid.uuid4()), rut=canonical, name=clean_name, created_at=utcnow())
    try:
        with engine.begin() as conn:
            if conn.execute(select(companies.c.id).where(companies.c.rut == canonical)).first():
                raise _exists(canonical)
            conn.execute(
                insert(companies).values(
                    id=company.id, rut=company.rut, name=company.name, created_at=company.created_at
                )
            )
            key = _insert_key(conn, box, company.id)
    except IntegrityError as exc:  # a concurrent create of the same RUT won the race
        raise _exists(canonical) from exc
    return company, key


def _exists(rut: str) -> Conflict:
    return Conflict(
        f"a company with RUT {rut} already exists; add an API key to it instead",
        code="company_exists",
        fields=[FieldError("rut", "company_exists", "already registered")],
    )


def _insert_key(conn: Connection, box: SecretBox, company_id: str) -> IssuedKey:
    new = box.new_api_key()
    issued = IssuedKey(
        id=str(uuid.uuid4()),
        company_id=company_id,
        prefix=new.prefix,
        key=new.key,
        created_at=utcnow(),
    )
    conn.execute(
        insert(api_keys).values(
            id=issued.id,
            company_id=company_id,
            prefix=issued.prefix,
            key_hash=new.key_hash,
            created_at=issued.created_at,
        )
    )
    return issued


def add_api_key(engine: Engine, box: SecretBox, company_id: str) -> IssuedKey:
    with engine.begin() as conn:
        if not conn.execute(select(companies.c.id).where(companies.c.id == company_id)).first():
            raise NotFound(f"no company with id {company_id}", code="company_not_found")
        return _insert_key(conn, box, company_id)


def revoke_api_key(engine: Engine, company_id: str, key_id: str) -> None:
    with engine.begin() as conn:
        result = conn.execute(
            update(api_keys)
            .where(
                api_keys.c.id == key_id,
                api_keys.c.company_id == company_id,
                api_keys.c.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
        )
        if result.rowcount == 0:
            raise NotFound(f"no active API key {key_id} for company {company_id}")


def company_for_key(engine: Engine, box: SecretBox, key: str) -> Company | None:
    """The company owning an active key; None for unknown or revoked keys."""
    with reading(engine) as conn:
        row = conn.execute(
            select(companies)
            .join(api_keys, api_keys.c.company_id == companies.c.id)
            .where(api_keys.c.key_hash == box.hash_api_key(key), api_keys.c.revoked_at.is_(None))
        ).first()
    return _company(row) if row else None


def get_company(engine: Engine, company_id: str) -> Company | None:
    with reading(engine) as conn:
        row = conn.execute(select(companies).where(companies.c.id == company_id)).first()
    return _company(row) if row else None


def company_by_rut(engine: Engine, rut: str) -> Company | None:
    from dte_core.rut import Rut

    canonical = str(Rut.parse(rut))
    with reading(engine) as conn:
        row = conn.execute(select(companies).where(companies.c.rut == canonical)).first()
    return _company(row) if row else None
