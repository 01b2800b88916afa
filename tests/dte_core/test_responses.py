"""RespuestaDTE (acuse de recibo, aprobación comercial) and EnvioRecibos: schema-valid against the
official files in ../shared, signed, and verifiable by dte_core and by the xmlsec1 CLI."""

from __future__ import annotations

import subprocess
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from dte_core.caf import SiiKeyring
from dte_core.errors import InvalidDocumentError
from dte_core.received import verify_xml
from dte_core.responses import (
    DECLARACION_LEY_19983,
    DteRef,
    EstadoDTE,
    EstadoRecepDTE,
    EstadoRecepEnv,
    RecepcionDTE,
    RecepcionEnvio,
    Recibo,
    Responde,
    ResultadoDTE,
    build_envio_recibos,
    build_recepcion_envio,
    build_resultado_dte,
    recepcion_envio_for,
)
from dte_core.signing import CompanyCertificate, verify_signature
from dte_core.xmlsafe import DSIG_NS, SII_NS, parse_untrusted
from tests.ai_service.cli.independent import xmllint_valid
from tests.issuing_kit import PASSWORD, company_p12

SII = f"{{{SII_NS}}}"
DS = f"{{{DSIG_NS}}}"
WHEN = datetime(2026, 11, 30, 10, 15, 0)
REF = DteRef(
    tipo_dte=33,
    folio=170,
    fecha_emision=date(2019, 4, 1),
    rut_emisor="76354771-K",
    rut_receptor="96790240-3",
    monto_total=2996301,
)
RESPONDE = Responde(
    rut_responde="96790240-3", rut_recibe="76354771-K", nmb_contacto="Felipe Barria"
)


@lru_cache(maxsize=1)
def _cert() -> CompanyCertificate:
    return CompanyCertificate.from_pkcs12(company_p12(), PASSWORD)


@pytest.fixture(scope="module")
def cert_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cert") / "firma.pem"
    path.write_bytes(_cert().certificate.public_bytes(Encoding.PEM))
    return path


def _recepcion() -> bytes:
    return build_recepcion_envio(
        RESPONDE,
        [
            RecepcionEnvio(
                nmb_envio="EnvioDTE-76354771-K-170.xml",
                fch_recep=WHEN,
                cod_envio=1,
                envio_dte_id="SetDoc",
                estado=EstadoRecepEnv.RECIBIDO_CONFORME,
                digest="AAECAwQFBgcICQoLDA0ODxAREhM=",
                rut_emisor="76354771-K",
                rut_receptor="96790240-3",
                documentos=[RecepcionDTE(REF, EstadoRecepDTE.RECIBIDO_OK)],
            )
        ],
        _cert(),
        id_respuesta=7,
        timestamp=WHEN,
    )


def _resultado(estado: EstadoDTE = EstadoDTE.RECHAZADO) -> bytes:
    return build_resultado_dte(
        RESPONDE,
        [
            ResultadoDTE(
                REF, cod_envio=1, estado=estado, glosa="Precio no corresponde", cod_rch_dsc=-1
            )
        ],
        _cert(),
        id_respuesta=8,
        timestamp=WHEN,
    )


def _recibos() -> bytes:
    other = DteRef(52, 9, date(2019, 4, 2), "76354771-K", "96790240-3", 0)
    return build_envio_recibos(
        RESPONDE,
        [Recibo(REF, recinto="Bodega Los Pelambres"), Recibo(other, recinto="Faena Salamanca")],
        _cert(),
        timestamp=WHEN,
    )


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _xmlsec1(path: Path, cert_pem: Path, index: int, id_elements: tuple[str, ...]) -> str:
    """xmlsec1 --verify of the n-th signature; returns its stderr (which says OK or FAIL)."""
    args = ["xmlsec1", "--verify"]
    for name in id_elements:
        args += ["--id-attr:ID", name]
    args += [
        "--pubkey-cert-pem",
        str(cert_pem),
        "--node-xpath",
        f"(//*[local-name()='Signature'])[{index}]",
        str(path),
    ]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr + proc.stdout


SCHEMAS = {
    "RespuestaDTE": "respuesta-envio/RespuestaEnvioDTE_v10.xsd",
    "EnvioRecibos": "recibos/EnvioRecibos_v10.xsd",
}


