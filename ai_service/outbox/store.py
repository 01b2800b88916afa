"""Outbox state in the database. Every transition is one short transaction that also writes
the document's event, so the state and the webhook feed never disagree.

Transitions are compare-and-set (``WHERE state = <expected>``): a worker that lost a race, or
one resumed after a crash, changes nothing it should not.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from ai_service.api.errors import Conflict, NotFound
from ai_service.db.outbox_tables import (
    FINAL_STATES,
    company_sii,
    document_events,
    outbox_entries,
    submissions,
)
from ai_service.db.session import reading
from ai_service.db.tables import documents
from ai_service.repositories.companies import utcnow


@dataclass(frozen=True)
class Entry:
    document_id: str
    company_id: str
    state: str
    submission_id: str | None
    sii_estado: str | None
    detail: Any
    updated_at: datetime


@dataclass(frozen=True)
class Submission:
    id: str
    company_id: str
    state: str
    envio: bytes
    track_id: str | None
    upload_attempts: int
    document_ids: tuple[str, ...]
    boleta: bool = False  # an EnvioBOLETA, for the boleta REST service
    updated_at: datetime | None = None


def _event(conn: Connection, company_id: str, document_id: str, state: str, detail: Any) -> None:
    """Record a state change and, in the same transaction, the webhooks it owes."""
    from ai_service.outbox.webhooks import owe

    at = utcnow()
    result = conn.execute(
        insert(document_events).values(
            company_id=company_id,
            document_id=document_id,
            state=state,
            detail=json.dumps(detail, ensure_ascii=False) if detail is not None else None,
            created_at=at,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    event_id = int(key[0])
    owe(
        conn,
        company_id,
        event_id,
        {
            "type": "document.state_changed",
            "event_id": event_id,
            "document_id": document_id,
            "state": state,
            "detail": detail,
            "at": at.isoformat(),
        },
    )


def _entry(row: Any) -> Entry:
    return Entry(
        document_id=row.document_id,
        company_id=row.company_id,
        state=row.state,
        submission_id=row.submission_id,
        sii_estado=row.sii_estado,
        detail=json.loads(row.detail) if row.detail else None,
        updated_at=row.updated_at,
    )


def enqueue(engine: Engine, company_id: str, document_id: str) -> Entry:
    """Queue a signed document for the SII; sending it again is a no-op that returns its state."""
    with engine.begin() as conn:
        known = conn.execute(
            select(documents.c.id).where(
                documents.c.id == document_id, documents.c.company_id == company_id
            )
        ).first()
        if known is None:
            raise NotFound(f"no document {document_id} for this company", code="document_not_found")
        existing = conn.execute(
            select(outbox_entries).where(outbox_entries.c.document_id == document_id)
        ).first()
        if existing is None:
            now = utcnow()
            conn.execute(
                insert(outbox_entries).values(
                    document_id=document_id,
                    company_id=company_id,
                    state="queued",
                    created_at=now,
                    updated_at=now,
                )
            )
            _event(conn, company_id, document_id, "queued", None)
    return get_entry(engine, company_id, document_id)


def get_entry(engine: Engine, company_id: str, document_id: str) -> Entry:
    with reading(engine) as conn:
        row = conn.execute(
            select(outbox_entries).where(
                outbox_entries.c.document_id == document_id,
                outbox_entries.c.company_id == company_id,
            )
        ).first()
    if row is None:
        raise NotFound(f"document {document_id} was never sent", code="not_sent")
    return _entry(row)


def find_entry(engine: Engine, company_id: str, document_id: str) -> Entry | None:
    try:
        return get_entry(engine, company_id, document_id)
    except NotFound:
        return None


def companies_with_work(engine: Engine) -> list[str]:
    with reading(engine) as conn:
        rows = conn.execute(
            select(outbox_entries.c.company_id)
            .where(outbox_entries.c.state.not_in(FINAL_STATES))
            .distinct()
        ).all()
    return [r[0] for r in rows]


BOLETA_TIPOS = (39, 41)


def queued_documents(
    engine: Engine, company_id: str, limit: int, *, boleta: bool = False
) -> list[tuple[str, bytes]]:
    """The oldest queued documents of one family with their signed XML, in issue order."""
    family = documents.c.tipo_dte.in_(BOLETA_TIPOS)
    with reading(engine) as conn:
        rows = conn.execute(
            select(outbox_entries.c.document_id, documents.c.xml)
            .join(documents, documents.c.id == outbox_entries.c.document_id)
            .where(
                outbox_entries.c.company_id == company_id,
                outbox_entries.c.state == "queued",
                family if boleta else ~family,
            )
            .order_by(outbox_entries.c.created_at, documents.c.tipo_dte, documents.c.folio)
            .limit(limit)
        ).all()
    return [(r[0], bytes(r[1])) for r in rows]


def create_submission(
    engine: Engine,
    company_id: str,
    document_ids: Sequence[str],
    envio: bytes,
    *,
    boleta: bool = False,
) -> str | None:
    """Persist the signed envelope and move its documents to ``submitted``, atomically.

    Returns None when another worker took any of the documents first (nothing is written).
    """
    submission_id = str(uuid.uuid4())
    now = utcnow()
    try:
        _insert_submission(engine, company_id, submission_id, document_ids, envio, now, boleta)
    except _Raced:
        return None
    return submission_id


class _Raced(Exception):
    """Another worker moved one of the documents first; the transaction is rolled back."""


def _insert_submission(
    engine: Engine,
    company_id: str,
    submission_id: str,
    document_ids: Sequence[str],
    envio: bytes,
    now: datetime,
    boleta: bool,
) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(submissions).values(
                id=submission_id,
                company_id=company_id,
                state="prepared",
                family="boleta" if boleta else "dte",
                envio=envio,
                upload_attempts=0,
                created_at=now,
                updated_at=now,
            )
        )
        moved = conn.execute(
            update(outbox_entries)
            .where(
                outbox_entries.c.document_id.in_(list(document_ids)),
                outbox_entries.c.state == "queued",
            )
            .values(state="submitted", submission_id=submission_id, updated_at=now)
        ).rowcount
        if moved != len(document_ids):
            raise _Raced
        for doc in document_ids:
            _event(conn, company_id, doc, "submitted", {"submission_id": submission_id})


def _submission(conn: Connection, row: Any) -> Submission:
    ids = conn.execute(
        select(outbox_entries.c.document_id)
        .where(outbox_entries.c.submission_id == row.id)
        .order_by(outbox_entries.c.document_id)
    ).all()
    return Submission(
        id=row.id,
        company_id=row.company_id,
        state=row.state,
        envio=bytes(row.envio),
        track_id=row.track_id,
        upload_attempts=row.upload_attempts,
        document_ids=tuple(r[0] for r in ids),
        boleta=row.family == "boleta",
        updated_at=row.updated_at,
    )


def open_submissions(engine: Engine, company_id: str, state: str) -> list[Submission]:
    with reading(engine) as conn:
        rows = conn.execute(
            select(submissions)
            .where(submissions.c.company_id == company_id, submissions.c.state == state)
            .order_by(submissions.c.created_at)
        ).all()
        return [_submission(conn, r) for r in rows]


def _move_entries(
    conn: Connection,
    sub: Submission,
    state: str,
    *,
    sii_estado: str | None = None,
    detail: Any = None,
    only: Sequence[str] | None = None,
) -> None:
    now = utcnow()
    targets = list(only) if only is not None else list(sub.document_ids)
    for doc in targets:
        changed = conn.execute(
            update(outbox_entries)
            .where(
                outbox_entries.c.document_id == doc,
                outbox_entries.c.submission_id == sub.id,
                outbox_entries.c.state.not_in(FINAL_STATES),
            )
            .values(
                state=state,
                sii_estado=sii_estado,
                detail=json.dumps(detail, ensure_ascii=False) if detail is not None else None,
                updated_at=now,
            )
        ).rowcount
        if changed:
            _event(conn, sub.company_id, doc, state, detail)


def _set_submission(conn: Connection, sub: Submission, expected: str, **values: Any) -> bool:
    changed = conn.execute(
        update(submissions)
        .where(submissions.c.id == sub.id, submissions.c.state == expected)
        .values(updated_at=utcnow(), **values)
    ).rowcount
    return bool(changed)


def mark_uploading(engine: Engine, sub: Submission) -> bool:
    """Recorded *before* the bytes leave: after a crash this says "maybe uploaded"."""
    with engine.begin() as conn:
        if not _set_submission(
            conn, sub, "prepared", state="uploading", upload_attempts=sub.upload_attempts + 1
        ):
            return False
        _move_entries(conn, sub, "uploading")
    return True


def mark_uploaded(engine: Engine, sub: Submission, track_id: str | None) -> None:
    with engine.begin() as conn:
        if _set_submission(conn, sub, "uploading", state="uploaded", track_id=track_id):
            _move_entries(conn, sub, "uploaded", detail={"track_id": track_id})


def back_to_prepared(engine: Engine, sub: Submission, reason: str) -> None:
    """Nothing reached the SII (checked or certain): the same envelope may be uploaded again."""
    with engine.begin() as conn:
        if _set_submission(conn, sub, "uploading", state="prepared", detail=reason):
            _move_entries(conn, sub, "submitted", detail={"retry": reason})


def finish(
    engine: Engine,
    sub: Submission,
    results: Mapping[str, tuple[str, str | None, Any]],
    *,
    sii_estado: str | None,
    expected: str = "uploaded",
) -> None:
    """Final state per document: ``{document_id: (state, sii_estado, detail)}``."""
    with engine.begin() as conn:
        if not _set_submission(conn, sub, expected, state="final", sii_estado=sii_estado):
            return
        for doc, (state, estado, detail) in results.items():
            _move_entries(conn, sub, state, sii_estado=estado, detail=detail, only=[doc])


def set_resolution(
    engine: Engine, company_id: str, fch_resol: Any, nro_resol: int, oficina_sii: str | None = None
) -> None:
    with engine.begin() as conn:
        values = {
            "fch_resol": fch_resol,
            "nro_resol": nro_resol,
            "oficina_sii": oficina_sii,
            "updated_at": utcnow(),
        }
        done = conn.execute(
            update(company_sii).where(company_sii.c.company_id == company_id).values(**values)
        ).rowcount
        if not done:
            conn.execute(insert(company_sii).values(company_id=company_id, **values))


@dataclass(frozen=True)
class Resolution:
    """The SII resolution on the company's Carátulas, and the office printed on its PDFs."""

    fch_resol: date
    nro_resol: int
    oficina_sii: str | None


