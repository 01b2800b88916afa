"""Per-company vector index in ChromaDB, queried with hybrid (embedding + n-gram) scores.

Isolation is enforced twice: each company has its own collection, named from a hash of the
company id (so no crafted id or name can address another company's collection), and every
read, query and delete is also filtered by ``company_id`` metadata. Vectors are always computed
by our ``Encoder`` and handed to Chroma; the collection is created with our embedding function
as well, so Chroma never falls back to its default one (which downloads a model).

Embedded default: ``PersistentClient(path)``; with ``host`` configured: ``HttpClient``.
Telemetry is off in both.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from embeddings.encoder import Encoder
from embeddings.errors import (
    EmbeddingError,
    InvalidCompanyError,
    InvalidInputError,
    VectorStoreError,
)
from embeddings.hybrid import DEFAULT_EMBEDDING_WEIGHT, check_weight, combine
from embeddings.lexical import CharNgramFeaturizer

MetadataValue = str | int | float | bool
RESERVED_METADATA = ("company_id", "content_hash")
MAX_COMPANY_ID_CHARS = 64  # companies.id is String(64)
MAX_DOCUMENT_ID_CHARS = 256
_NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,30}[a-z0-9]$")
_REBUILD_MARK = "-rebuild-"


class StoreConfig(BaseModel):
    """Where the vectors live. Service settings: ``DTE_AI_CHROMA_PATH``/``_HOST``/``_PORT``."""

    path: Path = Field(default=Path("./data/chroma"), description="embedded PersistentClient")
    host: str | None = Field(default=None, description="set to use a Chroma server instead")
    port: int = Field(default=8000, gt=0, lt=65536)
    ssl: bool = False
    namespace: str = Field(default="dte-ai", description="prefix of every collection name")
    #: Collections up to this size are scored exactly (every document); larger ones take the
    #: ``candidate_pool`` nearest by embedding from the HNSW index and re-rank those.
    exhaustive_below: int = Field(default=2000, ge=0)
    candidate_pool: int = Field(default=100, ge=1)


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    id: str
    text: str
    metadata: dict[str, MetadataValue]
    score: float
    embedding_score: float
    lexical_score: float


@dataclass(frozen=True)
class UpsertResult:
    written: int
    unchanged: int


def check_company_id(company_id: object) -> str:
    if not isinstance(company_id, str) or not company_id:
        raise InvalidCompanyError("company_id must be a non-empty string")
    if len(company_id) > MAX_COMPANY_ID_CHARS:
        raise InvalidCompanyError(f"company_id is longer than {MAX_COMPANY_ID_CHARS} characters")
    if company_id != company_id.strip() or not company_id.isprintable():
        raise InvalidCompanyError(
            "company_id must not contain control characters or surrounding spaces"
        )
    return company_id


def collection_name(namespace: str, company_id: str) -> str:
    """``<namespace>-c-<40 hex>``: valid for Chroma whatever the id holds, and unguessable
    from another company's id (a hash, not a slug that two ids could share)."""
    if not _NAMESPACE.match(namespace):
        raise InvalidInputError(
            "namespace must be 2-32 characters of a-z, 0-9, '-' or '_', "
            "starting and ending with a letter or digit"
        )
    digest = hashlib.sha256(check_company_id(company_id).encode("utf-8")).hexdigest()
    return f"{namespace}-c-{digest[:40]}"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _metadata(company_id: str, document: Document) -> dict[str, MetadataValue]:
    extra = dict(document.metadata)
    for key in RESERVED_METADATA:
        if key in extra and not (key == "company_id" and extra[key] == company_id):
            raise InvalidInputError(f"document {document.id!r}: metadata key {key!r} is reserved")
    for key, value in extra.items():
        if not isinstance(key, str) or not isinstance(value, str | int | float | bool):
            raise InvalidInputError(
                f"document {document.id!r}: metadata {key!r} must be a str, int, float or bool"
            )
    extra["company_id"] = company_id
    extra["content_hash"] = text_hash(document.text)
    return extra


