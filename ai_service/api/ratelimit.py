"""Rate limits per API key (slowapi on ``limits``): Redis when configured, memory otherwise.

The budget is per API key across all routes, counted under a hash of the key: a raw API key
never becomes a Redis key name. Requests without a key are counted by client address; health
and metrics are never limited, so monitoring keeps working while a tenant is throttled.

The check runs as an app-wide dependency rather than slowapi's middleware: the middleware
looks routes up in ``app.routes``, where FastAPI >= 0.16x keeps included routers unflattened,
so it would silently limit nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from fastapi import Request
from fastapi.responses import JSONResponse
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from slowapi.util import get_remote_address

from ai_service.api.errors import error_body

UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def rate_limit_key(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    key = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
    key = key or request.headers.get("x-api-key", "")
    if key:
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return "ip:" + get_remote_address(request)


def rate_limited_response(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimitExceeded)
    return JSONResponse(
        error_body(
            "rate_limited",
            f"too many requests for this API key ({exc.detail}); slow down and retry later",
        ),
        status_code=429,
        headers={"Retry-After": "60"},
    )


def rate_limit_dependency(
    limit: str, storage_uri: str | None, *, prefix: str = "dte-ai:"
) -> Callable[[Request], None]:
    limiter = Limiter(
        key_func=rate_limit_key,
        storage_uri=storage_uri or "memory://",
        key_prefix=f"{prefix}rl",
        key_style="endpoint",  # one budget per key for the whole API, not one per route
        # a Redis outage must not take the API down: count per process meanwhile
        in_memory_fallback_enabled=True,
    )

    @limiter.limit(limit)
    def _counted(request: Request) -> None:
        return None

    def rate_limit(request: Request) -> None:
        if request.url.path not in UNLIMITED_PATHS:
            _counted(request)

    return rate_limit
