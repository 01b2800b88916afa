"""The FastAPI app factory: ``uvicorn ai_service.main:create_app --factory``."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI, HTTPException
from sqlalchemy import Engine
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ai_service.api.deps import AppContext, Metrics, chile_now
from ai_service.api.errors import error_body, install_error_handlers
from ai_service.secrets import SecretBox
from ai_service.settings import ConfigurationError, Settings, get_settings


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    now: Callable[[], datetime] | None = None,
) -> FastAPI:
    """Build the app. ``engine`` and ``now`` (Chilean local time) are for tests and embedding.

    The database must already be at the head revision (``dte-ai serve`` upgrades it first).
    """
    from ai_service.api.routes import (
        ai,
        cafs,
        certificates,
        chat,
        companies,
        context,
        documents_pdf,
        dte,
        health,
        index,
        jobs,
        received,
        sii,
        sii_decisions,
        validation,
        webhooks,
    )
    from ai_service.db.session import engine_for

    settings = settings or get_settings()
    for path in settings.trusted_sii_keys:
        if not path.is_file():
            raise ConfigurationError(
                f"DTE_AI_TRUSTED_SII_KEYS names {path}, which is not a readable file"
            )
    owns_engine = engine is None
    ctx = AppContext(
        settings=settings,
        engine=engine if engine is not None else engine_for(settings),
        box=SecretBox(settings.secret_key_bytes()),
        now=now or chile_now,
        metrics=Metrics(),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_engine:
            ctx.engine.dispose()

    from fastapi import Depends
    from slowapi.errors import RateLimitExceeded

    from ai_service.api.ratelimit import rate_limit_dependency, rate_limited_response

    rate_limit = rate_limit_dependency(
        settings.rate_limit, settings.redis_url, prefix=settings.redis_prefix
    )
    app = FastAPI(
        dependencies=[Depends(rate_limit)],
        title="dte-ai",
        version="0.1.0",
        summary="Issue Chilean electronic tax documents (DTE) for the SII",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    app.add_exception_handler(RateLimitExceeded, rate_limited_response)
    for module in (
        health,
        companies,
        certificates,
        cafs,
        dte,
        documents_pdf,
        sii,
        webhooks,
        received,
        sii_decisions,
        context,
        validation,
        ai,
        index,
        jobs,
        chat,
    ):
        app.include_router(module.router)
    # added last = outermost: the metrics also count requests refused for their size
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestMetrics, metrics=ctx.metrics)
    return app


def _too_large_message(limit: int) -> str:
    return f"the request body is over the limit of {limit} bytes"


class BodySizeLimit:
    """413 for bodies over ``max_bytes``: by Content-Length up front, else while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_json(send, 413, "request_too_large", _too_large_message(self.max_bytes))
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # FastAPI re-raises HTTPException from body reading; the handler shapes it.
                    raise HTTPException(413, _too_large_message(self.max_bytes))
            return message

        await self.app(scope, limited, send)


async def _send_json(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _route_template(scope: Scope) -> str:
    """The matched route's template; refused-early requests (413) are matched here. Paths that
    match no route share one label, so scanners cannot blow up the metric's cardinality."""
    route = scope.get("route")
    if route is None:
        for candidate in getattr(scope.get("app"), "routes", ()):
            if candidate.matches(scope)[0] == Match.FULL:
                route = candidate
                break
    return getattr(route, "path", None) or "unmatched"


class RequestMetrics:
    """Count and time requests by route template (``/v1/dte/{document_id}``), never raw path."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            template = _route_template(scope)
            method = scope.get("method", "")
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)
