"""SentenceTransformerEncoder on the real bundled model: Spanish similarity, cache, dedupe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from embeddings.cache import LRUVectorCache, SqliteVectorCache, TieredVectorCache
from embeddings.encoder import (
    Encoder,
    SentenceTransformerEncoder,
    _force_hub_offline,
    bundled_model_path,
)
from embeddings.errors import InvalidInputError, ModelLoadError
from tests.embeddings.conftest import EncodeSpy

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_package_loads_no_model_torch_or_chroma() -> None:
    code = (
        "import sys, embeddings, embeddings.encoder, embeddings.cache, embeddings.cli\n"
        "from embeddings import SentenceTransformerEncoder\n"
        "e = SentenceTransformerEncoder()\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'chromadb', 'sklearn')"
        " if m in sys.modules]\n"
        "print(heavy, e.loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[] False"


def test_encodes_spanish_to_normalised_rows_in_input_order(
    encoder: SentenceTransformerEncoder,
) -> None:
    texts = ["Arriendo de oficina en Providencia", "Petróleo diésel para camiones", "Ñandú"]
    vectors = encoder.encode(texts)
    assert isinstance(encoder, Encoder)
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Row order follows input order: each row equals the text encoded alone.
    for text, row in zip(texts, vectors, strict=True):
        np.testing.assert_allclose(
            SentenceTransformerEncoder(cache=LRUVectorCache()).encode([text])[0], row, atol=1e-5
        )


@pytest.mark.parametrize(
    ("anchor", "similar", "dissimilar"),
    [
        (
            "arriendo de oficina",
            "alquiler de oficinas comerciales",
            "petróleo diésel para camiones",
        ),
        ("servicio de aseo y limpieza", "productos de limpieza", "honorarios de abogado"),
        ("notebook lenovo", "computadores y notebooks", "zapatos de seguridad"),
        ("pasaje aéreo a Concepción", "pasajes aéreos y hotel", "resma de papel carta"),
        ("cambio de neumáticos", "reparación de vehículos y neumáticos", "licencia de software"),
        ("suscripción anual de software", "licencias de software en la nube", "sacos de cemento"),
    ],
)
def test_similar_spanish_texts_score_higher_than_dissimilar(
    encoder: SentenceTransformerEncoder, anchor: str, similar: str, dissimilar: str
) -> None:
    # The model is English-trained: Spanish paraphrases with no shared word pieces ("pasaje
    # aéreo" / "viaje en avión") are unreliable, which is why matching is hybrid (test_hybrid).
    a, s, d = encoder.encode([anchor, similar, dissimilar])
    assert float(a @ s) > float(a @ d) + 0.05


def test_empty_and_malformed_input(encoder: SentenceTransformerEncoder) -> None:
    assert encoder.encode([]).shape == (0, 384)
    with pytest.raises(InvalidInputError):
        encoder.encode("arriendo")  # a str is a Sequence[str] of characters: refuse it
    with pytest.raises(InvalidInputError, match="text 1"):
        encoder.encode(["ok", 3])  # type: ignore[list-item]


def test_cache_hit_does_not_reach_the_model(
    encoder: SentenceTransformerEncoder, spy: EncodeSpy
) -> None:
    first = encoder.encode(["arriendo bodega", "bencina 95"])
    second = encoder.encode(["bencina 95", "arriendo bodega", "toner hp"])
    assert spy.batches == [["arriendo bodega", "bencina 95"], ["toner hp"]]
    np.testing.assert_array_equal(second[0], first[1])
    np.testing.assert_array_equal(second[1], first[0])
    assert encoder.stats.cache_hits == 2
    assert encoder.stats.encoded == 3


def test_duplicates_in_one_batch_are_encoded_once(
    encoder: SentenceTransformerEncoder, spy: EncodeSpy
) -> None:
    vectors = encoder.encode(["flete", "flete", "courier", "flete"])
    assert spy.texts == ["flete", "courier"]
    np.testing.assert_array_equal(vectors[0], vectors[1])
    np.testing.assert_array_equal(vectors[0], vectors[3])
    assert not np.array_equal(vectors[0], vectors[2])
    assert encoder.stats.deduplicated == 2


def test_distinct_texts_go_to_the_model_in_batches(
    encoder: SentenceTransformerEncoder, spy: EncodeSpy
) -> None:
    encoder.batch_size = 2
    encoder.encode([f"factura {i}" for i in range(5)])
    assert [len(batch) for batch in spy.batches] == [2, 2, 1]


def test_exact_text_is_the_key_not_a_normalised_form(
    encoder: SentenceTransformerEncoder, spy: EncodeSpy
) -> None:
    encoder.encode(["Camión", "camion"])
    assert spy.texts == ["Camión", "camion"]


def test_persistent_cache_survives_a_new_encoder(
    tmp_path: Path, encoder: SentenceTransformerEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "vectors.sqlite3"
    writer = SentenceTransformerEncoder(
        cache=TieredVectorCache(LRUVectorCache(), SqliteVectorCache(path))
    )
    original = writer.encode(["mantención ascensores", "gasfitería"])
    reader = SentenceTransformerEncoder(
        cache=TieredVectorCache(LRUVectorCache(), SqliteVectorCache(path))
    )
    spy = EncodeSpy(reader, monkeypatch)
    again = reader.encode(["gasfitería", "mantención ascensores"])
    assert spy.batches == []
    np.testing.assert_array_equal(again[::-1], original)


def test_an_explicit_local_model_path_is_used(tmp_path: Path) -> None:
    explicit = SentenceTransformerEncoder(model_path=bundled_model_path())
    default = SentenceTransformerEncoder()
    assert explicit.model_id != default.model_id  # their vectors never share a cache key
    np.testing.assert_allclose(
        explicit.encode(["honorarios"]), default.encode(["honorarios"]), atol=1e-6
    )
    missing = SentenceTransformerEncoder(model_path=tmp_path / "nothing-here")
    assert not missing.loaded  # lazy: constructing it does not look at the files
    with pytest.raises(ModelLoadError, match="nothing-here"):
        missing.encode(["x"])


def test_loader_forces_the_hub_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    _force_hub_offline()
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert huggingface_hub.constants.HF_HUB_OFFLINE is True
