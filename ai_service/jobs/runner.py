"""Running jobs: on Celery workers (:class:`CeleryDispatcher`) or, the embedded default with no
broker, in this process (:class:`InProcessRunner`) — both run :func:`engine.process_range`.

Either way the job and its items are in the database before anything is queued, so a restart
loses nothing: :meth:`InProcessRunner.resume` picks up every unfinished job, and Celery hands a
task whose worker died to another worker (``acks_late`` + ``task_reject_on_worker_lost``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import httpx
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential,
)

from ai_service.jobs import repository as repo
from ai_service.jobs.config import JobsConfig
from ai_service.jobs.engine import Classifiers, process_range, ranges
from ai_service.jobs.webhook import (
    MAX_ATTEMPTS,
    TIMEOUT_SECONDS,
    WebhookDeliveryError,
    deliver,
)
from ai_service.secrets import SecretBox
from ai_service.services.engines import EngineCache

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    def dispatch(self, job_id: str, total: int) -> None: ...


class InProcessRunner:
    """A thread pool running the task code; ``jobs_workers`` threads."""

    def __init__(
        self,
        engine: Engine,
        box: SecretBox | Callable[[], SecretBox],
        config: JobsConfig,
        *,
        http_client: Callable[[], httpx.Client] | None = None,
        webhook_wait: float = 30.0,
        engine_cache: EngineCache | None = None,
    ) -> None:
        self.engine, self.config = engine, config
        self._box = box
        self._http_client = http_client or (lambda: httpx.Client(timeout=TIMEOUT_SECONDS))
        self._webhook_wait = webhook_wait
        self.classifiers = Classifiers(engine, engine_cache)
        self._pool = ThreadPoolExecutor(config.jobs_workers, thread_name_prefix="dte-ai-job")
        self._stopping = threading.Event()
        self._futures: dict[str, list[Future[Any]]] = {}
        self._lock = threading.Lock()

    def box(self) -> SecretBox:
        return self._box if isinstance(self._box, SecretBox) else self._box()

    def dispatch(self, job_id: str, total: int) -> None:
        futures = [
            self._pool.submit(self._run, job_id, lo, hi)
            for lo, hi in ranges(total, self.config.jobs_chunk_size)
        ]
        with self._lock:
            self._futures.setdefault(job_id, []).extend(futures)

    def resume(self) -> int:
        """Queue every unfinished job again (after a restart); finished items are skipped.
        Webhooks a previous process still owed are sent again."""
        unfinished = repo.unfinished_jobs(self.engine)
        for _company_id, job_id, total in unfinished:
            self.dispatch(job_id, total)
        for job_id in repo.owed_webhooks(self.engine, MAX_ATTEMPTS):
            self._start_webhook(job_id)
        return len(unfinished)

    def _run(self, job_id: str, lo: int, hi: int) -> None:
        retrying = Retrying(
            retry=retry_if_exception_type(OperationalError),  # a locked or restarting database
            stop=stop_after_attempt(5),
            wait=wait_exponential(multiplier=0.2, max=5),
            reraise=True,
        )
        outcome = retrying(process_range, self.engine, self.classifiers, job_id, lo, hi)
        if outcome.finished_job:
            self._start_webhook(job_id)

    def _start_webhook(self, job_id: str) -> None:
        """Deliver in a daemon thread of its own: retries wait up to an hour between attempts,
        which must neither hold a classifying thread nor keep the process from exiting (each
        attempt is recorded; the next process's :meth:`resume` sends what is still owed)."""
        future: Future[None] = Future()

        def run() -> None:
            try:
                self._deliver(job_id)
                future.set_result(None)
            except BaseException as exc:
                future.set_exception(exc)

        with self._lock:
            self._futures.setdefault(job_id, []).append(future)
        threading.Thread(target=run, name=f"dte-ai-webhook-{job_id}", daemon=True).start()

    def _deliver(self, job_id: str) -> None:
        company_id = repo.company_of_job(self.engine, job_id)
        if company_id is None:
            return
        retrying = Retrying(
            retry=retry_if_exception_type(WebhookDeliveryError),
            stop=stop_after_attempt(MAX_ATTEMPTS) | stop_when_event_set(self._stopping),
            wait=wait_exponential(multiplier=self._webhook_wait, max=3600),
            sleep=self._pause,
        )
        try:
            with self._http_client() as client:
                retrying(deliver, self.engine, self.box(), company_id, job_id, client)
        except RetryError:
            log.warning("job %s: webhook not delivered after %s attempts", job_id, MAX_ATTEMPTS)

    def _pause(self, seconds: float) -> None:
        self._stopping.wait(seconds)  # returns at once on shutdown

    def wait(self, job_id: str, timeout: float | None = None) -> None:
        """Block until the tasks queued for ``job_id`` (and its webhook) ran; re-raises."""
        while True:
            with self._lock:
                futures = list(self._futures.get(job_id, []))
            for future in futures:
                future.result(timeout)
            with self._lock:
                if len(self._futures.get(job_id, [])) == len(futures):
                    self._futures.pop(job_id, None)
                    return

    def shutdown(self) -> None:
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)


class CeleryDispatcher:
    """Queues one Celery task per range of ``jobs_chunk_size`` items."""

    def __init__(self, config: JobsConfig) -> None:
        from ai_service.jobs.tasks import create_celery

        self.config = config
        self.app = create_celery(config)

    def dispatch(self, job_id: str, total: int) -> None:
        from ai_service.jobs.tasks import CLASSIFY_RANGE, create_celery

        try:
            with self.app.producer_or_acquire() as producer:
                for lo, hi in ranges(total, self.config.jobs_chunk_size):
                    self.app.send_task(
                        CLASSIFY_RANGE,
                        args=(job_id, lo, hi),
                        queue=self.config.jobs_queue,
                        producer=producer,
                    )
        except Exception:
            # after a failed reconnect Celery's result backend stays unusable ("the application
            # must be restarted"): start afresh so the next job finds the broker once it is back
            self.app.close()
            self.app = create_celery(self.config)
            raise

    def resume(self, engine: Engine) -> int:
        """Queue unfinished jobs and owed webhooks again (an operator's tool, after a broker
        outage; replays record nothing twice)."""
        from ai_service.jobs.tasks import DELIVER_WEBHOOK

        unfinished = repo.unfinished_jobs(engine)
        for _company_id, job_id, total in unfinished:
            self.dispatch(job_id, total)
        for job_id in repo.owed_webhooks(engine, MAX_ATTEMPTS):
            self.app.send_task(DELIVER_WEBHOOK, args=(job_id,), queue=self.config.jobs_queue)
        return len(unfinished)

    def shutdown(self) -> None:
        self.app.close()


def build_dispatcher(
    config: JobsConfig,
    engine: Engine,
    box: SecretBox | Callable[[], SecretBox],
    *,
    resume: bool = True,
    engine_cache: EngineCache | None = None,
) -> InProcessRunner | CeleryDispatcher:
    """Celery when a broker is configured, else a runner in this process, which first picks up
    the jobs a previous process left unfinished (``resume``)."""
    if config.uses_celery:
        return CeleryDispatcher(config)
    runner = InProcessRunner(engine, box, config, engine_cache=engine_cache)
    if resume:
        runner.resume()
    return runner