def _check_documents(documents: Sequence[Document]) -> None:
    seen: set[str] = set()
    for document in documents:
        if not isinstance(document.id, str) or not document.id:
            raise InvalidInputError("every document needs a non-empty string id")
        if len(document.id) > MAX_DOCUMENT_ID_CHARS:
            raise InvalidInputError(f"document id longer than {MAX_DOCUMENT_ID_CHARS} characters")
        if not isinstance(document.text, str) or not document.text.strip():
            raise InvalidInputError(f"document {document.id!r} has no text")
        if document.id in seen:
            raise InvalidInputError(f"document id {document.id!r} appears twice in one call")
        seen.add(document.id)


@contextmanager
def _chroma_errors(action: str) -> Iterator[None]:
    try:
        yield
    except EmbeddingError:
        raise
    except Exception as exc:  # chromadb, httpx and the Rust bindings raise unrelated types
        raise VectorStoreError(f"ChromaDB could not {action}: {exc}") from exc


def _embedding_function(encoder: Encoder) -> Any:
    """A Chroma ``EmbeddingFunction`` that delegates to our encoder (never Chroma's default)."""
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

    class EncoderEmbeddingFunction(EmbeddingFunction[Documents]):
        def __init__(self, wrapped: Encoder) -> None:
            self._encoder = wrapped

        def __call__(self, input: Documents) -> Embeddings:  # Chroma's parameter name
            return list(self._encoder.encode(list(input)))

        @staticmethod
        def name() -> str:
            return "dte-ai-encoder"

        def get_config(self) -> dict[str, Any]:
            return {"model_id": self._encoder.model_id}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> EncoderEmbeddingFunction:
            from embeddings.encoder import SentenceTransformerEncoder

            return EncoderEmbeddingFunction(SentenceTransformerEncoder())

        def default_space(self) -> Any:
            return "cosine"

    return EncoderEmbeddingFunction(encoder)


def open_client(config: StoreConfig) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    with _chroma_errors("open the index"):
        if config.host:
            return chromadb.HttpClient(
                host=config.host, port=config.port, ssl=config.ssl, settings=settings
            )
        config.path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(config.path), settings=settings)


