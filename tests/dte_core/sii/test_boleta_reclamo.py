"""The boleta REST flow and the acceptance/claim web service, against the simulator."""

from __future__ import annotations

import pytest

from dte_core.sii.boleta import BoletaClient
from dte_core.sii.client import SiiClient
from dte_core.sii.codes import (
    AccionDoc,
    Ambiente,
    CodigoReclamo,
    EstadoBoleta,
    EstadoEnvioBoleta,
)
from dte_core.sii.errors import SiiAuthError, SiiRejectedError
from dte_core.sii.reclamo import ReclamoClient
from dte_core.sii.simulator import Fault, SiiSimulator
from dte_core.testkit.caf import generate_sii_test_key
from tests.dte_core.sii import envelopes
from tests.dte_core.sii.conftest import Clock
from tests.dte_core.sii.envelopes import EMISOR, caf, dte, envio


def no_wait(seconds: float) -> None:
    """``sleep`` for the polls: the simulator moves one stage per poll."""


def test_boleta_flow_semilla_token_envio_status(
    sim: SiiSimulator, boleta_client: BoletaClient
) -> None:
    data = envio(dte(39, 1), dte(39, 2))
    assert data.lstrip().startswith(b"<?xml") and b"<EnvioBOLETA" in data
    receipt = boleta_client.upload(data)
    assert receipt.estado is EstadoEnvioBoleta.REC and receipt.rut_emisor == EMISOR
    paths = [p for _, p, _ in sim.requests]
    assert paths[:3] == [
        "/recursos/v1/boleta.electronica.semilla",
        "/recursos/v1/boleta.electronica.token",
        "/recursos/v1/boleta.electronica.envio",
    ]
    seen = [boleta_client.estado_envio(receipt.track_id, rut_emisor=EMISOR).estado.value
            for _ in range(5)]  # fmt: skip
    assert seen == ["REC", "SOK", "FOK", "PRD", "EPR"]
    final = boleta_client.estado_envio(receipt.track_id, rut_emisor=EMISOR)
    assert final.final and final.total("aceptados") == 2 and final.total("rechazados") == 0
    assert final.detalle == ()
    assert sim.requests[-1][2]["cookie"] == f"TOKEN={boleta_client.get_token()}"


def test_rejected_boleta_comes_with_its_reasons(
    sim: SiiSimulator, boleta_client: BoletaClient
) -> None:
    forged = caf(39, key=generate_sii_test_key())
    receipt = boleta_client.upload(envio(dte(39, 10), dte(39, 11, caf_=forged)))
    status = boleta_client.wait_envio(receipt.track_id, rut_emisor=EMISOR, sleep=no_wait)
    assert status.estado is EstadoEnvioBoleta.EPR
    assert status.total("informados") == 2 and status.total("rechazados") == 1
    (detalle,) = status.detalle
    assert (detalle.tipo, detalle.folio, detalle.estado) == (39, 11, EstadoBoleta.RCH)
    assert detalle.errores and any("CAF" in e or "SII" in e for e in detalle.errores)


def test_wait_envio_stops_after_max_polls(sim: SiiSimulator, boleta_client: BoletaClient) -> None:
    receipt = boleta_client.upload(envio(dte(39, 40)))
    waits: list[float] = []
    status = boleta_client.wait_envio(
        receipt.track_id, rut_emisor=EMISOR, max_polls=2, interval=3.0, sleep=waits.append
    )
    assert status.estado is EstadoEnvioBoleta.SOK and not status.final  # REC, then SOK
    assert waits == [3.0]


def test_boleta_token_refusal_is_reported(sim: SiiSimulator, boleta_client: BoletaClient) -> None:
    # a seed the SII never issued: boleta.electronica.token answers 08 "NO Existe SEED"
    sim.sii.new_seed = lambda: "000000000001"  # type: ignore[method-assign]
    with pytest.raises(SiiAuthError) as info:
        boleta_client.get_token()
    assert info.value.estado == "08" and "NO Existe SEED" in info.value.message
    assert info.value.message.startswith("boleta.electronica.token refused")


