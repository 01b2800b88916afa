"""Material for issuing in tests: a test SII key, CAFs signed by it, a company certificate.

Everything is generated (the SII's CAFs in ../shared carry redacted private keys); the test SII
key is trusted explicitly, exactly as an operator would with ``--trust-sii-key``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from dte_core.testkit.caf import generate_sii_test_key, make_caf_xml, public_key_pem
from dte_core.testkit.pki import make_company_p12

EMISOR = "76086428-5"
RECEPTOR = "77777777-7"
PASSWORD = b"s3cret-demo"
ALL_TYPES = (33, 34, 39, 41, 46, 52, 56, 61)


@lru_cache(maxsize=1)
def sii_key():  # type: ignore[no-untyped-def]
    return generate_sii_test_key()


@lru_cache(maxsize=1)
def company_p12() -> bytes:
    return make_company_p12(rut="13185095-6", name="Firmante Demo", password=PASSWORD)


@dataclass
class Kit:
    dir: Path
    cafs: dict[int, Path]
    cert: Path
    password_file: Path
    trust_key: Path

    def issue_args(
        self, input_json: Path, out: Path, types: tuple[int, ...] = ALL_TYPES
    ) -> list[str]:
        args = ["dte", "issue", str(input_json)]
        for tipo in types:
            args += ["--caf", str(self.cafs[tipo])]
        args += [
            "--cert",
            str(self.cert),
            "--cert-password-file",
            str(self.password_file),
            "--trust-sii-key",
            str(self.trust_key),
            "--out",
            str(out),
        ]
        return args


def make_kit(directory: Path, *, hasta: int = 50, fecha: date | None = None) -> Kit:
    directory.mkdir(parents=True, exist_ok=True)
    cafs = {}
    for tipo in ALL_TYPES:
        path = directory / f"CAF--{EMISOR}--{tipo}--1-{hasta}.xml"
        path.write_bytes(
            make_caf_xml(
                sii_key=sii_key(),
                rut_emisor=EMISOR,
                razon_social="EMPRESA DEMO SPA",
                tipo_dte=tipo,
                folio_desde=1,
                folio_hasta=hasta,
                fecha_autorizacion=fecha or date.today(),
            )
        )
        cafs[tipo] = path
    cert = directory / "firma.p12"
    cert.write_bytes(company_p12())
    pw = directory / "password.txt"
    pw.write_bytes(PASSWORD + b"\n")
    trust = directory / "sii-test-key.pem"
    trust.write_bytes(public_key_pem(sii_key()))
    return Kit(directory, cafs, cert, pw, trust)


EMISOR_JSON = {
    "RUTEmisor": EMISOR,
    "RznSoc": "Empresa Demo SpA",
    "GiroEmis": "Servicios informaticos",
    "Acteco": [620200],
    "DirOrigen": "Av. Apoquindo 4501",
    "CmnaOrigen": "Las Condes",
}
RECEPTOR_JSON = {
    "RUTRecep": RECEPTOR,
    "RznSocRecep": "Cliente Ñandú Ltda",
    "GiroRecep": "Comercio",
    "DirRecep": "San Diego 2222",
    "CmnaRecep": "Santiago",
}


def factura(tipo: int = 33, **idoc: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "Encabezado": {
            "IdDoc": {"TipoDTE": tipo, "FchEmis": date.today().isoformat(), **idoc},
            "Emisor": copy.deepcopy(EMISOR_JSON),
            "Receptor": copy.deepcopy(RECEPTOR_JSON),
        },
        "Detalle": [
            {"NmbItem": "Parlantes Multimedia 180W.", "QtyItem": 20, "PrcItem": 4500},
            {"NmbItem": "Mouse Inalambrico PS/2", "QtyItem": 1, "PrcItem": 5000},
            {"NmbItem": "Caja de Diskettes 10 Unidades", "QtyItem": 5, "PrcItem": 1000},
        ],
    }
    if tipo in (34, 41):
        for line in doc["Detalle"]:
            line["IndExe"] = 1
    if tipo in (56, 61):
        doc["Referencia"] = [
            {
                "TpoDocRef": "33",
                "FolioRef": "1",
                "FchRef": date.today().isoformat(),
                "CodRef": 3,
                "RazonRef": "Corrige montos",
            }
        ]
    if tipo == 52:
        doc["Encabezado"]["IdDoc"]["IndTraslado"] = 1
    if tipo in (39, 41):
        enc = doc["Encabezado"]
        enc["IdDoc"]["IndServicio"] = 3
        enc["Emisor"] = {
            "RUTEmisor": EMISOR,
            "RznSocEmisor": "Empresa Demo SpA",
            "GiroEmisor": "Servicios informaticos",
            "DirOrigen": "Av. Apoquindo 4501",
            "CmnaOrigen": "Las Condes",
        }
        enc["Receptor"] = {"RUTRecep": "66666666-6"}
    return doc


def envio_request(*docs: dict[str, Any]) -> dict[str, Any]:
    return {
        "Caratula": {
            "RutEnvia": "13185095-6",
            "RutReceptor": "60803000-K",
            "FchResol": "2014-08-22",
            "NroResol": 80,
        },
        "Documentos": list(docs),
    }


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path
