"""DTEUpload and the status queries against the simulator, with real signed envelopes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from lxml import etree

from dte_core.sii.client import DocumentKey, SiiClient, documents_in
from dte_core.sii.codes import EstadoDte, EstadoEnvio, UploadStatus
from dte_core.sii.errors import SiiRejectedError
from dte_core.sii.simulator import SiiSimulator
from dte_core.sii.transport import USER_AGENT
from dte_core.testkit.caf import generate_sii_test_key
from dte_core.xmlsafe import SII_NS
from tests.dte_core.sii import envelopes
from tests.dte_core.sii.envelopes import Ref, caf, dte, envio


def _stages(client: SiiClient, track_id: str, polls: int = 6) -> list[str]:
    return [
        client.estado_envio(track_id, rut_company=envelopes.EMISOR).estado.value
        for _ in range(polls)
    ]


def test_valid_envelope_walks_to_epr_with_every_document_accepted(
    sim: SiiSimulator, client: SiiClient
) -> None:
    data = envelopes.facturas(1, 3)
    receipt = client.upload(data, filename="ENVIO_1.xml")
    assert receipt.status is UploadStatus.UPLOAD_OK and receipt.track_id
    assert receipt.rut_company == envelopes.EMISOR and receipt.file == "ENVIO_1.xml"
    assert _stages(client, receipt.track_id) == ["SOK", "CRT", "FOK", "PDR", "EPR", "EPR"]
    final = client.estado_envio(receipt.track_id, rut_company=envelopes.EMISOR)
    assert final.final and final.glosa == "Envío Procesado"
    assert (final.tipo_docto, final.informados, final.aceptados, final.rechazados) == (33, 3, 3, 0)
    for key in documents_in(data):
        status = client.estado_dte(key)
        assert status.estado is EstadoDte.DOK and status.err_code == 0
        assert status.glosa == "DTE Recibido"


def test_upload_request_is_the_manuals(sim: SiiSimulator, client: SiiClient) -> None:
    client.upload(envelopes.facturas(1, 1))
    method, path, headers = next(r for r in sim.requests if r[1] == "/cgi_dte/UPL/DTEUpload")
    assert (method, path) == ("POST", "/cgi_dte/UPL/DTEUpload")
    assert "PROG 1.0" in headers["user-agent"]
    assert headers["cookie"] == f"TOKEN={client.get_token()}"
    assert headers["content-type"].startswith("multipart/form-data; boundary=")


def test_document_status_tells_mismatch_and_absence(sim: SiiSimulator, client: SiiClient) -> None:
    data = envelopes.facturas(10, 1)
    track = client.upload(data).track_id
    assert track is not None
    client.wait_envio(track, rut_company=envelopes.EMISOR, sleep=lambda s: None)
    (key,) = documents_in(data)
    wrong = DocumentKey(**{**key.__dict__, "monto_total": key.monto_total + 1})
    assert client.estado_dte(wrong).estado is EstadoDte.DNK
    missing = DocumentKey(**{**key.__dict__, "folio": 11})
    status = client.estado_dte(missing)
    assert status.estado is EstadoDte.FAU and status.err_code == 3
    assert status.glosa == "DTE No Recibido"


def test_tampered_envelope_is_rejected_for_its_signature(
    sim: SiiSimulator, client: SiiClient
) -> None:
    data = envelopes.facturas(20, 2).replace(b"<MntTotal>11900<", b"<MntTotal>11000<", 1)
    track = client.upload(data).track_id
    assert track is not None
    status = client.wait_envio(track, rut_company=envelopes.EMISOR, sleep=lambda s: None)
    assert status.estado is EstadoEnvio.RFR
    assert "digest mismatch" in (status.glosa or "")
    assert client.estado_dte(documents_in(data)[0]).estado is EstadoDte.FAU


def test_document_with_a_forged_caf_is_rejected_inside_an_epr(
    sim: SiiSimulator, client: SiiClient
) -> None:
    forged = caf(33, key=generate_sii_test_key())  # a CAF the SII never signed
    data = envio(dte(33, 30), dte(33, 31, caf_=forged))
    track = client.upload(data).track_id
    assert track is not None
    status = client.wait_envio(track, rut_company=envelopes.EMISOR, sleep=lambda s: None)
    assert status.estado is EstadoEnvio.EPR
    assert (status.informados, status.aceptados, status.rechazados) == (2, 1, 1)
    reasons = {r.folio: r.reasons for r in sim.sii.envios[track].results}
    assert reasons[30] == [] and any("SII" in r or "CAF" in r for r in reasons[31])
    first, second = documents_in(data)
    assert client.estado_dte(first).estado is EstadoDte.DOK
    assert client.estado_dte(second).estado is EstadoDte.FAU


def test_reuploading_accepted_documents_rejects_them_as_repeated(
    sim: SiiSimulator, client: SiiClient
) -> None:
    data = envelopes.facturas(40, 1)
    for expected in (1, 0):
        track = client.upload(data).track_id
        assert track is not None
        status = client.wait_envio(track, rut_company=envelopes.EMISOR, sleep=lambda s: None)
        assert status.aceptados == expected
    assert "repetido" in sim.sii.envios[track].results[0].reasons[0]


def test_notas_change_the_status_of_the_document_they_reference(
    sim: SiiSimulator, client: SiiClient
) -> None:
    data = envio(
        dte(33, 50),
        dte(33, 51),
        dte(61, 1, ref=Ref(33, 50, 1)),  # anula
        dte(56, 1, ref=Ref(33, 51, 3)),  # corrige montos
    )
    track = client.upload(data).track_id
    assert track is not None
    status = client.wait_envio(track, rut_company=envelopes.EMISOR, sleep=lambda s: None)
    assert status.estado is EstadoEnvio.EPR
    # one RESP_BODY group per type, summed in the totals
    assert status.por_tipo == ((33, 2, 2, 0, 0), (56, 1, 1, 0, 0), (61, 1, 1, 0, 0))
    assert (status.informados, status.aceptados) == (4, 4)
    keys = {k.folio: k for k in documents_in(data) if k.tipo_dte == 33}
    anulada, corregida = client.estado_dte(keys[50]), client.estado_dte(keys[51])
    assert (anulada.estado, anulada.err_code) == (EstadoDte.ANC, 15)
    assert (corregida.estado, corregida.err_code) == (EstadoDte.MMD, 12)


def test_schema_invalid_envelope_ends_in_rsc(sim: SiiSimulator, client: SiiClient) -> None:
    root = etree.fromstring(envelopes.facturas(60, 1))
    folio = root.find(f".//{{{SII_NS}}}Folio")
    assert folio is not None
    folio.text = "not-a-number"
    track = client.upload(etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1"))
    assert track.track_id is not None
    status = client.wait_envio(track.track_id, rut_company=envelopes.EMISOR, sleep=lambda s: None)
    assert status.estado is EstadoEnvio.RSC and "Folio" in (status.glosa or "")


def test_the_official_sample_is_refused_for_its_caratula(
    shared_sii: Path, sim: SiiSimulator, client: SiiClient
) -> None:
    data = (shared_sii / "samples/official/F60T33-ejemplo-oficial-SII.xml").read_bytes()
    receipt = client.upload(data)
    assert receipt.rut_company == "97975000-5"  # taken from the sample's Carátula
    assert receipt.track_id is not None
    status = client.wait_envio(receipt.track_id, rut_company="97975000-5", sleep=lambda s: None)
    # the SII's own example verifies (schema, CAF, TED, signatures) but we are not its sender
    assert status.estado is EstadoEnvio.RCT
    assert "RutEnvia" in (status.glosa or "")


def test_not_xml_is_refused_at_upload_with_status_7(sim: SiiSimulator, client: SiiClient) -> None:
    with pytest.raises(SiiRejectedError) as info:
        client.upload(
            b"<EnvioDTE><SetDTE><Caratula><RutEmisor>76086428-5</RutEmisor>"
            b"</Caratula></SetDTE><oops></EnvioDTE>",
            rut_company=envelopes.EMISOR,
        )
    assert info.value.status == UploadStatus.ESQUEMA_INVALIDO
    assert info.value.details and "well-formed" in info.value.details[0]


def test_hostile_xml_is_refused_without_expansion(
    shared_sii: Path, sim: SiiSimulator, client: SiiClient
) -> None:
    bomb = next((shared_sii / "samples/xml-attacks").glob("*laugh*"))
    with pytest.raises(SiiRejectedError) as info:
        client.upload(bomb.read_bytes(), rut_company=envelopes.EMISOR)
    assert info.value.status == UploadStatus.ESQUEMA_INVALIDO


def test_upload_without_prog_1_0_gets_html_and_without_token_status_5(
    sim: SiiSimulator, client: SiiClient
) -> None:
    data = envelopes.facturas(70, 1)
    form = {"rutSender": "11111111", "dvSender": "1", "rutCompany": "76086428", "dvCompany": "5"}
    files = {"archivo": ("e.xml", data, "text/xml")}
    http = httpx.Client(transport=httpx.WSGITransport(app=sim), base_url="http://sii.test")
    token = client.get_token()
    browser = http.post(
        "/cgi_dte/UPL/DTEUpload",
        data=form,
        files=files,
        headers={"Cookie": f"TOKEN={token}", "User-Agent": "Mozilla/5.0"},
    )
    assert browser.headers["content-type"].startswith("text/html")
    anonymous = http.post(
        "/cgi_dte/UPL/DTEUpload", data=form, files=files, headers={"User-Agent": USER_AGENT}
    )
    assert b"<STATUS>5</STATUS>" in anonymous.content and b"TRACKID" not in anonymous.content
    wrong_sender = http.post(
        "/cgi_dte/UPL/DTEUpload",
        data={**form, "rutSender": "22222222", "dvSender": "2"},
        files=files,
        headers={"Cookie": f"TOKEN={token}", "User-Agent": USER_AGENT},
    )
    assert b"<STATUS>1</STATUS>" in wrong_sender.content