class VectorStore:
    """Upsert, delete, rebuild and hybrid query of documents, always within one company."""

    def __init__(
        self,
        encoder: Encoder,
        config: StoreConfig | None = None,
        *,
        client: Any = None,
        lexical: CharNgramFeaturizer | None = None,
        embedding_weight: float = DEFAULT_EMBEDDING_WEIGHT,
    ) -> None:
        self.encoder = encoder
        self.config = config or StoreConfig()
        self.client = client if client is not None else open_client(self.config)
        self.lexical = lexical if lexical is not None else CharNgramFeaturizer()
        self.embedding_weight = check_weight(embedding_weight)
        self._ef = _embedding_function(encoder)

    # -- collections -------------------------------------------------------------------------

    def _collection(self, company_id: str, *, name: str | None = None, create: bool = True) -> Any:
        """The company's collection, checked to be its own and built by our model; ``None``
        when it does not exist and ``create`` is false."""
        from chromadb.errors import NotFoundError

        name = name or collection_name(self.config.namespace, company_id)
        with _chroma_errors("open the company's collection"):
            if create:
                collection = self.client.get_or_create_collection(
                    name=name,
                    metadata={"company_id": company_id, "model_id": self.encoder.model_id},
                    configuration={"hnsw": {"space": "cosine"}},
                    embedding_function=self._ef,
                )
            else:
                try:
                    collection = self.client.get_collection(name, embedding_function=self._ef)
                except NotFoundError:
                    return None
        meta = collection.metadata or {}
        if meta.get("company_id") != company_id:
            raise VectorStoreError(f"collection {name} belongs to another company")
        if meta.get("model_id") != self.encoder.model_id:
            raise VectorStoreError(
                f"the index of this company was built with {meta.get('model_id')}, not "
                f"{self.encoder.model_id}; run: dte-ai index rebuild",
                code="index_model_mismatch",
            )
        return collection

    def _existing(self, company_id: str) -> Any | None:
        return self._collection(company_id, create=False)

    @staticmethod
    def _where(company_id: str, where: Mapping[str, Any] | None = None) -> dict[str, Any]:
        scope: dict[str, Any] = {"company_id": {"$eq": company_id}}
        return {"$and": [scope, dict(where)]} if where else scope

    # -- writes ------------------------------------------------------------------------------

    def upsert(self, company_id: str, documents: Sequence[Document]) -> UpsertResult:
        """Insert or replace by id; documents whose text and metadata are unchanged are skipped
        (and not re-encoded), so repeating a call is cheap and has no effect."""
        check_company_id(company_id)
        _check_documents(documents)
        if not documents:
            return UpsertResult(0, 0)
        return self._upsert_into(self._collection(company_id), company_id, documents)

    def _upsert_into(
        self, collection: Any, company_id: str, documents: Sequence[Document]
    ) -> UpsertResult:
        metadatas = [_metadata(company_id, d) for d in documents]  # all checked before writing
        with _chroma_errors("get the maximum batch size"):
            batch = max(1, min(1000, int(self.client.get_max_batch_size())))
        written = 0
        for start in range(0, len(documents), batch):
            end = start + batch
            chunk = list(zip(documents[start:end], metadatas[start:end], strict=True))
            with _chroma_errors("read existing documents"):
                existing = collection.get(
                    ids=[d.id for d, _ in chunk],
                    where=self._where(company_id),
                    include=["metadatas", "documents"],
                )
            stored = {
                i: (m, t)
                for i, m, t in zip(
                    existing["ids"], existing["metadatas"], existing["documents"], strict=True
                )
            }
            changed = [(d, m) for d, m in chunk if stored.get(d.id) != (m, d.text)]
            if not changed:
                continue
            vectors = self.encoder.encode([d.text for d, _ in changed])
            with _chroma_errors("write documents"):
                collection.upsert(
                    ids=[d.id for d, _ in changed],
                    documents=[d.text for d, _ in changed],
                    metadatas=[m for _, m in changed],
                    embeddings=vectors,
                )
            written += len(changed)
        return UpsertResult(written=written, unchanged=len(documents) - written)

    def delete(self, company_id: str, ids: Sequence[str]) -> None:
        """Delete these ids of this company; ids that do not exist (or are another company's)
        are ignored, so a retried delete succeeds."""
        check_company_id(company_id)
        if not ids:
            return
        collection = self._existing(company_id)
        if collection is None:
            return
        with _chroma_errors("delete documents"):
            collection.delete(ids=list(ids), where=self._where(company_id))

    def drop(self, company_id: str) -> None:
        """Remove the company's whole index (e.g. when the company is deleted)."""
        from chromadb.errors import NotFoundError

        name = collection_name(self.config.namespace, company_id)
        with _chroma_errors("delete the collection"), suppress(NotFoundError):
            self.client.delete_collection(name)  # whatever model built it

    def rebuild(self, company_id: str, documents: Sequence[Document]) -> UpsertResult:
        """Replace the company's index with exactly ``documents``.

        Built in a side collection and swapped in at the end, so a crash or error halfway
        leaves the previous index serving (queries see an empty index only for the instant
        between dropping the old collection and renaming the new one); leftovers of an
        interrupted rebuild are removed.
        """
        check_company_id(company_id)
        _check_documents(documents)
        name = collection_name(self.config.namespace, company_id)
        with _chroma_errors("list collections"):
            names = [c.name for c in self.client.list_collections()]
        for stale in names:
            if stale.startswith(name + _REBUILD_MARK):
                with _chroma_errors("remove an interrupted rebuild"):
                    self.client.delete_collection(stale)
        side_name = f"{name}{_REBUILD_MARK}{secrets.token_hex(4)}"
        side = self._collection(company_id, name=side_name)
        try:
            result = self._upsert_into(side, company_id, documents)
        except BaseException:
            # Keep the original error; a side collection left behind is removed next time.
            with suppress(Exception):
                self.client.delete_collection(side_name)
            raise
        with _chroma_errors("swap in the rebuilt index"):
            if name in names:
                self.client.delete_collection(name)
            side.modify(name=name)
        return result

    # -- reads -------------------------------------------------------------------------------

    def count(self, company_id: str) -> int:
        collection = self._existing(check_company_id(company_id))
        if collection is None:
            return 0
        with _chroma_errors("count documents"):
            return int(collection.count())

    def get(self, company_id: str, ids: Sequence[str]) -> list[Document]:
        collection = self._existing(check_company_id(company_id))
        if collection is None or not ids:
            return []
        with _chroma_errors("read documents"):
            found = collection.get(
                ids=list(ids), where=self._where(company_id), include=["documents", "metadatas"]
            )
        return [
            Document(i, t, {k: v for k, v in (m or {}).items() if k not in RESERVED_METADATA})
            for i, t, m in zip(found["ids"], found["documents"], found["metadatas"], strict=True)
        ]

    def query(
        self,
        company_id: str,
        text: str,
        *,
        k: int = 5,
        where: Mapping[str, Any] | None = None,
    ) -> list[Match]:
        """The ``k`` best documents of this company for ``text``, by hybrid score.

        ``where`` narrows further (Chroma metadata filter); it is ANDed with the company
        filter, so it can never widen the search to another company.
        """
        check_company_id(company_id)
        if k < 1:
            raise InvalidInputError("k must be at least 1")
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError("the query text is empty")
        scope = self._where(company_id, where)
        try:
            from chromadb.api.types import validate_where

            validate_where(scope)
        except ValueError as exc:
            raise InvalidInputError(f"invalid where filter: {exc}") from exc
        collection = self._existing(company_id)
        if collection is None:
            return []
        query_vector = self.encoder.encode([text])[0]
        with _chroma_errors("query the index"):
            size = int(collection.count())
            if size == 0:
                return []
            if size <= self.config.exhaustive_below:
                found = collection.get(
                    where=scope, include=["documents", "metadatas", "embeddings"]
                )
                ids, texts, metas = found["ids"], found["documents"], found["metadatas"]
                if not ids:
                    return []
                vectors = np.asarray(found["embeddings"], dtype=np.float32).reshape(len(ids), -1)
                embedding = vectors @ query_vector
            else:
                found = collection.query(
                    query_embeddings=[query_vector],
                    n_results=min(size, max(k, self.config.candidate_pool)),
                    where=scope,
                    include=["documents", "metadatas", "distances"],
                )
                ids, texts, metas = found["ids"][0], found["documents"][0], found["metadatas"][0]
                embedding = 1.0 - np.asarray(found["distances"][0], dtype=np.float32)
        if not ids:
            return []
        lexical = self.lexical.similarity([text], list(texts))[0]
        scores = combine(np.asarray(embedding, dtype=np.float32), lexical, self.embedding_weight)
        order = np.argsort(-scores, kind="stable")[:k]
        matches = []
        for i in order:
            meta = dict(metas[i] or {})
            if meta.get("company_id") != company_id:  # the where filter makes this impossible
                raise VectorStoreError("the index returned another company's document")
            matches.append(
                Match(
                    id=ids[i],
                    text=texts[i],
                    metadata={k2: v for k2, v in meta.items() if k2 not in RESERVED_METADATA},
                    score=float(scores[i]),
                    embedding_score=float(embedding[i]),
                    lexical_score=float(lexical[i]),
                )
            )
        return matches
