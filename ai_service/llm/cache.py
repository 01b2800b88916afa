"""Response cache: the same prompt, model and input are answered once.

Keys are scoped by company so one tenant can never learn, even from a cache hit, that another
sent the same document. Values are the validated JSON output plus the model that produced it.
A cache failure (Redis down) is a miss, never an error: the cache only saves money.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ai_service.llm.base import canonical_json, sha256_hex

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheKey:
    company_id: str
    fingerprint: str
    provider: str
    model: str
    input_sha256: str

    def as_str(self) -> str:
        # Hash the parts so no separator inside a company id or model name can collide.
        digest = sha256_hex(
            canonical_json([self.fingerprint, self.provider, self.model, self.input_sha256])
        )
        return f"{sha256_hex(self.company_id)[:16]}:{digest}"


@dataclass(frozen=True)
class CachedResponse:
    data: Any
    model: str

    def dumps(self) -> str:
        return canonical_json({"data": self.data, "model": self.model})

    @classmethod
    def loads(cls, raw: str | bytes) -> CachedResponse:
        body = json.loads(raw)
        return cls(data=body["data"], model=str(body["model"]))


class ResponseCache(Protocol):
    def get(self, key: CacheKey) -> CachedResponse | None: ...

    def set(self, key: CacheKey, value: CachedResponse, *, ttl_seconds: int) -> None: ...


class MemoryCache:
    """Bounded LRU with per-entry expiry, for one process."""

    def __init__(
        self, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> CachedResponse | None:
        name = key.as_str()
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                return None
            expires, raw = entry
            if expires <= self._clock():
                del self._entries[name]
                return None
            self._entries.move_to_end(name)
        return CachedResponse.loads(raw)

    def set(self, key: CacheKey, value: CachedResponse, *, ttl_seconds: int) -> None:
        with self._lock:
            self._entries[key.as_str()] = (self._clock() + ttl_seconds, value.dumps())
            self._entries.move_to_end(key.as_str())
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)


class RedisCache:
    """The same cache shared by every worker through Redis (redis-py, lazy connection)."""

    def __init__(self, url: str, *, prefix: str = "dte-ai:llm:", socket_timeout: float = 0.5):
        self._url = url
        self._prefix = prefix
        self._socket_timeout = socket_timeout
        self._client: Any = None
        self._lock = threading.Lock()

    def _redis(self) -> Any:
        with self._lock:
            if self._client is None:
                import redis

                self._client = redis.Redis.from_url(
                    self._url,
                    socket_timeout=self._socket_timeout,
                    socket_connect_timeout=self._socket_timeout,
                )
            return self._client

    def redis_key(self, key: CacheKey) -> str:
        return self._prefix + key.as_str()

    def get(self, key: CacheKey) -> CachedResponse | None:
        import redis

        try:
            raw = self._redis().get(self.redis_key(key))
        except redis.RedisError as exc:
            log.warning("llm cache unavailable, treating as a miss: %s", type(exc).__name__)
            return None
        if raw is None:
            return None
        try:
            return CachedResponse.loads(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("llm cache entry unreadable, ignoring it")
            return None

    def set(self, key: CacheKey, value: CachedResponse, *, ttl_seconds: int) -> None:
        import redis

        try:
            self._redis().set(self.redis_key(key), value.dumps(), ex=ttl_seconds)
        except redis.RedisError as exc:
            log.warning("llm cache unavailable, response not stored: %s", type(exc).__name__)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def cache_from_url(url: str | None, *, prefix: str = "dte-ai:llm:") -> ResponseCache:
    """Redis when a URL is configured, otherwise an in-process cache."""
    return RedisCache(url, prefix=prefix) if url else MemoryCache()
