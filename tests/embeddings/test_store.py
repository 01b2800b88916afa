"""VectorStore on a real embedded ChromaDB in tmp_path: round trip, idempotence, isolation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from embeddings.encoder import SentenceTransformerEncoder
from embeddings.errors import InvalidCompanyError, InvalidInputError, VectorStoreError
from embeddings.store import Document, StoreConfig, VectorStore, collection_name
from tests.embeddings.conftest import EncodeSpy

CATEGORIES = [
    Document("arriendo", "Arriendo de oficinas, bodegas y locales", {"cuenta": "5101"}),
    Document("combustible", "Combustibles y lubricantes: bencina, petróleo diésel"),
    Document("honorarios", "Honorarios profesionales y asesorías contables", {"activa": True}),
    Document("aseo", "Aseo y limpieza de oficinas"),
]


def fresh_clients() -> None:
    """Chroma shares one system per path inside a process; drop it to really reopen from disk."""
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


@pytest.fixture
def store(tmp_path: Path, encoder: SentenceTransformerEncoder) -> Iterator[VectorStore]:
    yield VectorStore(encoder, StoreConfig(path=tmp_path / "chroma"))
    fresh_clients()


@pytest.fixture(autouse=True)
def _chroma_default_embedding_is_never_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from chromadb.api.types import DefaultEmbeddingFunction

    def refuse(self: Any, input: Any) -> Any:
        raise AssertionError("Chroma's default embedding function was called")

    monkeypatch.setattr(DefaultEmbeddingFunction, "__call__", refuse)


def test_persistent_round_trip(tmp_path: Path, encoder: SentenceTransformerEncoder) -> None:
    config = StoreConfig(path=tmp_path / "chroma")
    writer = VectorStore(encoder, config)
    assert writer.client.get_settings().anonymized_telemetry is False
    assert writer.upsert("co-1", CATEGORIES).written == 4
    stored = writer._collection("co-1").configuration_json
    assert stored["embedding_function"]["name"] == "dte-ai-encoder"  # never Chroma's default
    fresh_clients()

    reader = VectorStore(SentenceTransformerEncoder(), config)
    assert reader.count("co-1") == 4
    best = reader.query("co-1", "arr. bodega quilicura", k=2)
    assert best[0].id == "arriendo"
    assert best[0].metadata == {"cuenta": "5101"}  # company_id/content_hash stay internal
    assert best[0].text == CATEGORIES[0].text
    assert best[0].score >= best[1].score
    assert reader.get("co-1", ["honorarios"])[0].metadata == {"activa": True}


def test_upsert_is_idempotent_and_skips_unchanged(
    store: VectorStore, encoder: SentenceTransformerEncoder, spy: EncodeSpy
) -> None:
    store.upsert("co-1", CATEGORIES)
    encoded = len(spy.texts)
    again = store.upsert("co-1", CATEGORIES)
    assert (again.written, again.unchanged) == (0, 4)
    assert len(spy.texts) == encoded  # nothing re-encoded
    assert store.count("co-1") == 4

    edited = [Document("aseo", "Servicio de aseo y productos de limpieza")]
    assert store.upsert("co-1", edited).written == 1
    assert store.count("co-1") == 4
    assert store.get("co-1", ["aseo"])[0].text == edited[0].text
    retagged = [Document("aseo", edited[0].text, {"cuenta": "5120"})]
    assert store.upsert("co-1", retagged).written == 1  # metadata change alone is a change


def test_upsert_rejects_bad_documents(store: VectorStore) -> None:
    with pytest.raises(InvalidInputError, match="twice"):
        store.upsert("co-1", [Document("a", "x"), Document("a", "y")])
    with pytest.raises(InvalidInputError, match="no text"):
        store.upsert("co-1", [Document("a", "  ")])
    with pytest.raises(InvalidInputError, match="reserved"):
        store.upsert("co-1", [Document("a", "x", {"content_hash": "forged"})])
    with pytest.raises(InvalidInputError, match="must be a str"):
        store.upsert("co-1", [Document("a", "x", {"list": [1, 2]})])  # type: ignore[dict-item]
    assert store.count("co-1") == 0


def test_delete_and_retried_delete(store: VectorStore) -> None:
    store.upsert("co-1", CATEGORIES)
    store.delete("co-1", ["aseo", "does-not-exist"])
    store.delete("co-1", ["aseo"])
    assert store.count("co-1") == 3
    assert "aseo" not in {m.id for m in store.query("co-1", "aseo y limpieza", k=4)}
    store.delete("never-indexed", ["x"])  # no collection: nothing to do, no error


def test_rebuild_replaces_everything_and_cleans_interrupted_runs(store: VectorStore) -> None:
    store.upsert("co-1", CATEGORIES)
    name = collection_name("dte-ai", "co-1")
    leftover = store._collection("co-1", name=name + "-rebuild-deadbeef")
    leftover.upsert(ids=["x"], embeddings=[[0.0] * 384], metadatas=[{"company_id": "co-1"}])

    result = store.rebuild("co-1", [Document("fletes", "Fletes y despachos")])
    assert result.written == 1
    assert store.count("co-1") == 1
    assert store.query("co-1", "flete", k=3)[0].id == "fletes"
    assert [c.name for c in store.client.list_collections()] == [name]


def test_failed_rebuild_keeps_the_old_index(
    store: VectorStore, encoder: SentenceTransformerEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.upsert("co-1", CATEGORIES)

    def broken(texts: list[str]) -> Any:
        raise RuntimeError("model crashed")

    monkeypatch.setattr(encoder, "_encode_unique", broken)
    with pytest.raises(RuntimeError, match="model crashed"):
        store.rebuild("co-1", [Document("nuevo", "texto que nunca se codifica")])
    assert store.count("co-1") == 4
    assert len(store.client.list_collections()) == 1


def test_index_built_by_another_model_must_be_rebuilt(
    tmp_path: Path, encoder: SentenceTransformerEncoder
) -> None:
    config = StoreConfig(path=tmp_path / "chroma")
    VectorStore(encoder, config).upsert("co-1", CATEGORIES)
    from embeddings.encoder import bundled_model_path

    other = VectorStore(SentenceTransformerEncoder(model_path=bundled_model_path()), config)
    with pytest.raises(VectorStoreError) as caught:
        other.query("co-1", "arriendo")
    assert caught.value.code == "index_model_mismatch"
    other.rebuild("co-1", CATEGORIES[:1])
    assert other.query("co-1", "arriendo")[0].id == "arriendo"
    VectorStore(encoder, config).drop("co-1")  # dropping works whatever model built it
    assert other.count("co-1") == 0


def test_drop_removes_only_that_company(store: VectorStore) -> None:
    store.upsert("co-1", CATEGORIES)
    store.upsert("co-2", CATEGORIES)
    store.drop("co-1")
    assert store.count("co-1") == 0
    assert store.count("co-2") == 4


# -- company isolation ----------------------------------------------------------------------


@pytest.fixture
def two_companies(store: VectorStore) -> VectorStore:
    store.upsert("A", [Document("1", "Arriendo de oficina de A"), Document("2", "Flete de A")])
    store.upsert("B", [Document("1", "Arriendo secreto de B"), Document("3", "Sueldo de B")])
    return store


def test_same_ids_in_two_companies_stay_apart(two_companies: VectorStore) -> None:
    store = two_companies
    assert store.get("A", ["1", "3"])[0].text == "Arriendo de oficina de A"
    assert [d.id for d in store.get("A", ["1", "3"])] == ["1"]
    for match in store.query("A", "arriendo secreto sueldo de B", k=10):
        assert "de A" in match.text


def test_crafted_where_filters_cannot_widen_a_query(two_companies: VectorStore) -> None:
    store = two_companies
    crafted: list[dict[str, Any]] = [
        {"company_id": "B"},
        {"$or": [{"company_id": "A"}, {"company_id": "B"}]},
        {"company_id": {"$ne": "A"}},
        {"company_id": {"$in": ["A", "B"]}},
    ]
    for where in crafted:
        texts = [m.text for m in store.query("A", "arriendo sueldo", k=10, where=where)]
        assert all("de A" in t for t in texts), where


def test_crafted_company_ids_reach_no_other_collection(two_companies: VectorStore) -> None:
    store = two_companies
    b_collection = collection_name("dte-ai", "B")
    for crafted in (b_collection, "b", "dte-ai-c-", "A/../B", "*", "B'; --"):
        assert store.query(crafted, "arriendo sueldo", k=10) == []
        store.delete(crafted, ["1", "3"])
    assert store.count("B") == 2
    for bad in ("", " B", "B ", "B\n", "B\u200b", "x" * 65, None):
        with pytest.raises(InvalidCompanyError):
            store.query(bad, "arriendo")  # type: ignore[arg-type]


def test_deleting_from_one_company_leaves_the_other(two_companies: VectorStore) -> None:
    store = two_companies
    store.delete("A", ["1", "3"])
    assert store.count("A") == 1
    assert store.count("B") == 2
    assert store.get("B", ["1"])[0].text == "Arriendo secreto de B"


def test_a_foreign_vector_in_the_collection_is_still_filtered_out(
    two_companies: VectorStore, encoder: SentenceTransformerEncoder
) -> None:
    """Second line of defence: even if B's vector landed in A's collection (a bug, a bad
    migration), the company filter on every read keeps it out of A's results."""
    store = two_companies
    a_collection = store._collection("A")
    a_collection.upsert(
        ids=["smuggled"],
        documents=["Arriendo de oficina de B"],
        embeddings=encoder.encode(["Arriendo de oficina de B"]),
        metadatas=[{"company_id": "B"}],
    )
    assert "smuggled" not in {m.id for m in store.query("A", "arriendo de oficina", k=10)}
    assert store.get("A", ["smuggled"]) == []
    store.config = store.config.model_copy(update={"exhaustive_below": 0})  # the HNSW path
    assert "smuggled" not in {m.id for m in store.query("A", "arriendo de oficina", k=10)}


def test_document_metadata_cannot_claim_another_company(store: VectorStore) -> None:
    with pytest.raises(InvalidInputError, match="reserved"):
        store.upsert("A", [Document("1", "x", {"company_id": "B"})])
    store.upsert("A", [Document("1", "x", {"company_id": "A"})])  # its own id is harmless
    assert store.count("A") == 1


def test_query_input_is_checked(store: VectorStore) -> None:
    store.upsert("A", CATEGORIES)
    with pytest.raises(InvalidInputError):
        store.query("A", "   ")
    with pytest.raises(InvalidInputError):
        store.query("A", "arriendo", k=0)
    with pytest.raises(InvalidInputError, match="where"):
        store.query("A", "arriendo", where={"cuenta": {"$bogus": 1}})
    assert len(store.query("A", "arriendo", k=50)) == 4


def test_ann_path_agrees_with_exhaustive_path(store: VectorStore) -> None:
    store.upsert("A", CATEGORIES)
    exact = [m.id for m in store.query("A", "petroleo camioneta", k=4)]
    store.config = store.config.model_copy(update={"exhaustive_below": 0, "candidate_pool": 4})
    approximate = [m.id for m in store.query("A", "petroleo camioneta", k=4)]
    assert approximate == exact
