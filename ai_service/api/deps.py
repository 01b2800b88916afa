"""Request dependencies: the per-app context (settings, engine, secrets, metrics) and auth."""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import Engine

from ai_service.api.errors import Forbidden, Unauthorized
from ai_service.repositories.companies import Company, company_for_key
from ai_service.secrets import SecretBox
from ai_service.settings import Settings

if TYPE_CHECKING:
    from ai_service.llm.base import LLMClient
    from ai_service.services.engines import EngineCache
    from dte_core.caf import SiiKeyring
    from dte_core.folios import FolioStore

_SANTIAGO = ZoneInfo("America/Santiago")


def chile_now() -> datetime:
    """SII dates and timestamps are Chilean local time without an offset."""
    return datetime.now(_SANTIAGO).replace(tzinfo=None, microsecond=0)


class Metrics:
    """Prometheus instruments on a registry of their own, so several apps can coexist."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "dte_ai_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dte_ai_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            registry=self.registry,
        )
        self.documents_issued = Counter(
            "dte_ai_documents_issued",
            "Signed documents issued, by tipo_dte",
            ["tipo_dte"],
            registry=self.registry,
        )


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    box: SecretBox
    now: Callable[[], datetime] = chile_now
    metrics: Metrics = field(default_factory=Metrics)
    _keyring: SiiKeyring | None = field(default=None, repr=False)
    _engine_cache: EngineCache | None = field(default=None, repr=False)
    _vector_store: Any = field(default=None, repr=False)
    #: False once built with no provider configured; None until first asked
    _llm: Any = field(default=None, repr=False)
    _llm_config: Any = field(default=None, repr=False)
    _prompts: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def keyring(self) -> SiiKeyring:
        """The SII keys plus the configured extra ones, loaded on first use."""
        with self._lock:
            if self._keyring is None:
                from dte_core.caf import SiiKeyring

                keyring = SiiKeyring.default()
                for path in self.settings.trusted_sii_keys:
                    keyring = keyring.with_trusted_key(path.read_bytes())
                self._keyring = keyring
            return self._keyring

    def engine_cache(self) -> EngineCache:
        """Each company's local engines, kept warm and taught new decisions in place."""
        with self._lock:
            if self._engine_cache is None:
                from ai_service.services.engines import EngineCache

                self._engine_cache = EngineCache(self.engine)
            return self._engine_cache

    def vector_store(self) -> Any:
        """The embeddings index (the model loads on first use, not here)."""
        with self._lock:
            if self._vector_store is None:
                from ai_service.services.vectors import open_store

                self._vector_store = open_store(self.settings)
            return self._vector_store

    def llm_config(self) -> Any:
        """The LLM layer's configuration with the prompt gate, built (and the lock read) once."""
        if self._llm_config is None:
            config = self.settings.llm_config()
            with self._lock:
                self._llm_config = self._llm_config or config
        return self._llm_config

    def llm(self) -> LLMClient | None:
        """The configured LLM client, or None when every task runs on the local engines."""
        if self._llm is None:
            local = self.settings.llm_provider == "local"
            client = False if local else self.settings.build_llm_client(self.llm_config())
            with self._lock:
                if self._llm is None:
                    self._llm = client
        return self._llm or None

    def prompts(self) -> Any:
        """The prompt registry (only used when an LLM is configured)."""
        if self._prompts is None:
            from ai_service.llm.prompts import PromptRegistry

            registry = PromptRegistry.from_config(self.llm_config())
            with self._lock:
                self._prompts = self._prompts or registry
        return self._prompts

    def folio_store(self) -> FolioStore:
        from dte_core.folios import FolioStore

        return FolioStore(self.engine, low_water_mark=self.settings.folio_low_water_mark)


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Context = Annotated[AppContext, Depends(get_context)]

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the API key")
_admin_header = APIKeyHeader(
    name="X-Admin-Token", auto_error=False, description="DTE_AI_ADMIN_TOKEN (or as Bearer)"
)


def current_company(
    ctx: Context,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    api_key: Annotated[str | None, Security(_api_key_header)],
) -> Company:
    key = bearer.credentials if bearer else api_key
    if not key:
        raise Unauthorized(
            "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
        )
    company = company_for_key(ctx.engine, ctx.box, key)
    if company is None:
        raise Unauthorized("unknown or revoked API key", code="invalid_api_key")
    return company


CurrentCompany = Annotated[Company, Depends(current_company)]


def require_admin(
    ctx: Context,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    admin_token: Annotated[str | None, Security(_admin_header)],
) -> None:
    expected = ctx.settings.admin_token
    if expected is None or not expected.get_secret_value():
        raise Forbidden(
            "company administration over HTTP is disabled: set DTE_AI_ADMIN_TOKEN, or use "
            "`dte-ai company create` on the server",
            code="admin_disabled",
        )
    given = admin_token or (bearer.credentials if bearer else "")
    if not given:
        raise Unauthorized("missing admin token: send `X-Admin-Token: <token>`")
    if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise Unauthorized("wrong admin token", code="invalid_admin_token")


AdminOnly = Depends(require_admin)
