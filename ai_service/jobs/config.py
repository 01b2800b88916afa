"""The jobs' settings: the ``celery_*`` and ``jobs_*`` fields of :class:`Settings`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from ai_service.settings import Settings


class JobsConfig(BaseModel):
    celery_broker_url: str | None = Field(
        default=None, description="Redis URL of the Celery broker; none = jobs run in-process"
    )
    celery_result_backend: str | None = Field(
        default=None, description="Celery result backend; default: the broker's Redis"
    )
    jobs_in_process: bool = Field(
        default=False, description="run jobs in this process even when a broker is configured"
    )
    jobs_workers: int = Field(
        default=2, ge=1, le=64, description="in-process threads / Celery worker concurrency"
    )
    jobs_queue: str = Field(default="dte-ai-jobs", min_length=1, max_length=200)
    jobs_key_prefix: str = Field(
        default="dte-ai:", description="prefix of every Redis key Celery writes"
    )
    jobs_chunk_size: int = Field(default=50, ge=1, le=5000, description="documents per task")
    jobs_max_documents: int = Field(default=20_000, ge=1, description="documents per job")
    jobs_visibility_timeout: float = Field(
        default=3600.0,
        gt=0,
        description="seconds before a task taken by a worker that died is handed out again",
    )

    @property
    def uses_celery(self) -> bool:
        return bool(self.celery_broker_url) and not self.jobs_in_process

    @classmethod
    def from_settings(cls, settings: Settings) -> JobsConfig:
        return cls(**{name: getattr(settings, name) for name in cls.model_fields})
