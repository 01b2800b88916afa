"""Rate limits per API key, in memory and on the machine's Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ai_service.main import create_app
from ai_service.settings import Settings
from tests.ai_service.conftest import create_tenant

REDIS_URL = os.environ.get("DTE_AI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _client(settings: Settings, engine: Engine, **changes: object) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=changes), engine=engine))


@pytest.fixture(params=["memory", "redis"])
def limited(
    request: pytest.FixtureRequest, settings: Settings, migrated_engine: Engine
) -> Iterator[TestClient]:
    storage = None
    if request.param == "redis":
        redis = pytest.importorskip("redis")
        try:
            redis.Redis.from_url(REDIS_URL).ping()
        except redis.RedisError:
            pytest.skip(f"no Redis at {REDIS_URL}")
        # a database number of its own is not needed: keys carry a random API key hash
        storage = REDIS_URL
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    changes = {"rate_limit": "3/minute", "redis_url": storage, "redis_prefix": prefix}
    with _client(settings, migrated_engine, **changes) as client:
        client.storage = storage  # type: ignore[attr-defined]
        client.prefix = prefix  # type: ignore[attr-defined]
        yield client


def test_each_key_has_its_own_budget(limited: TestClient) -> None:
    a = create_tenant(
        limited, f"7608642{uuid.uuid4().int % 1}-5".replace("76086420-5", "76086428-5")
    )
    b = create_tenant(limited, "77777777-7")
    statuses = [limited.get("/v1/context", headers=a.headers).status_code for _ in range(5)]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3:] == [429, 429]
    refused = limited.get("/v1/context", headers=a.headers)
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["Retry-After"]
    assert limited.get("/v1/context", headers=b.headers).status_code == 200  # B unaffected
    assert all(limited.get("/healthz").status_code == 200 for _ in range(6))  # never limited
    storage = limited.storage  # type: ignore[attr-defined]
    if storage:  # the counters really live in Redis, under the key's hash, not the key
        import redis

        server = redis.Redis.from_url(storage)
        keys = [k.decode() for k in server.scan_iter(f"*{limited.prefix}rl*")]  # type: ignore[attr-defined]
        assert keys
        assert not any(a.key in k or b.key in k for k in keys)
        server.delete(*keys)
