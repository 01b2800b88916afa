"""Every code of the manuals maps to an enum member, and the manuals' own answers parse."""

from __future__ import annotations

import pytest

from dte_core.sii import soap
from dte_core.sii.codes import (
    AccionDoc,
    Ambiente,
    CodigoReclamo,
    EstadoBoleta,
    EstadoDte,
    EstadoEnvio,
    EstadoToken,
    UploadStatus,
)
from dte_core.sii.errors import SiiProtocolError, SiiQueryError, SiiTokenExpiredError
from dte_core.sii.responses import (
    parse_boleta_estado,
    parse_est_dte,
    parse_est_up,
    parse_recepcion_dte,
)

# EUP §3.4.1, the encoded EPR answer (whitespace as in the manual, line breaks joined)
EPR_ENCODED = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    b'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
    b'<ns1:getEstUpResponse soapenv:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/" '
    b'xmlns:ns1="https://maullin.sii.cl/DTEWS/QueryEstUp.jws">'
    b'<getEstUpReturn xsi:type="xsd:string">&lt;?xml version=&quot;1.0&quot; '
    b"encoding=&quot;UTF-8&quot;?&gt;\n&lt;SII:RESPUESTA "
    b"xmlns:SII=&quot;http://www.sii.cl/XMLSchema&quot;&gt;&lt;SII:RESP_HDR&gt;&lt;TRACKID&gt;"
    b"53292&lt;/TRACKID&gt;&lt;ESTADO&gt;EPR&lt;/ESTADO&gt;&lt;GLOSA&gt;Envio "
    b"Procesado&lt;/GLOSA&gt;&lt;/SII:RESP_HDR&gt;&lt;SII:RESP_BODY&gt;&lt;TIPO_DOCTO&gt;56&lt;"
    b"/TIPO_DOCTO&gt;&lt;INFORMADOS&gt;1&lt;/INFORMADOS&gt;&lt;ACEPTADOS&gt;0&lt;/ACEPTADOS&gt;"
    b"&lt;RECHAZADOS&gt;1&lt;/RECHAZADOS&gt;&lt;REPAROS&gt;0&lt;/REPAROS&gt; &lt;NUM_ATENCION&gt;"
    b"532 ( 2004/06/14 16:44:20)&lt;/NUM_ATENCION&gt;&lt;/SII:RESP_BODY&gt;&lt;/SII:RESPUESTA&gt;"
    b"</getEstUpReturn></ns1:getEstUpResponse></soapenv:Body></soapenv:Envelope>"
)


def test_manual_epr_answer_parses() -> None:
    status = parse_est_up(soap.parse_rpc_response(EPR_ENCODED, "getEstUp"))
    assert status.track_id == "53292" and status.estado is EstadoEnvio.EPR and status.final
    assert (status.tipo_docto, status.informados, status.aceptados, status.rechazados) == (
        56, 1, 0, 1,
    )  # fmt: skip
    assert status.num_atencion == "532 ( 2004/06/14 16:44:20)"


def test_manual_status_7_receipt_parses() -> None:
    # UPL figura 2.3 (spaces inside the tags removed: the manual's typesetting)
    data = (
        b"<RECEPCIONDTE><RUTSENDER>07880442-4</RUTSENDER><RUTCOMPANY>88888888-8</RUTCOMPANY>"
        b"<FILE>ENVFIN_100_sign.xml</FILE><TIMESTAMP>2003-10-31 10:04:26</TIMESTAMP>"
        b'<STATUS>7</STATUS><DETAIL><ERROR>LSX-00265: attribute "version" value "3.2" is '
        b'wrong (must be ".2")</ERROR><ERROR>LSX-00213: only 0 occurrences of particle '
        b'"sequence", minimum is 1</ERROR></DETAIL></RECEPCIONDTE>'
    )
    receipt = parse_recepcion_dte(data)
    assert receipt.status is UploadStatus.ESQUEMA_INVALIDO and receipt.track_id is None
    assert len(receipt.errors) == 2 and receipt.errors[1].startswith("LSX-00213")


