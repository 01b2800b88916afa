"""Response caches: in-memory, and Redis against the real local server."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest

from ai_service.llm.cache import CachedResponse, CacheKey, MemoryCache, RedisCache, cache_from_url
from ai_service.llm.config import LLMConfig
from ai_service.llm.orchestrator import Orchestrator
from ai_service.llm.registry import ProviderRegistry

from .conftest import COMPANY, LLM_ANSWER, Classification, CountingEngine, FakeClock

REDIS_URL = os.environ.get("DTE_AI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def key(n: int = 1, company: str = COMPANY, **parts: str) -> CacheKey:
    values = {
        "fingerprint": "f" * 64,
        "provider": "anthropic",
        "model": "claude-haiku-5-5",
        "input_sha256": f"{n:064x}",
    }
    values.update(parts)
    return CacheKey(company_id=company, **values)


VALUE = CachedResponse(data=LLM_ANSWER, model="claude-haiku-5-5")


def test_every_key_part_separates_entries() -> None:
    base = key()
    others = [
        key(2),
        key(company="company-b"),
        key(fingerprint="e" * 64),
        key(provider="ollama"),
        key(model="claude-sonnet-5-5"),
    ]
    assert len({base.as_str(), *(k.as_str() for k in others)}) == 6
    assert base.as_str() == key().as_str()
    assert COMPANY not in base.as_str()  # company ids do not leak into key names


def test_memory_cache_expires_entries() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    cache.set(key(), VALUE, ttl_seconds=60)
    assert cache.get(key()) == VALUE
    assert cache.get(key(2)) is None
    clock.now += 61
    assert cache.get(key()) is None


def test_memory_cache_is_bounded_lru() -> None:
    cache = MemoryCache(max_entries=2)
    cache.set(key(1), VALUE, ttl_seconds=60)
    cache.set(key(2), VALUE, ttl_seconds=60)
    assert cache.get(key(1)) == VALUE  # 1 is now the most recently used
    cache.set(key(3), VALUE, ttl_seconds=60)
    assert cache.get(key(2)) is None
    assert cache.get(key(1)) == VALUE and cache.get(key(3)) == VALUE


@pytest.fixture
def redis_cache() -> Iterator[RedisCache]:
    import redis

    prefix = f"dte-ai-test:{uuid.uuid4().hex}:"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not running at {REDIS_URL} (start redis-server)")
    cache = RedisCache(REDIS_URL, prefix=prefix)
    yield cache
    cache.close()
    leftovers = list(client.scan_iter(match=f"{prefix}*"))
    if leftovers:
        client.delete(*leftovers)
    client.close()


def test_redis_cache_round_trip_with_ttl(redis_cache: RedisCache) -> None:
    import redis

    assert redis_cache.get(key()) is None
    redis_cache.set(key(), VALUE, ttl_seconds=120)
    assert redis_cache.get(key()) == VALUE
    assert redis_cache.get(key(company="company-b")) is None

    raw = redis.Redis.from_url(REDIS_URL)
    name = redis_cache.redis_key(key())
    ttl = cast(int, raw.ttl(name))  # redis-py types sync and async replies as one union
    stored = cast(bytes | None, raw.get(name))
    assert 0 < ttl <= 120
    assert json.loads(stored or b"") == {"data": LLM_ANSWER, "model": "claude-haiku-5-5"}
    raw.close()


def test_redis_cache_ignores_an_unreadable_entry(redis_cache: RedisCache) -> None:
    import redis

    raw = redis.Redis.from_url(REDIS_URL)
    raw.set(redis_cache.redis_key(key()), b"not json", ex=60)
    raw.close()
    assert redis_cache.get(key()) is None


def test_unreachable_redis_is_a_miss_not_an_error() -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    cache = RedisCache("redis://127.0.0.1:1/0")
    cache.set(key(), VALUE, ttl_seconds=60)
    assert cache.get(key()) is None


def test_cache_from_url_picks_the_backend() -> None:
    assert isinstance(cache_from_url(None), MemoryCache)
    assert isinstance(cache_from_url(REDIS_URL), RedisCache)


def test_orchestrator_answers_repeats_from_redis(
    redis_cache: RedisCache, prompt: Any, local: CountingEngine
) -> None:
    """Two workers sharing Redis: the second reuses the first one's provider answer."""
    from .test_anthropic import FakeMessagesApi, anthropic_on, ok

    api = FakeMessagesApi(ok())
    setup = anthropic_on(api)
    factories = setup.pop("factories")

    def worker() -> Orchestrator:
        registry = ProviderRegistry(LLMConfig(**setup), factories=factories)
        return Orchestrator(registry, cache=redis_cache, sleep=lambda _: None)

    first = worker().complete(
        "classification", prompt, Classification, company_id=COMPANY, local=local.engine()
    )
    second = worker().complete(
        "classification", prompt, Classification, company_id=COMPANY, local=local.engine()
    )
    assert first.engine.provider == "anthropic" and not first.cached
    assert second.cached and second.output == first.output and len(api.requests) == 1
