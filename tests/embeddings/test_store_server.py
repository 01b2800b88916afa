"""VectorStore through ``HttpClient`` against a real Chroma server started on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from embeddings.encoder import SentenceTransformerEncoder
from embeddings.errors import VectorStoreError
from embeddings.store import Document, StoreConfig, VectorStore

pytestmark = pytest.mark.slow


def _chroma_binary() -> str:
    beside = Path(sys.executable).parent / "chroma"
    found = str(beside) if beside.exists() else shutil.which("chroma")
    if found is None:
        pytest.fail("the chroma server CLI (pip package chromadb) is not installed")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = _free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    log = (data / "server.log").open("wb")
    process = subprocess.Popen(
        [
            _chroma_binary(),
            "run",
            "--path",
            str(data / "db"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(120):  # up to ~30 s for the server to listen
            if process.poll() is not None:
                pytest.fail(f"chroma server exited: {(data / 'server.log').read_text()}")
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1.0)
                break
            except httpx.TransportError:
                time.sleep(0.25)
        else:
            pytest.fail("chroma server did not start listening")
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_http_client_round_trip_with_isolation(
    chroma_server: int, encoder: SentenceTransformerEncoder
) -> None:
    store = VectorStore(encoder, StoreConfig(host="127.0.0.1", port=chroma_server))
    assert type(store.client).__name__ != "PersistentClient"
    store.upsert("A", [Document("1", "Arriendo de oficina de A"), Document("2", "Flete de A")])
    store.upsert("B", [Document("1", "Arriendo secreto de B")])
    assert store.upsert("A", [Document("1", "Arriendo de oficina de A")]).unchanged == 1
    matches = store.query("A", "arriendo secreto", k=5)
    assert matches[0].id == "1"
    assert all("de A" in m.text for m in matches)
    store.rebuild("A", [Document("9", "Honorarios contables")])
    assert store.count("A") == 1
    assert store.count("B") == 1


def test_unreachable_server_is_a_store_error(encoder: SentenceTransformerEncoder) -> None:
    with pytest.raises(VectorStoreError):
        VectorStore(encoder, StoreConfig(host="127.0.0.1", port=_free_port()))
