"""Liveness with a database ping, and Prometheus metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from ai_service.api.deps import Context
from ai_service.api.errors import ServiceUnavailable
from ai_service.db.session import ping

router = APIRouter(tags=["operations"])
log = logging.getLogger(__name__)


@router.get("/healthz", summary="Service and database health")
def healthz(ctx: Context) -> dict[str, str]:
    try:
        ping(ctx.engine)
    except SQLAlchemyError as exc:
        log.warning("health check: database unreachable (%s)", type(exc).__name__)
        raise ServiceUnavailable(
            "the database does not answer; check DTE_AI_DATABASE_URL and the database server",
            code="database_unavailable",
        ) from exc
    return {"status": "ok", "database": "ok"}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(ctx: Context) -> Response:
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