@pytest.mark.parametrize(
    ("build", "root_name", "signatures", "ids"),
    [
        (_recepcion, "RespuestaDTE", 1, ("Resultado",)),
        (_resultado, "RespuestaDTE", 1, ("Resultado",)),
        (_recibos, "EnvioRecibos", 3, ("DocumentoRecibo", "SetRecibos")),
    ],
)
def test_answers_validate_with_the_official_schema_and_verify_independently(  # type: ignore[no-untyped-def]
    build,
    root_name: str,
    signatures: int,
    ids: tuple[str, ...],
    tmp_path: Path,
    shared_sii: Path,
    cert_pem: Path,
) -> None:
    xml = build()
    assert xml.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
    path = _write(tmp_path, f"{root_name}.xml", xml)
    ok, err = xmllint_valid(path, shared_sii / "schemas" / SCHEMAS[root_name])
    assert ok, err
    root = parse_untrusted(xml)
    assert etree.QName(root).localname == root_name
    found = list(root.iter(f"{DS}Signature"))
    assert len(found) == signatures
    for index, signature in enumerate(found, start=1):
        check = verify_signature(signature, tolerant=False)
        assert check.valid and check.context == "in_place", check.reason
        assert check.signer_rut == _cert().rut
        assert "OK" in _xmlsec1(path, cert_pem, index, ids)


def test_recepcion_envio_carries_the_envelope_and_each_document(shared_sii: Path) -> None:
    root = parse_untrusted(_recepcion())
    car = root.find(f"{SII}Resultado/{SII}Caratula")
    assert car.findtext(f"{SII}RutResponde") == "96790240-3"
    assert car.findtext(f"{SII}NroDetalles") == "1"
    assert car.findtext(f"{SII}TmstFirmaResp") == "2026-11-30T10:15:00"
    env = root.find(f"{SII}Resultado/{SII}RecepcionEnvio")
    assert env.findtext(f"{SII}EstadoRecepEnv") == "0"
    assert env.findtext(f"{SII}NroDTE") == "1"
    dte = env.find(f"{SII}RecepcionDTE")
    assert [dte.findtext(f"{SII}{t}") for t in ("TipoDTE", "Folio", "MntTotal")] == [
        "33",
        "170",
        "2996301",
    ]
    assert dte.findtext(f"{SII}EstadoRecepDTE") == "0"


def test_resultado_dte_rejects_with_its_reason() -> None:
    res = parse_untrusted(_resultado()).find(f"{SII}Resultado/{SII}ResultadoDTE")
    assert res.findtext(f"{SII}EstadoDTE") == str(int(EstadoDTE.RECHAZADO)) == "2"
    assert res.findtext(f"{SII}EstadoDTEGlosa") == "Precio no corresponde"
    assert res.findtext(f"{SII}CodRchDsc") == "-1"


def test_recibo_carries_the_exact_legal_declaration() -> None:
    root = parse_untrusted(_recibos())
    declaraciones = [el.text for el in root.iter(f"{SII}Declaracion")]
    assert declaraciones == [DECLARACION_LEY_19983] * 2
    assert "Ley 19.983" in DECLARACION_LEY_19983
    first = root.find(f"{SII}SetRecibos/{SII}Recibo/{SII}DocumentoRecibo")
    assert first.get("ID") == "T33F170"
    assert first.findtext(f"{SII}RutFirma") == _cert().rut  # the certificate holder


def test_a_different_declaration_is_schema_invalid() -> None:
    """The text is `fixed` in Recibos_v10.xsd: the schema itself refuses any other wording."""
    from dte_core import xsd

    root = parse_untrusted(_recibos())
    root.find(f".//{SII}Declaracion").text = "Recibido."
    assert xsd.validate(root, xsd.Schema.ENVIO_RECIBOS)


def test_altering_a_signed_answer_breaks_its_signature() -> None:
    xml = _resultado(EstadoDTE.ACEPTADO_OK)
    forged = xml.replace(b"<EstadoDTE>0</EstadoDTE>", b"<EstadoDTE>2</EstadoDTE>")
    assert forged != xml
    signature = parse_untrusted(forged).find(f"{DS}Signature")
    check = verify_signature(signature, tolerant=False)
    assert not check.valid and "digest" in (check.reason or "")


def test_enums_are_the_schema_enumerations(shared_sii: Path) -> None:
    xsd_doc = etree.parse(str(shared_sii / "schemas" / SCHEMAS["RespuestaDTE"]))
    xs = "{http://www.w3.org/2001/XMLSchema}"

    def values(name: str) -> set[int]:
        (el,) = [e for e in xsd_doc.iter(f"{xs}element") if e.get("name") == name]
        return {int(v.get("value")) for v in el.iter(f"{xs}enumeration")}

    assert values("EstadoRecepEnv") == {int(e) for e in EstadoRecepEnv}
    assert values("EstadoRecepDTE") == {int(e) for e in EstadoRecepDTE}
    assert values("EstadoDTE") == {int(e) for e in EstadoDTE}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"id_respuesta": 0}, "IdRespuesta"),
        ({"id_respuesta": 10**10}, "IdRespuesta"),
    ],
)
def test_out_of_range_numbers_are_refused(kwargs: dict[str, int], field: str) -> None:
    with pytest.raises(InvalidDocumentError) as info:
        build_resultado_dte(
            RESPONDE,
            [ResultadoDTE(REF, cod_envio=1, estado=EstadoDTE.ACEPTADO_OK)],
            _cert(),
            timestamp=WHEN,
            **kwargs,
        )
    assert info.value.fields[0].field == field


