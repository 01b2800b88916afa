"""Received-document material: genuine EnvioDTEs issued by dte_core to a receptor, stamped with
CAFs signed by the test SII key (the SII's own samples carry redacted CAF keys)."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

from dte_core.caf import Caf, SiiKeyring
from dte_core.folios import FolioStore
from dte_core.issuing import Issuer, IssuerMaterial
from dte_core.signing import CompanyCertificate
from dte_core.storage import create_engine_for, metadata
from dte_core.testkit.caf import make_caf_xml, public_key_pem
from tests.issuing_kit import EMISOR, PASSWORD, RECEPTOR, company_p12, factura

RUT_ENVIA = "13185095-6"  # the holder of tests.issuing_kit.company_p12


def keyring_trusting(sii_key: Any) -> SiiKeyring:
    return SiiKeyring.default().with_trusted_key(public_key_pem(sii_key))


class EnvioFactory:
    """Issues real, signed EnvioDTEs from EMISOR (76086428-5) to RECEPTOR (77777777-7)."""

    def __init__(self, sii_key: Any, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine_for(f"sqlite:///{directory / 'emisor-folios.db'}")
        metadata.create_all(self.engine)
        cafs = [
            Caf.from_bytes(
                make_caf_xml(
                    sii_key=sii_key,
                    rut_emisor=EMISOR,
                    razon_social="EMPRESA DEMO SPA",
                    tipo_dte=tipo,
                    folio_desde=1,
                    folio_hasta=500,
                    fecha_autorizacion=date.today(),
                )
            )
            for tipo in (33, 61)
        ]
        self.certificate = CompanyCertificate.from_pkcs12(company_p12(), PASSWORD)
        material = IssuerMaterial(self.certificate, cafs, keyring_trusting(sii_key))
        self.issuer = Issuer(material, FolioStore(self.engine), f"rut:{EMISOR}")

    def envio(self, count: int = 1, *, receptor: str = RECEPTOR, tipo: int = 33) -> bytes:
        docs = []
        for _ in range(count):
            doc = factura(tipo)
            doc["Encabezado"]["Receptor"]["RUTRecep"] = receptor
            docs.append(copy.deepcopy(doc))
        request = {
            "Caratula": {
                "RutEnvia": RUT_ENVIA,
                "RutReceptor": receptor,
                "FchResol": "2014-08-22",
                "NroResol": 80,
            },
            "Documentos": docs,
        }
        return self.issuer.issue_envio(request).xml

    def close(self) -> None:
        self.engine.dispose()
