"""The job-finished webhook: one signed POST per job, retried until delivered.

Signed like the document webhooks (``ai_service.outbox.webhooks.sign``: header
``X-DteAi-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "t.body")>``), with the per-job
secret returned once when the job was created. ``X-DteAi-Delivery: job-<id>`` is the idempotency
key: a receiver may see the webhook more than once (at-least-once delivery).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import httpx
from sqlalchemy import Engine

from ai_service.api.errors import Unprocessable
from ai_service.jobs import repository as repo
from ai_service.jobs.models import JobInfo
from ai_service.outbox.webhooks import MAX_ATTEMPTS as MAX_ATTEMPTS  # the same budget
from ai_service.outbox.webhooks import SIGNATURE_HEADER, sign
from ai_service.secrets import SecretBox

EVENT = "classify_job.finished"
TIMEOUT_SECONDS = 10.0


class WebhookDeliveryError(RuntimeError):
    """The receiver did not answer 2xx; the delivery is retried."""


def check_url(url: str) -> str:
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise Unprocessable(
            "webhook_url must be an absolute http(s) URL", code="invalid_webhook_url"
        )
    return url


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def payload(job: JobInfo) -> dict[str, Any]:
    return {
        "event": EVENT,
        "job_id": job.id,
        "state": job.state,
        "total": job.total,
        "done": job.done,
        "failed": job.failed,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "results_url": f"/v1/jobs/{job.id}/results",
    }


def deliver(
    engine: Engine, box: SecretBox, company_id: str, job_id: str, client: httpx.Client
) -> bool:
    """POST the webhook once; False when there is nothing (more) to deliver. Raises
    :class:`WebhookDeliveryError` on failure, after recording the attempt."""
    job = repo.get_job(engine, company_id, job_id)
    token = repo.webhook_secret(engine, company_id, job_id)
    if job.webhook_url is None or token is None or job.webhook_delivered_at is not None:
        return False
    if job.webhook_attempts >= MAX_ATTEMPTS:
        return False
    body = json.dumps(payload(job), ensure_ascii=False, sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(box.decrypt(token), int(time.time()), body),
        "X-DteAi-Delivery": f"job-{job.id}",
    }
    error: str | None = None
    try:
        response = client.post(job.webhook_url, content=body, headers=headers)
        if not response.is_success:
            error = f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    repo.record_webhook_attempt(engine, company_id, job_id, error)
    if error is not None:
        raise WebhookDeliveryError(error)
    return True
