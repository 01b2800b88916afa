"""What a job and its items look like to the rest of the service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

STATE_QUEUED = "queued"
STATE_RUNNING = "running"
STATE_FINISHED = "finished"
ITEM_PENDING = "pending"
ITEM_DONE = "done"
ITEM_FAILED = "failed"


@dataclass(frozen=True)
class NewItem:
    """One document of a job being created. ``error_code`` set: it failed before classifying
    (refused file, unidentified DTE) and is recorded failed at once."""

    document_id: str | None
    file_id: int | None = None
    filename: str | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class JobInfo:
    id: str
    company_id: str
    state: str
    total: int
    done: int
    failed: int
    source: str
    webhook_url: str | None
    webhook_attempts: int
    webhook_delivered_at: datetime | None
    webhook_last_error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @property
    def pending(self) -> int:
        return self.total - self.done - self.failed

    @property
    def finished(self) -> bool:
        return self.state == STATE_FINISHED


@dataclass(frozen=True)
class ItemInfo:
    seq: int
    document_id: str | None
    file_id: int | None
    filename: str | None
    rut_emisor: str | None
    tipo_dte: int | None
    folio: int | None
    state: str
    result: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    finished_at: datetime | None


@dataclass(frozen=True)
class ChunkOutcome:
    """What one task run did: ``recorded`` items it moved out of pending (0 on a replay) and
    whether it was the run that finished the job (exactly one run is)."""

    recorded: int
    failed: int
    finished_job: bool