def test_boleta_token_refused_with_401_is_renewed(
    sim: SiiSimulator, boleta_client: BoletaClient
) -> None:
    receipt = boleta_client.upload(envio(dte(39, 20)))
    old = boleta_client.get_token()
    sim.sii.expire_tokens()
    status = boleta_client.estado_envio(receipt.track_id, rut_emisor=EMISOR)
    assert status.estado is EstadoEnvioBoleta.REC
    assert boleta_client.get_token() != old
    with pytest.raises(SiiRejectedError):
        boleta_client.estado_envio("999", rut_emisor=EMISOR)


def test_boleta_5xx_on_status_is_retried(sim: SiiSimulator, boleta_client: BoletaClient) -> None:
    receipt = boleta_client.upload(envio(dte(39, 30)))
    sim.faults.add("boleta.estado", Fault.SERVER_ERROR)
    assert boleta_client.estado_envio(receipt.track_id, rut_emisor=EMISOR).track_id


def test_environments_pick_the_sii_hosts() -> None:
    cert = envelopes.certificate()
    assert SiiClient(cert).base_url == "https://maullin.sii.cl"
    assert SiiClient(cert, ambiente=Ambiente.PRODUCCION).base_url == "https://palena.sii.cl"
    prod = BoletaClient(cert, ambiente=Ambiente.PRODUCCION)
    assert (prod.api_url, prod.envio_url) == (
        "https://api.sii.cl/recursos/v1",
        "https://rahue.sii.cl/recursos/v1",
    )
    assert ReclamoClient(SiiClient(cert)).url == (
        "https://ws2.sii.cl/WSREGISTRORECLAMODTECERT/registroreclamodteservice"
    )


# --------------------------------------------------------------------------- aceptación/reclamo


@pytest.fixture
def received(sim: SiiSimulator, client: SiiClient) -> list[int]:
    """Facturas 1-3 of EMISOR, accepted by the (simulated) SII."""
    track = client.upload(envelopes.facturas(1, 3)).track_id
    assert track is not None
    client.wait_envio(track, rut_company=EMISOR, sleep=no_wait)
    return [1, 2, 3]


def test_acceptance_then_claim_follows_the_manuals_rules(
    received: list[int], reclamo_client: ReclamoClient, sim: SiiSimulator
) -> None:
    assert reclamo_client.listar_eventos(EMISOR, 33, 1).codigo is CodigoReclamo.SIN_EVENTOS
    assert reclamo_client.ingresar(EMISOR, 33, 1, AccionDoc.ACD).ok
    assert reclamo_client.ingresar(EMISOR, 33, 1, AccionDoc.ACD).codigo is (
        CodigoReclamo.EVENTO_PREVIO
    )
    assert reclamo_client.ingresar(EMISOR, 33, 1, AccionDoc.RCD).codigo is (
        CodigoReclamo.RECLAMO_TRAS_ACEPTACION
    )
    assert reclamo_client.ingresar(EMISOR, 33, 1, AccionDoc.ERM).ok
    listed = reclamo_client.listar_eventos(EMISOR, 33, 1)
    assert listed.codigo is CodigoReclamo.LISTADO_EVENTOS
    assert [e.cod_evento for e in listed.eventos] == ["ACD", "ERM"]
    assert listed.eventos[0].rut_responsable == envelopes.FIRMANTE
    assert listed.eventos[0].desc_evento == "Acepta Contenido del Documento"
    assert reclamo_client.consultar_cedible(EMISOR, 33, 1).codigo is CodigoReclamo.CEDIBLE
    request = next(r for r in sim.requests if r[1].endswith("registroreclamodteservice"))
    assert request[1] == "/WSREGISTRORECLAMODTECERT/registroreclamodteservice"
    assert request[2]["cookie"].startswith("TOKEN=")