def resolution(engine: Engine, company_id: str) -> Resolution:
    with reading(engine) as conn:
        row = conn.execute(
            select(company_sii).where(company_sii.c.company_id == company_id)
        ).first()
    if row is None:
        raise Conflict(
            "the company's SII resolution is not set: PUT /v1/sii/resolution with "
            "fch_resol and nro_resol (certificación uses nro_resol 0)",
            code="no_sii_resolution",
        )
    return Resolution(row.fch_resol, int(row.nro_resol), row.oficina_sii)


def events(engine: Engine, company_id: str, document_id: str) -> list[dict[str, Any]]:
    with reading(engine) as conn:
        rows = conn.execute(
            select(document_events)
            .where(
                document_events.c.company_id == company_id,
                document_events.c.document_id == document_id,
            )
            .order_by(document_events.c.id)
        ).all()
    return [
        {
            "state": r.state,
            "detail": json.loads(r.detail) if r.detail else None,
            "at": r.created_at.isoformat(),
        }
        for r in rows
    ]


def reload(engine: Engine, submission_id: str) -> Submission:
    with reading(engine) as conn:
        row = conn.execute(select(submissions).where(submissions.c.id == submission_id)).one()
        return _submission(conn, row)


def document_keys(engine: Engine, sub: Submission) -> dict[tuple[int, int], str]:
    """``(tipo_dte, folio) -> document id`` for the documents of a submission."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(documents.c.tipo_dte, documents.c.folio, documents.c.id).where(
                documents.c.id.in_(list(sub.document_ids))
            )
        ).all()
    return {(int(t), int(f)): str(i) for t, f, i in rows}
