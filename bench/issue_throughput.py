"""Issue throughput on one core: DTEs per second (parse + totals + build + TED + XMLDSig + XSD),
next to the RSA-2048 signing rate measured in the same run, and memory after many documents.

Run: ``make bench`` (or ``.venv/bin/python bench/issue_throughput.py --documents 10000``).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from datetime import date, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from dte_core import totals
from dte_core.caf import Caf, SiiKeyring
from dte_core.issuing import build_signed_dte, with_folio
from dte_core.models import parse_documento
from dte_core.signing import CompanyCertificate
from dte_core.testkit.caf import generate_sii_test_key, make_caf_xml, public_key_pem
from dte_core.testkit.pki import make_company_p12

RUT = "76086428-5"


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def document(i: int) -> dict:
    return {
        "Encabezado": {
            "IdDoc": {"TipoDTE": 33, "FchEmis": "2026-11-20"},
            "Emisor": {
                "RUTEmisor": RUT,
                "RznSoc": "Empresa Demo SpA",
                "GiroEmis": "Servicios informaticos",
                "Acteco": [620200],
                "DirOrigen": "Av. Apoquindo 4501",
                "CmnaOrigen": "Las Condes",
            },
            "Receptor": {
                "RUTRecep": "77777777-7",
                "RznSocRecep": "Cliente Ltda",
                "GiroRecep": "Comercio",
                "DirRecep": "San Diego 2222",
                "CmnaRecep": "Santiago",
            },
        },
        "Detalle": [
            {"NmbItem": f"Servicio de soporte {i}", "QtyItem": 2, "PrcItem": 45000 + i % 97},
            {"NmbItem": "Licencia anual", "QtyItem": 1, "PrcItem": 120000, "DescuentoPct": 10},
            {"NmbItem": "Traslado", "QtyItem": 1, "PrcItem": 15000},
        ],
    }


def rsa_sign_rate(cert: CompanyCertificate, seconds: float) -> float:
    data = b"x" * 2048
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        cert.private_key.sign(data, padding.PKCS1v15(), hashes.SHA1())
        n += 1
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--rsa-seconds", type=float, default=3.0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    sii_key = generate_sii_test_key()
    caf = Caf.from_bytes(
        make_caf_xml(
            sii_key=sii_key,
            rut_emisor=RUT,
            razon_social="Empresa Demo SpA",
            tipo_dte=33,
            folio_desde=1,
            folio_hasta=args.documents + 10,
            fecha_autorizacion=date(2026, 11, 1),
        )
    )
    caf.verify(SiiKeyring.default().with_trusted_key(public_key_pem(sii_key)))
    cert = CompanyCertificate.from_pkcs12(make_company_p12(rut=RUT, password=b"x"), b"x")
    stamp = datetime(2026, 11, 20, 10, 0, 0)

    rsa_rate = rsa_sign_rate(cert, args.rsa_seconds)

    warm = 200
    for i in range(1, warm + 1):
        doc = totals.complete(parse_documento(document(i)))
        build_signed_dte(with_folio(doc, i), caf, cert, timestamp=stamp)
    rss_start = rss_mib()
    rss_at_1000 = 0.0
    start = time.perf_counter()
    for i in range(1, args.documents + 1):
        doc = totals.complete(parse_documento(document(i)))
        build_signed_dte(with_folio(doc, i), caf, cert, timestamp=stamp)
        if i == 1000:
            rss_at_1000 = rss_mib()
    elapsed = time.perf_counter() - start
    rss_end = rss_mib()
    rate = args.documents / elapsed

    print(f"documents issued            : {args.documents}")
    print(f"DTE/s (one core)            : {rate:,.1f}")
    print(f"RSA-2048 SHA1 signs/s       : {rsa_rate:,.1f}")
    print(f"ratio DTE/s : RSA signs/s   : {rate / rsa_rate:.3f}  (aim >= 0.25)")
    print(f"ms per DTE                  : {1000 / rate:.3f}")
    print(f"RSS after warm-up           : {rss_start:.1f} MiB")
    print(f"RSS after 1 000 documents   : {rss_at_1000:.1f} MiB")
    print(f"RSS after {args.documents:,} documents : {rss_end:.1f} MiB")
    print(f"growth 1 000 -> {args.documents:,}       : {rss_end - rss_at_1000:+.1f} MiB")
    print(
        f"peak RSS (ru_maxrss)        : "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB"
    )


if __name__ == "__main__":
    main()
