"""Signed webhooks for document state changes, delivered at least once.

A delivery row is written in the same transaction as the event it announces, so no state
change can happen without its webhook being owed. Deliveries are retried with exponential
backoff; the schedule lives in the database (``next_attempt_at``), so a restart loses nothing.

Each POST carries ``X-DteAi-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "t.body")>``
(the scheme Stripe popularised): receivers recompute it and reject stale timestamps. The
``X-DteAi-Delivery`` header is the idempotency key: a receiver may see a delivery twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import httpx
from sqlalchemy import Connection, Engine, insert, select, update

from ai_service.api.errors import NotFound, Unprocessable
from ai_service.db.outbox_tables import webhook_deliveries, webhook_endpoints
from ai_service.db.session import reading
from ai_service.repositories.companies import aware, utcnow
from ai_service.secrets import SecretBox

MAX_ATTEMPTS: Final = 12  # about a day of backoff, capped at an hour between tries
BASE_DELAY_SECONDS: Final = 30.0
MAX_DELAY_SECONDS: Final = 3600.0
SIGNATURE_HEADER: Final = "X-DteAi-Signature"


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    active: bool
    created_at: datetime


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: bytes, header: str, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """What a receiver does (and what the tests do)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


def register(engine: Engine, box: SecretBox, company_id: str, url: str) -> tuple[Endpoint, str]:
    """A new endpoint and its signing secret, which is shown only this once."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise Unprocessable(
            "the webhook URL must be an absolute http(s) URL", code="invalid_webhook_url"
        )
    secret = secrets.token_urlsafe(32)
    endpoint = Endpoint(str(uuid.uuid4()), url, True, utcnow())
    with engine.begin() as conn:
        conn.execute(
            insert(webhook_endpoints).values(
                id=endpoint.id,
                company_id=company_id,
                url=url,
                secret=box.encrypt(secret.encode()),
                active=True,
                created_at=endpoint.created_at,
            )
        )
    return endpoint, secret


def endpoints(engine: Engine, company_id: str) -> list[Endpoint]:
    with reading(engine) as conn:
        rows = conn.execute(
            select(webhook_endpoints).where(webhook_endpoints.c.company_id == company_id)
        ).all()
    return [Endpoint(r.id, r.url, r.active, aware(r.created_at)) for r in rows]


def deactivate(engine: Engine, company_id: str, endpoint_id: str) -> None:
    with engine.begin() as conn:
        done = conn.execute(
            update(webhook_endpoints)
            .where(
                webhook_endpoints.c.id == endpoint_id,
                webhook_endpoints.c.company_id == company_id,
            )
            .values(active=False)
        ).rowcount
    if not done:
        raise NotFound(f"no webhook {endpoint_id} for this company", code="webhook_not_found")


def owe(conn: Connection, company_id: str, event_id: int, payload: dict[str, Any]) -> None:
    """Called inside the transaction that writes the event."""
    active = conn.execute(
        select(webhook_endpoints.c.id).where(
            webhook_endpoints.c.company_id == company_id, webhook_endpoints.c.active.is_(True)
        )
    ).all()
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True)
    now = utcnow()
    for (endpoint_id,) in active:
        conn.execute(
            insert(webhook_deliveries).values(
                company_id=company_id,
                endpoint_id=endpoint_id,
                event_id=event_id,
                payload=body,
                attempts=0,
                next_attempt_at=now,
            )
        )


def backoff(attempts: int, *, jitter: Callable[[], float] = random.random) -> timedelta:
    delay = min(BASE_DELAY_SECONDS * 2 ** (attempts - 1), MAX_DELAY_SECONDS)
    return timedelta(seconds=delay * (0.8 + 0.4 * jitter()))


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0


def deliver_due(
    engine: Engine,
    box: SecretBox,
    client: httpx.Client,
    *,
    now: Callable[[], datetime] = utcnow,
    limit: int = 100,
) -> DeliveryReport:
    """POST every due delivery once; failures are rescheduled, never dropped silently."""
    report = DeliveryReport()
    d, e = webhook_deliveries, webhook_endpoints
    with reading(engine) as conn:
        due = conn.execute(
            select(d.c.id, d.c.payload, d.c.attempts, e.c.url, e.c.secret)
            .join(e, e.c.id == d.c.endpoint_id)
            .where(
                d.c.delivered_at.is_(None),
                d.c.attempts < MAX_ATTEMPTS,
                d.c.next_attempt_at <= now(),
                e.c.active.is_(True),
            )
            .order_by(d.c.id)
            .limit(limit)
        ).all()
    for row in due:
        body = row.payload.encode()
        secret = box.decrypt(row.secret)
        stamp = int(now().timestamp())
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, stamp, body),
            "X-DteAi-Delivery": str(row.id),
        }
        error: str | None = None
        try:
            response = client.post(row.url, content=body, headers=headers)
            if not response.is_success:
                error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        attempts = row.attempts + 1
        with engine.begin() as conn:
            if error is None:
                values: dict[str, Any] = {"attempts": attempts, "delivered_at": now()}
                report.delivered += 1
            else:
                values = {
                    "attempts": attempts,
                    "last_error": error[:500],
                    "next_attempt_at": now() + backoff(attempts),
                }
                report.failed += 1
            conn.execute(update(d).where(d.c.id == row.id).values(**values))
    return report