def test_claims_block_acceptance_and_receipt(
    received: list[int], reclamo_client: ReclamoClient
) -> None:
    assert reclamo_client.ingresar(EMISOR, 33, 2, AccionDoc.RFP).ok
    erm = reclamo_client.ingresar(EMISOR, 33, 2, AccionDoc.ERM)
    assert erm.codigo is CodigoReclamo.ERM_TRAS_RECLAMO and "RFP" in (erm.descripcion or "")
    assert reclamo_client.ingresar(EMISOR, 33, 2, AccionDoc.ACD).codigo is (
        CodigoReclamo.ACEPTACION_TRAS_RECLAMO
    )
    assert reclamo_client.ingresar(EMISOR, 33, 2, AccionDoc.RFP).codigo is (
        CodigoReclamo.EVENTO_PREVIO
    )
    assert reclamo_client.ingresar(EMISOR, 33, 2, AccionDoc.RCD).ok  # another claim is recorded
    assert reclamo_client.consultar_cedible(EMISOR, 33, 2).codigo is (
        CodigoReclamo.NO_CEDIBLE_RECLAMADO
    )
    assert reclamo_client.ingresar(EMISOR, 33, 3, AccionDoc.ERM).ok
    assert reclamo_client.ingresar(EMISOR, 33, 3, AccionDoc.RFT).codigo is (
        CodigoReclamo.RECLAMO_TRAS_ERM
    )


def test_unknown_type_and_time_limits(
    received: list[int], reclamo_client: ReclamoClient, clock: Clock
) -> None:
    assert reclamo_client.ingresar(EMISOR, 39, 1, AccionDoc.ACD).codigo is (
        CodigoReclamo.TIPO_NO_CORRESPONDE
    )
    assert reclamo_client.ingresar(EMISOR, 33, 99, AccionDoc.ACD).codigo is (
        CodigoReclamo.NO_RECIBIDO
    )
    assert reclamo_client.consultar_cedible(EMISOR, 33, 3).codigo is (
        CodigoReclamo.SIN_RECLAMO_NI_RECIBO
    )
    fecha = reclamo_client.fecha_recepcion(EMISOR, 33, 3)
    assert fecha is not None and len(fecha) == len("21-02-2017 19:02:03")
    clock.advance(8 * 86400 + 1)
    assert reclamo_client.ingresar(EMISOR, 33, 3, AccionDoc.RCD).codigo is (
        CodigoReclamo.PLAZO_VENCIDO
    )
    assert reclamo_client.consultar_cedible(EMISOR, 33, 3).codigo is CodigoReclamo.CEDIBLE_PLAZO


def test_only_the_receptors_representatives_may_register(
    received: list[int], reclamo_client: ReclamoClient, sim: SiiSimulator
) -> None:
    sim.sii.config.representantes = {envelopes.FIRMANTE: frozenset({"1-9"})}
    assert reclamo_client.ingresar(EMISOR, 33, 1, AccionDoc.ACD).codigo is (
        CodigoReclamo.SOLO_RECEPTOR
    )
    sim.sii.config.representantes = {envelopes.FIRMANTE: frozenset({envelopes.RECEPTOR})}
    assert reclamo_client.ingresar(EMISOR, 33, 1, AccionDoc.ACD).ok


def test_one_boleta_is_known_only_once_the_sii_registered_it(
    sim: SiiSimulator, boleta_client: BoletaClient
) -> None:
    from dte_core.sii.codes import EstadoBoleta

    rut = EMISOR
    assert boleta_client.estado_boleta(rut, 39, 7) is None  # never received
    receipt = boleta_client.upload(envio(dte(39, 7)))
    assert boleta_client.wait_envio(receipt.track_id, rut_emisor=rut, sleep=no_wait).final
    assert boleta_client.estado_boleta(rut, 39, 7) is EstadoBoleta.DOK
    assert boleta_client.estado_boleta(rut, 39, 8) is None
