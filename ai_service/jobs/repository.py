"""Jobs and their items in the database. Every function takes the company id and filters by it:
another company's job is "not found", so its existence cannot be probed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ai_service.api.errors import NotFound
from ai_service.db.job_tables import classify_job_items, classify_jobs
from ai_service.db.session import reading
from ai_service.db.tables import received_documents
from ai_service.jobs.models import (
    ITEM_DONE,
    ITEM_FAILED,
    ITEM_PENDING,
    STATE_FINISHED,
    STATE_QUEUED,
    STATE_RUNNING,
    ItemInfo,
    JobInfo,
    NewItem,
)
from ai_service.repositories.companies import aware, utcnow

_JOB_COLUMNS = [classify_jobs.c[name] for name in JobInfo.__dataclass_fields__]
_INSERT_BATCH = 500


def _job(row: Any) -> JobInfo:
    values = dict(row._mapping)
    for name in ("created_at", "updated_at", "finished_at", "webhook_delivered_at"):
        if values[name] is not None:
            values[name] = aware(values[name])
    return JobInfo(**values)


def job_not_found(job_id: str) -> NotFound:
    return NotFound(f"no job {job_id} for this company", code="job_not_found")


@dataclass(frozen=True)
class PendingDocument:
    seq: int
    document_id: str
    xml: bytes


@dataclass(frozen=True)
class ItemOutcome:
    seq: int
    result: dict[str, Any] | None = None  # set: done
    error_code: str | None = None  # set: failed
    error_message: str | None = None


def unique_items(items: Sequence[NewItem]) -> list[NewItem]:
    """The same document twice in one job is classified once (the first mention counts)."""
    seen: set[str] = set()
    out = []
    for item in items:
        if item.document_id is not None:
            if item.document_id in seen:
                continue
            seen.add(item.document_id)
        out.append(item)
    return out


def create_job(
    engine: Engine,
    company_id: str,
    items: Sequence[NewItem],
    *,
    source: str,
    idempotency_key: str | None = None,
    webhook_url: str | None = None,
    webhook_secret: bytes | None = None,
) -> tuple[JobInfo, bool]:
    """The job and all its items in one transaction; ``(job, created)``.

    With an ``idempotency_key`` already used by this company, the existing job comes back
    (``created`` False) and nothing is written.
    """
    if idempotency_key is not None:
        existing = find_by_idempotency_key(engine, company_id, idempotency_key)
        if existing is not None:
            return existing, False
    items = unique_items(items)
    job_id, now = str(uuid.uuid4()), utcnow()
    failed_now = sum(1 for i in items if i.error_code is not None)
    rows = [
        {
            "job_id": job_id,
            "seq": seq,
            "company_id": company_id,
            "document_id": item.document_id,
            "file_id": item.file_id,
            "filename": (item.filename or None) and item.filename[-255:],
            "state": ITEM_FAILED if item.error_code else ITEM_PENDING,
            "result": None,
            "error_code": item.error_code,
            "error_message": item.error_message,
            "finished_at": now if item.error_code else None,
        }
        for seq, item in enumerate(items)
    ]
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(classify_jobs).values(
                    id=job_id,
                    company_id=company_id,
                    # queued even when every item already failed: the first task run finishes
                    # it, and that run owes the webhook
                    state=STATE_QUEUED,
                    total=len(items),
                    done=0,
                    failed=failed_now,
                    source=source,
                    idempotency_key=idempotency_key,
                    webhook_url=webhook_url,
                    webhook_secret=webhook_secret,
                    webhook_attempts=0,
                    created_at=now,
                    updated_at=now,
                    finished_at=None,
                )
            )
            for start in range(0, len(rows), _INSERT_BATCH):
                conn.execute(insert(classify_job_items), rows[start : start + _INSERT_BATCH])
    except IntegrityError:
        if idempotency_key is None:
            raise
        existing = find_by_idempotency_key(engine, company_id, idempotency_key)
        if existing is None:  # pragma: no cover - the constraint that fired names this row
            raise
        return existing, False  # a concurrent request with the same key won
    return get_job(engine, company_id, job_id), True


def find_by_idempotency_key(engine: Engine, company_id: str, key: str) -> JobInfo | None:
    with reading(engine) as conn:
        row = conn.execute(
            select(*_JOB_COLUMNS).where(
                classify_jobs.c.company_id == company_id, classify_jobs.c.idempotency_key == key
            )
        ).first()
    return _job(row) if row is not None else None


def get_job(engine: Engine, company_id: str, job_id: str) -> JobInfo:
    with reading(engine) as conn:
        row = conn.execute(
            select(*_JOB_COLUMNS).where(
                classify_jobs.c.id == job_id, classify_jobs.c.company_id == company_id
            )
        ).first()
    if row is None:
        raise job_not_found(job_id)
    return _job(row)


def company_of_job(engine: Engine, job_id: str) -> str | None:
    """For workers, which receive only a job id."""
    with reading(engine) as conn:
        value = conn.execute(
            select(classify_jobs.c.company_id).where(classify_jobs.c.id == job_id)
        ).scalar_one_or_none()
    return str(value) if value is not None else None


def list_jobs(engine: Engine, company_id: str, *, limit: int, offset: int) -> list[JobInfo]:
    with reading(engine) as conn:
        rows = conn.execute(
            select(*_JOB_COLUMNS)
            .where(classify_jobs.c.company_id == company_id)
            .order_by(classify_jobs.c.created_at.desc(), classify_jobs.c.id)
            .limit(limit)
            .offset(offset)
        ).all()
    return [_job(r) for r in rows]


def unfinished_jobs(engine: Engine) -> list[tuple[str, str, int]]:
    """``(company_id, job_id, total)`` of every job not finished (to resume after a restart)."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(classify_jobs.c.company_id, classify_jobs.c.id, classify_jobs.c.total)
            .where(classify_jobs.c.state != STATE_FINISHED)
            .order_by(classify_jobs.c.created_at)
        ).all()
    return [(str(c), str(j), int(t)) for c, j, t in rows]


