"""``python -m ai_service.jobs.worker [--concurrency N] [celery worker options]``: a Celery
worker for the jobs queue, configured from ``DTE_AI_*`` (``DTE_AI_CELERY_BROKER_URL`` needed)."""

from __future__ import annotations

import sys

from ai_service.jobs.config import JobsConfig
from ai_service.jobs.tasks import create_celery
from ai_service.settings import Settings


def worker_argv(config: JobsConfig, extra: list[str]) -> list[str]:
    argv = ["worker", "--queues", config.jobs_queue, "--loglevel", "INFO"]
    if not any(a.startswith(("--concurrency", "-c")) for a in extra):
        argv += ["--concurrency", str(config.jobs_workers)]
    return argv + extra


def main(argv: list[str] | None = None) -> None:
    config = JobsConfig.from_settings(Settings())
    app = create_celery(config)
    app.worker_main(worker_argv(config, list(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    main()
