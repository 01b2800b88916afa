"""The Celery app and its tasks. Workers: ``python -m ai_service.jobs.worker`` (or
``dte-ai jobs worker``), configured by the same ``DTE_AI_*`` variables as the service.

Delivery guarantees: a task is acknowledged only after it returned (``acks_late``), so its
results are committed first; a worker process that dies mid-task has its message re-queued
(``task_reject_on_worker_lost``), and a whole worker killed with SIGKILL leaves it unacked in
Redis, where the next worker restores it after ``jobs_visibility_timeout``. Replaying a task is
harmless: only items still pending are classified, and each is recorded once.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from celery import Celery, Task

from ai_service.jobs.config import JobsConfig

log = logging.getLogger(__name__)

CLASSIFY_RANGE = "dte_ai.jobs.classify_range"
DELIVER_WEBHOOK = "dte_ai.jobs.deliver_webhook"


_QUICK_RETRIES = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


def celery_settings(config: JobsConfig) -> dict[str, Any]:
    broker = config.celery_broker_url
    transport = {
        "global_keyprefix": config.jobs_key_prefix,
        "visibility_timeout": config.jobs_visibility_timeout,
        # look for messages of dead workers every 10 s (kombu's default scans every 10th time)
        "unacked_restore_interval": min(10.0, config.jobs_visibility_timeout),
        "unacked_restore_throttle": 1,
    }
    return {
        "broker_url": broker,
        "result_backend": config.celery_result_backend or broker,
        "broker_transport_options": transport,
        "result_backend_transport_options": {
            "global_keyprefix": config.jobs_key_prefix,
            "retry_policy": _QUICK_RETRIES,
        },
        "broker_connection_retry_on_startup": True,
        # a request queueing a job must not hang on a dead broker: a few quick tries, then 503
        "broker_connection_timeout": 2.0,
        "task_publish_retry_policy": _QUICK_RETRIES,
        "task_default_queue": config.jobs_queue,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # one message at a time per process: a prefetched task of a dead worker waits for the
        # visibility timeout, and fewer waiting means a faster recovery
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_expires": 24 * 3600,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
    }


@dataclass
class _WorkerState:
    pid: int
    engine: Any
    classifiers: Any
    settings: Any


_state: _WorkerState | None = None
_state_lock = threading.Lock()


def _worker_state() -> _WorkerState:
    """The database engine and classifier cache of this process (built after the fork)."""
    global _state
    with _state_lock:
        if _state is None or _state.pid != os.getpid():
            from ai_service.db.session import engine_for
            from ai_service.jobs.engine import Classifiers
            from ai_service.settings import Settings

            settings = Settings()
            engine = engine_for(settings)
            _state = _WorkerState(os.getpid(), engine, Classifiers(engine), settings)
        return _state


def _classify_range(task: Task, job_id: str, lo: int, hi: int) -> dict[str, Any]:
    from ai_service.jobs import repository as repo
    from ai_service.jobs.engine import process_range

    state = _worker_state()
    outcome = process_range(state.engine, state.classifiers, job_id, lo, hi)
    owed = outcome.finished_job
    if not owed and outcome.recorded == 0:
        # a replay of the task that finished the job may have died before queueing the webhook
        company_id = repo.company_of_job(state.engine, job_id)
        if company_id is not None:
            job = repo.get_job(state.engine, company_id, job_id)
            owed = job.finished and job.webhook_url is not None and not job.webhook_delivered_at
    if owed:
        task.app.send_task(DELIVER_WEBHOOK, args=(job_id,))  # the default queue: ours
    return {"recorded": outcome.recorded, "failed": outcome.failed, "finished": owed}


def _deliver_webhook(task: Task, job_id: str) -> bool:
    import httpx

    from ai_service.jobs import repository as repo
    from ai_service.jobs.webhook import TIMEOUT_SECONDS, deliver
    from ai_service.secrets import SecretBox

    state = _worker_state()
    company_id = repo.company_of_job(state.engine, job_id)
    if company_id is None:
        return False
    box = SecretBox(state.settings.secret_key_bytes())
    with httpx.Client(timeout=TIMEOUT_SECONDS) as client:
        return deliver(state.engine, box, company_id, job_id, client)


def create_celery(config: JobsConfig) -> Celery:
    """A Celery app for ``config``, with the jobs' tasks registered on it."""
    from sqlalchemy.exc import OperationalError

    from ai_service.jobs.webhook import MAX_ATTEMPTS, WebhookDeliveryError

    if not config.celery_broker_url:
        raise ValueError("celery_broker_url is not set: jobs run in-process without a broker")
    app = Celery("dte_ai_jobs", set_as_current=False)
    app.conf.update(celery_settings(config))
    app.task(
        name=CLASSIFY_RANGE,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        autoretry_for=(OperationalError,),  # a locked or restarting database
        retry_backoff=True,
        retry_backoff_max=60,
        max_retries=10,
    )(_classify_range)
    app.task(
        name=DELIVER_WEBHOOK,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        autoretry_for=(WebhookDeliveryError,),
        retry_backoff=30,
        retry_backoff_max=3600,
        retry_jitter=True,
        max_retries=MAX_ATTEMPTS - 1,
    )(_deliver_webhook)
    return app


def __getattr__(name: str) -> Any:
    """``celery -A ai_service.jobs.tasks worker`` asks for ``app``: built from the environment
    on first access (never at import)."""
    if name in ("app", "celery"):
        global _app
        with _state_lock:
            if _app is None:
                from ai_service.settings import Settings

                _app = create_celery(JobsConfig.from_settings(Settings()))
            return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_app: Celery | None = None
