"""The embeddings exception tree. Every error carries a machine-readable ``code``.

The CLI maps these to exit code 2 with the code and message on stderr; an HTTP route maps
them through its own error table.
"""

from __future__ import annotations


class EmbeddingError(Exception):
    """Base of every error raised by the embeddings package."""

    code = "embedding_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class ModelLoadError(EmbeddingError):
    """The sentence-transformers model cannot be found or loaded from local files."""

    code = "embedding_model_unavailable"


class InvalidInputError(EmbeddingError):
    """Texts, documents or identifiers handed to the package are malformed."""

    code = "invalid_embedding_input"


class InvalidCompanyError(InvalidInputError):
    """A company id that cannot scope a vector collection (empty, too long, control chars)."""

    code = "invalid_company_id"


class VectorCacheError(EmbeddingError):
    """The persistent vector cache file cannot be opened or written."""

    code = "vector_cache_error"


class VectorStoreError(EmbeddingError):
    """ChromaDB refused an operation or could not be reached."""

    code = "vector_store_error"
