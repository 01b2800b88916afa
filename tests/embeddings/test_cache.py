"""Content keys, in-batch dedupe and the three vector caches."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from embeddings.cache import (
    LRUVectorCache,
    SqliteVectorCache,
    TieredVectorCache,
    content_key,
    dedupe,
)
from embeddings.errors import InvalidInputError, VectorCacheError


def vec(*values: float) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def test_content_key_depends_on_text_and_model() -> None:
    assert content_key("flete", "m1") == content_key("flete", "m1")
    assert content_key("flete", "m1") != content_key("flete", "m2")
    assert content_key("flete", "m1") != content_key("Flete", "m1")
    # The separator keeps (model, text) pairs from colliding by concatenation.
    assert content_key("bc", "a") != content_key("c", "ab")


def test_dedupe_keeps_first_seen_order_and_maps_back() -> None:
    keys = ["b", "a", "b", "c", "a"]
    unique, inverse = dedupe(keys)
    assert unique == ["b", "a", "c"]
    assert [unique[i] for i in inverse] == keys


def test_lru_evicts_least_recently_used() -> None:
    cache = LRUVectorCache(max_entries=2)
    cache.put_many({"a": vec(1), "b": vec(2)})
    assert set(cache.get_many(["a"])) == {"a"}  # touching "a" makes "b" the oldest
    cache.put_many({"c": vec(3)})
    assert set(cache.get_many(["a", "b", "c"])) == {"a", "c"}
    assert len(cache) == 2


def test_lru_vectors_are_read_only_copies() -> None:
    cache = LRUVectorCache()
    original = vec(1, 2)
    cache.put_many({"k": original})
    original[0] = 99
    cached = cache.get_many(["k"])["k"]
    assert cached[0] == 1
    with pytest.raises(ValueError):
        cached[0] = 5


def test_lru_needs_room_for_one() -> None:
    with pytest.raises(InvalidInputError):
        LRUVectorCache(max_entries=0)


def test_sqlite_round_trip_and_torn_rows(tmp_path: Path) -> None:
    path = tmp_path / "c" / "vectors.sqlite3"
    cache = SqliteVectorCache(path)
    cache.put_many({"a": vec(0.5, -1.25, 3), "b": vec(1, 2, 3)})
    cache.put_many({"a": vec(7, 8, 9)})  # replace
    cache.close()
    with sqlite3.connect(path) as db:  # a row whose bytes do not match its dimension
        db.execute("UPDATE vectors SET data = ? WHERE key = 'b'", (b"\x00" * 5,))
    reopened = SqliteVectorCache(path)
    found = reopened.get_many(["a", "b", "missing"])
    assert set(found) == {"a"}
    np.testing.assert_array_equal(found["a"], vec(7, 8, 9))
    assert len(reopened) == 2


def test_sqlite_handles_more_keys_than_one_statement_binds(tmp_path: Path) -> None:
    cache = SqliteVectorCache(tmp_path / "v.sqlite3")
    cache.put_many({f"k{i}": vec(i) for i in range(1200)})
    assert len(cache.get_many([f"k{i}" for i in range(1200)])) == 1200


def test_sqlite_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(VectorCacheError, match="DTE_AI_EMBEDDING_CACHE_PATH"):
        SqliteVectorCache(blocker / "vectors.sqlite3")


def test_tiered_cache_warms_memory_from_disk(tmp_path: Path) -> None:
    disk = SqliteVectorCache(tmp_path / "v.sqlite3")
    disk.put_many({"a": vec(1, 2)})
    memory = LRUVectorCache()
    tiered = TieredVectorCache(memory, disk)
    assert set(tiered.get_many(["a", "b"])) == {"a"}
    assert set(memory.get_many(["a"])) == {"a"}
    tiered.put_many({"b": vec(3, 4)})
    assert set(disk.get_many(["b"])) == {"b"}
