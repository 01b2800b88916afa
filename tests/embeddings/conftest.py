"""Fixtures for the embeddings package: the real bundled model, loaded once per session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from embeddings.cache import LRUVectorCache
from embeddings.encoder import SentenceTransformerEncoder


@pytest.fixture(autouse=True)
def _no_embedding_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The developer's DTE_AI_CHROMA_* / DTE_AI_EMBEDDING_* variables never reach a test."""
    for name in (
        "DTE_AI_DATA_DIR",
        "DTE_AI_CHROMA_PATH",
        "DTE_AI_CHROMA_HOST",
        "DTE_AI_CHROMA_PORT",
        "DTE_AI_EMBEDDING_MODEL_PATH",
        "DTE_AI_EMBEDDING_CACHE_PATH",
    ):
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture(scope="session")
def shared_encoder() -> SentenceTransformerEncoder:
    """The bundled all-MiniLM-L6-v2; its weights stay loaded for the whole session."""
    encoder = SentenceTransformerEncoder()
    assert encoder.dim == 384
    return encoder


@pytest.fixture
def encoder(shared_encoder: SentenceTransformerEncoder) -> SentenceTransformerEncoder:
    """A fresh encoder (own cache, own stats) over the already-loaded weights."""
    fresh = SentenceTransformerEncoder(cache=LRUVectorCache())
    assert fresh.dim == shared_encoder.dim
    return fresh


class EncodeSpy:
    """Records every batch that reaches the model."""

    def __init__(self, encoder: SentenceTransformerEncoder, monkeypatch: pytest.MonkeyPatch):
        self.batches: list[list[str]] = []
        real = encoder._encode_unique

        def spy(texts: list[str]) -> Any:
            self.batches.append(list(texts))
            return real(texts)

        monkeypatch.setattr(encoder, "_encode_unique", spy)

    @property
    def texts(self) -> list[str]:
        return [text for batch in self.batches for text in batch]


@pytest.fixture
def spy(encoder: SentenceTransformerEncoder, monkeypatch: pytest.MonkeyPatch) -> EncodeSpy:
    return EncodeSpy(encoder, monkeypatch)
