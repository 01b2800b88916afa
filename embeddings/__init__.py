"""Embeddings for dte-ai: sentence-transformers + character n-grams, stored per company in Chroma.

Importing the package is cheap (no torch, no chromadb, no model): the names below are loaded
on first use. Start with ``SentenceTransformerEncoder`` (bundled all-MiniLM-L6-v2, offline),
``HybridScorer`` to rank candidates, and ``VectorStore`` for a company's persistent index.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from embeddings.cache import LRUVectorCache, SqliteVectorCache, TieredVectorCache
    from embeddings.encoder import Encoder, SentenceTransformerEncoder
    from embeddings.errors import EmbeddingError
    from embeddings.hybrid import DEFAULT_EMBEDDING_WEIGHT, HybridScorer
    from embeddings.lexical import CharNgramFeaturizer
    from embeddings.store import Document, Match, StoreConfig, VectorStore

_EXPORTS = {
    "DEFAULT_EMBEDDING_WEIGHT": "embeddings.hybrid",
    "CharNgramFeaturizer": "embeddings.lexical",
    "Document": "embeddings.store",
    "EmbeddingError": "embeddings.errors",
    "Encoder": "embeddings.encoder",
    "HybridScorer": "embeddings.hybrid",
    "LRUVectorCache": "embeddings.cache",
    "Match": "embeddings.store",
    "SentenceTransformerEncoder": "embeddings.encoder",
    "SqliteVectorCache": "embeddings.cache",
    "StoreConfig": "embeddings.store",
    "TieredVectorCache": "embeddings.cache",
    "VectorStore": "embeddings.store",
}

__all__ = [
    "DEFAULT_EMBEDDING_WEIGHT",
    "CharNgramFeaturizer",
    "Document",
    "EmbeddingError",
    "Encoder",
    "HybridScorer",
    "LRUVectorCache",
    "Match",
    "SentenceTransformerEncoder",
    "SqliteVectorCache",
    "StoreConfig",
    "TieredVectorCache",
    "VectorStore",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'embeddings' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
