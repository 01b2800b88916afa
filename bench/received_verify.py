"""Received-document verification on one core: files and documents per second for hardened parse
+ namespace repair + XSD + TED + CAF + XMLDSig (tolerant rule), over the shared SII samples
(real DTEs, tampered ones, the official EnvioDTE), repeated.

Reference measured in the same run: a bare ``lxml.etree.fromstring`` of the same bytes, so the
ratio says what verification costs over parsing alone. Also shown per sample class: the namespace
repair path (raw downloads) and the forged path (which tries every context before failing).

Then the whole ingestion path on an embedded SQLite database (store raw + sha256, verify,
dedupe, record): each file is made unique with a trailing comment, so every one is stored and
judged while its documents dedupe.

Run: ``.venv/bin/python bench/received_verify.py --rounds 20 --ingest 300``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from lxml import etree

from dte_core.caf import SiiKeyring
from dte_core.received import verify_xml

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DTE_AI_SHARED_SII", ROOT.parent / "shared" / "sii")) / "samples"


def samples() -> dict[str, list[bytes]]:
    dte = sorted((SHARED / "sii-dte").glob("DTE--*.xml"))
    groups = {
        "raw download (namespace repaired)": [p for p in dte if "--cleaned" not in p.name],
        "cleaned": [p for p in dte if p.name.endswith("--cleaned.xml")],
        "tampered": [p for p in dte if "-mod-" in p.name],
        "official EnvioDTE": [SHARED / "official" / "F60T33-ejemplo-oficial-SII.xml"],
    }
    return {name: [p.read_bytes() for p in paths] for name, paths in groups.items()}


def rate(files: list[bytes], rounds: int, work) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """Files per second (median of rounds) and documents seen per pass."""
    per_round = []
    docs = 0
    for _ in range(rounds):
        started = time.perf_counter()
        docs = sum(work(data) for data in files)
        per_round.append(len(files) / (time.perf_counter() - started))
    return statistics.median(per_round), docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--ingest", type=int, default=300, help="files to ingest (0: skip)")
    args = parser.parse_args()
    keyring = SiiKeyring.default()
    groups = samples()
    everything = [data for files in groups.values() for data in files]

    def verify(data: bytes) -> int:
        return len(verify_xml(data, keyring=keyring).documents)

    def parse_only(data: bytes) -> int:
        etree.fromstring(data)
        return 1

    verify(everything[0])  # warm the schema cache and the bundled SII keys
    base, _ = rate(everything, args.rounds, parse_only)
    full, docs = rate(everything, args.rounds, verify)
    size = sum(map(len, everything)) / len(everything)
    print(f"samples: {len(everything)} files ({docs} documents), mean {size / 1024:.1f} KiB")
    print(f"rounds: {args.rounds} (median shown), one core, pid {os.getpid()}")
    print(f"lxml parse only (reference): {base:10.1f} files/s")
    docs_rate = full * docs / len(everything)
    print(f"full verify                : {full:10.1f} files/s  ({docs_rate:.1f} docs/s)")
    print(f"verify cost vs bare parse  : {base / full:10.1f}x")
    for name, files in groups.items():
        group_rate, _ = rate(files, args.rounds, verify)
        print(f"  {name:36s} {group_rate:8.1f} files/s  ({len(files)} files)")
    if args.ingest:
        ingested = ingest_rate(everything, args.ingest, keyring)
        label = "ingest into SQLite (store+verify+dedupe)"
        print(f"{label}: {ingested:8.1f} files/s ({args.ingest} files)")
        print(f"ingest cost vs verify alone             : {full / ingested:8.2f}x")


def ingest_rate(files: list[bytes], count: int, keyring: SiiKeyring) -> float:
    from ai_service.db.migrate import upgrade_to_head
    from ai_service.ingest.service import Ingestor
    from ai_service.repositories.companies import create_company
    from ai_service.secrets import SecretBox
    from dte_core.storage import create_engine_for

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade_to_head(url)
        engine = create_engine_for(url)
        box = SecretBox(b"bench-only-secret-key-0123456789abcdef")
        company = create_company(engine, box, rut="96790240-3", name="Bench")[0].id
        ingestor = Ingestor(engine, keyring)
        started = time.perf_counter()
        for i in range(count):
            unique = files[i % len(files)] + f"\n<!-- {i} -->\n".encode()
            ingestor.ingest(company, unique, source="cli", filename=f"{i}.xml")
        elapsed = time.perf_counter() - started
        engine.dispose()
    return count / elapsed


if __name__ == "__main__":
    main()
