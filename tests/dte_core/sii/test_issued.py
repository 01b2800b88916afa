"""Envelopes issued by the real pipeline (dte_core.issuing) go through the simulated SII."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from dte_core.folios import FolioStore
from dte_core.issuing import Issuer, IssuerMaterial
from dte_core.sii.client import SiiClient, documents_in
from dte_core.sii.codes import EstadoDte, EstadoEnvio
from tests.dte_core.sii import envelopes
from tests.issuing_kit import envio_request, factura


@pytest.fixture
def issuer(migrated_engine: Engine) -> Issuer:
    material = IssuerMaterial(
        certificate=envelopes.certificate(),
        cafs=[envelopes.caf(33), envelopes.caf(61)],
        keyring=envelopes.keyring(),
    )
    return Issuer(material, FolioStore(migrated_engine), "company-sim")


def test_issued_envelope_is_accepted_and_its_nota_recorded(
    issuer: Issuer, client: SiiClient
) -> None:
    request = envio_request(factura(33), factura(61))
    request["Caratula"]["RutEnvia"] = envelopes.FIRMANTE
    issued = issuer.issue_envio(request)
    receipt = client.upload(issued.xml)
    assert receipt.track_id is not None
    status = client.wait_envio(receipt.track_id, rut_company=envelopes.EMISOR, sleep=lambda s: None)
    assert status.estado is EstadoEnvio.EPR
    assert (status.informados, status.aceptados, status.rechazados) == (2, 2, 0)
    factura_key, nota_key = documents_in(issued.xml)
    # the nota (CodRef 3, corrige montos) references factura folio 1
    assert client.estado_dte(factura_key).estado is EstadoDte.MMC
    assert client.estado_dte(nota_key).estado is EstadoDte.DOK
