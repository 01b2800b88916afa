"""The company's past documents in its embeddings index (ChromaDB, one collection a company).

The index holds one entry per booked invoice (what the accountant decided travels as
metadata), so "documents like this one" can be asked of the company's own history with the
hybrid score measured on Spanish (``embeddings.hybrid``). Every read and write names the
company; the store filters by it again inside its own collection.
"""

from __future__ import annotations

import threading
from typing import Any

from ai_service.context.models import CompanyContext
from ai_service.settings import Settings


def open_store(settings: Settings) -> Any:
    from embeddings.cache import LRUVectorCache, SqliteVectorCache, TieredVectorCache
    from embeddings.encoder import SentenceTransformerEncoder
    from embeddings.store import StoreConfig, VectorStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    cache = TieredVectorCache(
        LRUVectorCache(), SqliteVectorCache(settings.data_dir / "embedding-cache.sqlite3")
    )
    encoder = SentenceTransformerEncoder(settings.embedding_model_path, cache=cache)
    config = StoreConfig(
        path=settings.chroma_path or settings.data_dir / "chroma",
        host=settings.chroma_host,
        port=settings.chroma_port,
        # re-rank the HNSW neighbours instead of reading the whole collection per query
        exhaustive_below=256,
    )
    return SerializedStore(VectorStore(encoder, config))


class SerializedStore:
    """One request at a time through the model: torch already uses every core for one batch,
    and concurrent encodes only multiply its per-thread buffers (measured: RSS 1.4 GiB at 32
    concurrent requests without this, and slower)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._lock = threading.Lock()

    def query(self, company_id: str, text: str, *, k: int = 5) -> Any:
        with self._lock:
            return self._store.query(company_id, text, k=k)

    def rebuild(self, company_id: str, documents: list[Any]) -> Any:
        with self._lock:
            return self._store.rebuild(company_id, documents)


def invoice_documents(context: CompanyContext) -> list[Any]:
    from embeddings.store import Document

    decisions = {d.invoice_key: d for d in context.decisions}
    documents = []
    for inv in context.invoices:
        decision = decisions.get(inv.key)
        text = f"{inv.emisor_name}. " + "; ".join(
            " ".join(x for x in (ln.name, ln.description) if x) for ln in inv.lines
        )
        metadata: dict[str, str | int] = {
            "tipo_dte": inv.tipo_dte,
            "folio": inv.folio,
            "emisor_rut": str(inv.emisor_rut),
            "fecha": inv.fecha.isoformat(),
            "total": inv.total,
        }
        if decision is not None:
            metadata["account_code"] = decision.account_code
            if decision.project_code:
                metadata["project_code"] = decision.project_code
        documents.append(Document(inv.key, text[:4000], metadata))
    return documents
