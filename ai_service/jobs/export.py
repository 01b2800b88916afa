"""A job's results as JSON Lines (everything the engine said) or CSV (one row per document, the
columns an accountant filters on), streamed in item order."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine

from ai_service.jobs import repository as repo
from ai_service.jobs.models import ItemInfo

CSV_COLUMNS = (
    "seq",
    "document_id",
    "filename",
    "rut_emisor",
    "tipo_dte",
    "folio",
    "state",
    "account",
    "confidence",
    "needs_review",
    "engine",
    "candidates",
    "error_code",
    "error_message",
)


def item_dict(item: ItemInfo) -> dict[str, Any]:
    return {
        "seq": item.seq,
        "document_id": item.document_id,
        "file_id": item.file_id,
        "filename": item.filename,
        "rut_emisor": item.rut_emisor,
        "tipo_dte": item.tipo_dte,
        "folio": item.folio,
        "state": item.state,
        "result": item.result,
        "error": (
            {"code": item.error_code, "message": item.error_message} if item.error_code else None
        ),
        "finished_at": item.finished_at.isoformat() if item.finished_at else None,
    }


def _csv_row(item: ItemInfo) -> list[Any]:
    invoice = (item.result or {}).get("invoice") or {}
    candidates = ";".join(
        f"{c['value']}:{c['score']}" for c in invoice.get("candidates", []) if "value" in c
    )
    return [
        item.seq,
        item.document_id or "",
        item.filename or "",
        item.rut_emisor or "",
        item.tipo_dte if item.tipo_dte is not None else "",
        item.folio if item.folio is not None else "",
        item.state,
        invoice.get("decision") or "",
        invoice.get("confidence", ""),
        "" if not invoice else str(bool(invoice.get("needs_review"))).lower(),
        invoice.get("engine", ""),
        candidates,
        item.error_code or "",
        item.error_message or "",
    ]


def iter_jsonl(engine: Engine, company_id: str, job_id: str) -> Iterator[bytes]:
    for item in repo.iter_items(engine, company_id, job_id):
        yield (json.dumps(item_dict(item), ensure_ascii=False) + "\n").encode()


def iter_csv(engine: Engine, company_id: str, job_id: str) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180; what spreadsheets expect
    writer.writerow(CSV_COLUMNS)
    for n, item in enumerate(repo.iter_items(engine, company_id, job_id), start=1):
        writer.writerow(_csv_row(item))
        if n % 200 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()
