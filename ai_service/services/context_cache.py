"""Per-process cache of each company's context, invalidated by the company's context version.

Building a context (and the indexes the engines derive from it) costs far more than one
indexed ``SELECT version``; every write bumps the version, so a correction reaches the next
answer at once, in every process, without a retrain job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine

from ai_service.context.models import CompanyContext
from ai_service.repositories import context as repo
from ai_service.repositories.companies import Company

T = TypeVar("T")


@dataclass
class CachedContext:
    version: int
    context: CompanyContext
    derived: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def memo(self, name: str, build: Callable[[CompanyContext], T]) -> T:
        """An index or model derived from this context version, built once."""
        with self.lock:
            if name not in self.derived:
                self.derived[name] = build(self.context)
            value: T = self.derived[name]
            return value


class ContextCache:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._entries: dict[str, CachedContext] = {}
        self._lock = threading.Lock()

    def get(self, company: Company) -> CachedContext:
        version = repo.version(self._engine, company.id)
        entry = self._entries.get(company.id)
        if entry is not None and entry.version == version:
            return entry
        with self._lock:
            entry = self._entries.get(company.id)
            if entry is None or entry.version != version:
                context = repo.load(self._engine, company.id, company.rut, company.name)
                entry = CachedContext(version, context)
                self._entries[company.id] = entry
            return entry