@pytest.mark.parametrize(
    ("code", "glosa"),
    [
        ("RSC", "Rechazado por Error en Schema"),
        ("SOK", "Schema Validado"),
        ("CRT", "Carátula OK"),
        ("RFR", "Rechazado por Error en Firma"),
        ("FOK", "Firma de Envío Validada"),
        ("PDR", "Envío en Proceso"),
        ("RCT", "Rechazado por Error en Carátula"),
        ("EPR", "Envío Procesado"),
    ],
)
def test_every_query_est_up_state(code: str, glosa: str) -> None:
    inner = soap.respuesta([("TRACKID", "1"), ("ESTADO", code), ("GLOSA", glosa)])
    status = parse_est_up(soap.parse_respuesta(inner, "test"))
    assert status.estado.value == code and status.estado.glosa == glosa
    assert status.final is (code in ("RSC", "RFR", "RCT", "EPR"))


def test_chapter_4_spellings_are_read_as_the_table() -> None:
    for printed, meant in (("SDK", EstadoEnvio.SOK), ("PRD", EstadoEnvio.PDR)):
        inner = soap.respuesta([("ESTADO", printed), ("GLOSA", "x")])
        assert parse_est_up(soap.parse_respuesta(inner, "test")).estado is meant


# EDT tabla 3-9: ERR_CODE of each ESTADO
ERR_CODES = {
    "DOK": 0, "DNK": 1, "FAU": 3, "FNA": 4, "FAN": 5, "EMP": 6, "TMD": 10, "TMC": 11,
    "MMD": 12, "MMC": 13, "AND": 14, "ANC": 15,
}  # fmt: skip


@pytest.mark.parametrize(("code", "err"), sorted(ERR_CODES.items()))
def test_every_query_est_dte_state(code: str, err: int) -> None:
    inner = soap.respuesta(
        [("ESTADO", code), ("GLOSA_ESTADO", "x"), ("ERR_CODE", str(err)), ("GLOSA_ERR", "y")]
    )
    status = parse_est_dte(soap.parse_respuesta(inner, "test"))
    assert status.estado is EstadoDte(code) and status.estado.err_code == err == status.err_code
    assert status.estado.recibido is (code not in ("FAU", "FNA", "FAN", "EMP"))


@pytest.mark.parametrize("estado", ["001", "002", "003"])
def test_token_errors_of_the_queries(estado: str) -> None:
    inner = soap.parse_respuesta(soap.respuesta([("ESTADO", estado), ("GLOSA", "x")]), "t")
    with pytest.raises(SiiTokenExpiredError):
        parse_est_up(inner)
    with pytest.raises(SiiTokenExpiredError):
        parse_est_dte(inner)


def test_query_error_states_are_errors() -> None:
    hdr = [("ESTADO", "-11"), ("ERR_CODE", "2"), ("SQL_CODE", None), ("SRV_CODE", None)]
    inner = soap.parse_respuesta(soap.respuesta(hdr), "t")
    with pytest.raises(SiiQueryError) as info:
        parse_est_up(inner)
    assert info.value.estado == "-11"


def test_upload_statuses_and_other_codes() -> None:
    assert [s.value for s in UploadStatus if s is not UploadStatus.ERROR_INTERNO] == [
        0, 1, 2, 3, 5, 6, 7, 8, 9,
    ]  # fmt: skip
    assert UploadStatus.of(4) is UploadStatus.ERROR_INTERNO  # "Otro = Error Interno"
    assert EstadoToken("21").glosa.startswith("Firma invalida")
    assert [a.value for a in AccionDoc] == ["ACD", "RCD", "ERM", "RFP", "RFT"]
    assert [a.reclamo for a in AccionDoc] == [False, True, False, True, True]
    assert {c.value for c in CodigoReclamo} == set(range(26)) | {-1}
    assert Ambiente.CERTIFICACION.host == "maullin.sii.cl"
    assert Ambiente.PRODUCCION.host == "palena.sii.cl"
    assert "ws1.sii.cl" in Ambiente.PRODUCCION.reclamo_url


def test_one_boleta_status_answer() -> None:
    assert parse_boleta_estado(b'{"estado": "RPR", "trackid": 1}') is EstadoBoleta.RPR
    for bad in (b'{"estado": "XYZ"}', b'["DOK"]', b"<html>"):
        with pytest.raises(SiiProtocolError):
            parse_boleta_estado(bad)


def test_unreadable_upload_answer_is_a_protocol_error() -> None:
    with pytest.raises(SiiProtocolError, match="upload answer is not readable XML"):
        parse_recepcion_dte(b"<RECEPCIONDTE><STATUS>0")
