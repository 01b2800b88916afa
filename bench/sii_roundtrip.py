"""SII simulator round trip: documents per second through upload + status polling until final.

The simulator runs on a loopback port in this process (threaded WSGI server); the client is the
real :class:`dte_core.sii.client.SiiClient` (token, multipart upload, QueryEstUp polls). As a
reference measured in the same run: the simulator's own check of the same envelopes
(:func:`dte_core.received.verify_xml`) without HTTP, so the ratio shows what HTTP/SOAP adds.

Run: ``.venv/bin/python bench/sii_roundtrip.py --documents 1000 --per-envio 50``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' envelope builder

from dte_core.received import verify_xml
from dte_core.sii.client import SiiClient
from dte_core.sii.simstate import SimulatorConfig
from dte_core.sii.simulator import SiiSimulator, SimulatorServer
from tests.dte_core.sii import envelopes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--per-envio", type=int, default=50)
    args = parser.parse_args()

    started = time.perf_counter()
    batches = []
    for first in range(1, args.documents + 1, args.per_envio):
        count = min(args.per_envio, args.documents + 1 - first)
        batches.append(envelopes.facturas(first, count))
    build_s = time.perf_counter() - started

    keyring = envelopes.keyring()

    def verify_all() -> float:
        started = time.perf_counter()
        for data in batches:
            assert verify_xml(data, keyring=keyring).valid
        return time.perf_counter() - started

    # the 2 cores are shared: the reference runs before and after the round trip, averaged
    verify_before = verify_all()

    sim = SiiSimulator(SimulatorConfig(keyring=keyring))
    with SimulatorServer(sim) as server:
        client = SiiClient(envelopes.certificate(), base_url=server.url)
        client.get_token()
        polls = accepted = 0
        started = time.perf_counter()
        for data in batches:
            receipt = client.upload(data)
            assert receipt.track_id is not None
            while True:
                status = client.estado_envio(receipt.track_id, rut_company=envelopes.EMISOR)
                polls += 1
                if status.final:
                    break
            accepted += status.aceptados
        roundtrip_s = time.perf_counter() - started
        client.transport.close()

    verify_s = (verify_before + verify_all()) / 2
    n = args.documents
    assert accepted == n, f"only {accepted} of {n} documents accepted"
    print(f"documents: {n} in {len(batches)} envíos of up to {args.per_envio}")
    print(f"build (TED + XMLDSig + envelope, not timed below): {n / build_s:,.0f} docs/s")
    print(f"reference, verify_xml alone (no HTTP):              {n / verify_s:,.0f} docs/s")
    print(
        f"round trip (upload + {polls} status polls until final): {n / roundtrip_s:,.0f} docs/s "
        f"({len(batches) / roundtrip_s:,.1f} envíos/s, {roundtrip_s:.2f} s)"
    )
    print(f"round trip speed relative to verify alone: {verify_s / roundtrip_s:.2f}x")


if __name__ == "__main__":
    main()
