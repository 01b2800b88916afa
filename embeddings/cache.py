"""Content-hash dedupe and vector caches, so a text is encoded at most once per model.

Keys are ``sha256(model_id NUL text)``: the same text under another model (or another model
path) never reuses a vector computed by a different model. The text is hashed exactly as the
model sees it; no normalisation, because the model's output depends on case and accents too.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from embeddings.errors import InvalidInputError, VectorCacheError

Vector = npt.NDArray[np.float32]

DEFAULT_MEMORY_ENTRIES = 20_000


def content_key(text: str, model_id: str) -> str:
    """The cache key of ``text`` as encoded by the model ``model_id``."""
    digest = hashlib.sha256()
    digest.update(model_id.encode("utf-8"))
    digest.update(b"\x00")
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def dedupe(keys: Sequence[str]) -> tuple[list[str], list[int]]:
    """The distinct keys in first-seen order, and for each input position its distinct index.

    ``[unique[i] for i in inverse] == list(keys)``.
    """
    position: dict[str, int] = {}
    unique: list[str] = []
    inverse: list[int] = []
    for key in keys:
        index = position.get(key)
        if index is None:
            index = position[key] = len(unique)
            unique.append(key)
        inverse.append(index)
    return unique, inverse


@runtime_checkable
class VectorCache(Protocol):
    """Maps content keys to vectors. Implementations must be safe to share between threads."""

    def get_many(self, keys: Iterable[str]) -> dict[str, Vector]:
        """The cached vectors among ``keys``; missing keys are simply absent."""
        ...

    def put_many(self, vectors: Mapping[str, Vector]) -> None: ...

    def __len__(self) -> int: ...


class LRUVectorCache:
    """In-memory cache that forgets the least recently used vector past ``max_entries``."""

    def __init__(self, max_entries: int = DEFAULT_MEMORY_ENTRIES) -> None:
        if max_entries < 1:
            raise InvalidInputError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._items: OrderedDict[str, Vector] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, keys: Iterable[str]) -> dict[str, Vector]:
        found: dict[str, Vector] = {}
        with self._lock:
            for key in keys:
                vector = self._items.get(key)
                if vector is not None:
                    self._items.move_to_end(key)
                    found[key] = vector
        return found

    def put_many(self, vectors: Mapping[str, Vector]) -> None:
        with self._lock:
            for key, vector in vectors.items():
                frozen = np.array(vector, dtype=np.float32, copy=True)
                frozen.flags.writeable = False  # callers get views; nobody may edit a cached one
                self._items[key] = frozen
                self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class SqliteVectorCache:
    """Persistent cache in one SQLite file: survives restarts, so a rebuild re-encodes nothing.

    Vectors are stored as little-endian float32 bytes with their dimension; a row whose length
    does not match its dimension (a torn write from another process) is treated as missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS vectors ("
                " key TEXT PRIMARY KEY, dim INTEGER NOT NULL, data BLOB NOT NULL)"
            )
        except (OSError, sqlite3.Error) as exc:
            raise VectorCacheError(
                f"cannot open the vector cache {self.path}: {exc}; "
                "fix its permissions or point DTE_AI_EMBEDDING_CACHE_PATH elsewhere"
            ) from exc

    def get_many(self, keys: Iterable[str]) -> dict[str, Vector]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Vector] = {}
        with self._lock:
            # SQLite's default limit on bound parameters is 999 on old builds.
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, dim, data FROM vectors WHERE key IN ({marks})",  # noqa: S608 - only '?' marks
                    chunk,
                ).fetchall()
                for key, dim, data in rows:
                    if len(data) == dim * 4:
                        found[key] = np.frombuffer(data, dtype="<f4").astype(np.float32)
        return found

    def put_many(self, vectors: Mapping[str, Vector]) -> None:
        rows = [
            (key, int(np.asarray(v).shape[-1]), np.asarray(v, dtype="<f4").tobytes())
            for key, v in vectors.items()
        ]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO vectors (key, dim, data) VALUES (?, ?, ?)", rows
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()
        return int(count)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class TieredVectorCache:
    """A fast in-memory LRU in front of a persistent cache; persistent hits warm the LRU."""

    def __init__(self, memory: VectorCache, persistent: VectorCache) -> None:
        self.memory = memory
        self.persistent = persistent

    def get_many(self, keys: Iterable[str]) -> dict[str, Vector]:
        wanted = list(keys)
        found = self.memory.get_many(wanted)
        missing = [key for key in wanted if key not in found]
        if missing:
            loaded = self.persistent.get_many(missing)
            if loaded:
                self.memory.put_many(loaded)
                found.update(loaded)
        return found

    def put_many(self, vectors: Mapping[str, Vector]) -> None:
        self.persistent.put_many(vectors)
        self.memory.put_many(vectors)

    def __len__(self) -> int:
        return len(self.persistent)