def test_positive_cod_rch_dsc_and_empty_answers_are_refused() -> None:
    with pytest.raises(InvalidDocumentError):
        build_resultado_dte(
            RESPONDE,
            [ResultadoDTE(REF, 1, EstadoDTE.RECHAZADO, cod_rch_dsc=5)],
            _cert(),
            id_respuesta=1,
            timestamp=WHEN,
        )
    with pytest.raises(InvalidDocumentError):
        build_resultado_dte(RESPONDE, [], _cert(), id_respuesta=1, timestamp=WHEN)
    with pytest.raises(InvalidDocumentError):
        build_envio_recibos(RESPONDE, [], _cert(), timestamp=WHEN)
    with pytest.raises(InvalidDocumentError):
        build_envio_recibos(RESPONDE, [Recibo(REF, recinto="  ")], _cert(), timestamp=WHEN)


def test_long_glosas_are_clipped_to_the_schema_limit() -> None:
    xml = build_resultado_dte(
        RESPONDE,
        [ResultadoDTE(REF, 1, EstadoDTE.ACEPTADO_CON_DISCREPANCIAS, glosa="x" * 1000)],
        _cert(),
        id_respuesta=1,
        timestamp=WHEN,
    )
    glosa = parse_untrusted(xml).findtext(f".//{SII}EstadoDTEGlosa")
    assert glosa is not None and len(glosa) == 256


# --- from a verification report (the real SII documents) ------------------------------------

KEYRING = SiiKeyring.default()


def _report(shared_sii: Path, rel: str):  # type: ignore[no-untyped-def]
    return verify_xml((shared_sii / "samples" / rel).read_bytes(), keyring=KEYRING)


def _acuse(report, company_rut: str, **kw):  # type: ignore[no-untyped-def]
    return recepcion_envio_for(
        report, company_rut=company_rut, nmb_envio="x.xml", cod_envio=1, fch_recep=WHEN, **kw
    )


def test_acuse_for_the_official_envio(shared_sii: Path) -> None:
    report = _report(shared_sii, "official/F60T33-ejemplo-oficial-SII.xml")
    acuse = _acuse(report, "60803000-K")
    assert acuse.estado is EstadoRecepEnv.RECIBIDO_CONFORME
    assert acuse.envio_dte_id == "SetDoc" and acuse.rut_emisor == "97975000-5"
    assert acuse.digest and acuse.digest == report.envelope.digest
    (doc,) = acuse.documentos
    # the SII's example envelope is addressed to the SII, its factura to 77777777-7
    assert doc.estado is EstadoRecepDTE.ERROR_RUT_RECEPTOR
    assert (doc.ref.tipo_dte, doc.ref.folio, doc.ref.rut_receptor) == (33, 60, "77777777-7")
    # and it builds into a valid, signed RespuestaDTE
    xml = build_recepcion_envio(
        Responde("60803000-K", "97975000-5"), [acuse], _cert(), id_respuesta=1, timestamp=WHEN
    )
    assert parse_untrusted(xml).findtext(f".//{SII}EnvioDTEID") == "SetDoc"


def test_acuse_for_another_receptor(shared_sii: Path) -> None:
    report = _report(shared_sii, "official/F60T33-ejemplo-oficial-SII.xml")
    acuse = _acuse(report, "77777777-7")
    assert acuse.estado is EstadoRecepEnv.RUT_RECEPTOR_NO_CORRESPONDE
    assert acuse.documentos[0].estado is EstadoRecepDTE.RECIBIDO_OK


def test_acuse_for_a_forged_document(shared_sii: Path) -> None:
    report = _report(shared_sii, "sii-dte/DTE--76354771-K--33--170--cleaned-mod-changed-monto.xml")
    (doc,) = _acuse(report, "96790240-3").documentos
    assert doc.estado is EstadoRecepDTE.ERROR_FIRMA


def test_acuse_for_a_schema_invalid_file(shared_sii: Path) -> None:
    report = _report(shared_sii, "sii-dte/DTE--76354771-K--33--170--cleaned-mod-empty-emails.xml")
    assert _acuse(report, "96790240-3").estado is EstadoRecepEnv.ERROR_SCHEMA


def test_acuse_for_a_repeated_file(shared_sii: Path) -> None:
    report = _report(shared_sii, "sii-dte/DTE--76354771-K--33--170--cleaned.xml")
    acuse = _acuse(report, "96790240-3", repeated=frozenset({("76354771-K", 33, 170)}))
    assert acuse.estado is EstadoRecepEnv.ARCHIVO_REPETIDO
    assert acuse.documentos[0].estado is EstadoRecepDTE.REPETIDO
    assert _acuse(report, "96790240-3").estado is EstadoRecepEnv.RECIBIDO_CONFORME