def owed_webhooks(engine: Engine, max_attempts: int) -> list[str]:
    """Finished jobs whose webhook was never delivered and may still be tried."""
    j = classify_jobs
    with reading(engine) as conn:
        rows = conn.execute(
            select(j.c.id)
            .where(
                j.c.state == STATE_FINISHED,
                j.c.webhook_url.is_not(None),
                j.c.webhook_delivered_at.is_(None),
                j.c.webhook_attempts < max_attempts,
            )
            .order_by(j.c.finished_at)
        ).scalars()
        return [str(r) for r in rows]


def existing_documents(engine: Engine, company_id: str, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` are this company's received documents."""
    t, found = received_documents, set[str]()
    with reading(engine) as conn:
        for start in range(0, len(ids), _INSERT_BATCH):
            part = list(ids[start : start + _INSERT_BATCH])
            found.update(
                str(v)
                for v in conn.execute(
                    select(t.c.id).where(t.c.company_id == company_id, t.c.id.in_(part))
                ).scalars()
            )
    return found


def pending_documents(
    engine: Engine, company_id: str, job_id: str, lo: int, hi: int
) -> list[PendingDocument]:
    i, d = classify_job_items, received_documents
    with reading(engine) as conn:
        rows = conn.execute(
            select(i.c.seq, i.c.document_id, d.c.xml)
            .join(d, and_(d.c.id == i.c.document_id, d.c.company_id == i.c.company_id))
            .where(
                i.c.job_id == job_id,
                i.c.company_id == company_id,
                i.c.state == ITEM_PENDING,
                i.c.seq >= lo,
                i.c.seq < hi,
            )
            .order_by(i.c.seq)
        ).all()
    return [PendingDocument(int(r.seq), str(r.document_id), bytes(r.xml)) for r in rows]


def record_outcomes(
    engine: Engine, company_id: str, job_id: str, outcomes: Sequence[ItemOutcome]
) -> tuple[int, int]:
    """Move items out of pending with their results, and the job's counters with them, in one
    transaction. An item already recorded (a redelivered task) is left as it is and not counted
    again. ``(done, failed)`` newly recorded."""
    i, now = classify_job_items, utcnow()
    done = failed = 0
    with engine.begin() as conn:
        for outcome in outcomes:
            ok = outcome.error_code is None
            changed = conn.execute(
                update(i)
                .where(
                    i.c.job_id == job_id,
                    i.c.company_id == company_id,
                    i.c.seq == outcome.seq,
                    i.c.state == ITEM_PENDING,
                )
                .values(
                    state=ITEM_DONE if ok else ITEM_FAILED,
                    result=json.dumps(outcome.result, ensure_ascii=False) if ok else None,
                    error_code=outcome.error_code,
                    error_message=outcome.error_message,
                    finished_at=now,
                )
            ).rowcount
            if changed:
                done, failed = (done + 1, failed) if ok else (done, failed + 1)
        if done or failed:
            conn.execute(
                update(classify_jobs)
                .where(classify_jobs.c.id == job_id, classify_jobs.c.company_id == company_id)
                .values(
                    done=classify_jobs.c.done + done,
                    failed=classify_jobs.c.failed + failed,
                    state=STATE_RUNNING,
                    updated_at=now,
                )
            )
    return done, failed


def try_finish(engine: Engine, company_id: str, job_id: str) -> bool:
    """Mark the job finished when nothing is pending. True for exactly one caller: the one that
    owes the job-finished webhook."""
    now = utcnow()
    j = classify_jobs
    with engine.begin() as conn:
        changed = conn.execute(
            update(j)
            .where(
                j.c.id == job_id,
                j.c.company_id == company_id,
                j.c.state != STATE_FINISHED,
                j.c.done + j.c.failed >= j.c.total,
            )
            .values(state=STATE_FINISHED, finished_at=now, updated_at=now)
        ).rowcount
    return bool(changed)


def count_items(engine: Engine, company_id: str, job_id: str) -> dict[str, int]:
    """Items by state, counted (the job's counters must always agree with this)."""
    i = classify_job_items
    with reading(engine) as conn:
        rows = conn.execute(
            select(i.c.state, func.count())
            .where(i.c.job_id == job_id, i.c.company_id == company_id)
            .group_by(i.c.state)
        ).all()
    return {str(state): int(n) for state, n in rows}


def iter_items(
    engine: Engine,
    company_id: str,
    job_id: str,
    *,
    state: str | None = None,
    offset: int = 0,
    limit: int | None = None,
    batch: int = 500,
) -> Iterator[ItemInfo]:
    """The job's items in order, read in batches (an export of 10 000 never sits in memory)."""
    i, d = classify_job_items, received_documents
    after, left = offset - 1, limit
    while left is None or left > 0:
        take = batch if left is None else min(batch, left)
        query = (
            select(
                i.c.seq,
                i.c.document_id,
                i.c.file_id,
                i.c.filename,
                d.c.rut_emisor,
                d.c.tipo_dte,
                d.c.folio,
                i.c.state,
                i.c.result,
                i.c.error_code,
                i.c.error_message,
                i.c.finished_at,
            )
            .outerjoin(d, and_(d.c.id == i.c.document_id, d.c.company_id == i.c.company_id))
            .where(i.c.job_id == job_id, i.c.company_id == company_id, i.c.seq > after)
            .order_by(i.c.seq)
            .limit(take)
        )
        if state is not None:
            query = query.where(i.c.state == state)
        with reading(engine) as conn:
            rows = conn.execute(query).all()
        for r in rows:
            yield ItemInfo(
                seq=int(r.seq),
                document_id=r.document_id,
                file_id=r.file_id,
                filename=r.filename,
                rut_emisor=r.rut_emisor,
                tipo_dte=r.tipo_dte,
                folio=int(r.folio) if r.folio is not None else None,
                state=r.state,
                result=json.loads(r.result) if r.result else None,
                error_code=r.error_code,
                error_message=r.error_message,
                finished_at=aware(r.finished_at) if r.finished_at is not None else None,
            )
        if len(rows) < take:
            return
        after = int(rows[-1].seq)
        if left is not None:
            left -= len(rows)


def webhook_secret(engine: Engine, company_id: str, job_id: str) -> bytes | None:
    with reading(engine) as conn:
        value = conn.execute(
            select(classify_jobs.c.webhook_secret).where(
                classify_jobs.c.id == job_id, classify_jobs.c.company_id == company_id
            )
        ).scalar_one_or_none()
    return bytes(value) if value is not None else None


def record_webhook_attempt(engine: Engine, company_id: str, job_id: str, error: str | None) -> None:
    j, now = classify_jobs, utcnow()
    values: dict[str, Any] = {"webhook_attempts": j.c.webhook_attempts + 1, "updated_at": now}
    if error is None:
        values.update(webhook_delivered_at=now, webhook_last_error=None)
    else:
        values["webhook_last_error"] = error[:500]
    with engine.begin() as conn:
        conn.execute(
            update(j).where(j.c.id == job_id, j.c.company_id == company_id).values(**values)
        )
