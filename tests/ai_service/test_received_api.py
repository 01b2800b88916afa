"""/v1/received end to end on SQLite and PostgreSQL: upload (raw or multipart), idempotence,
hostile files refused but kept, signed answers checked with the official schemas and xmlsec1,
and isolation between companies."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ai_service.main import create_app
from ai_service.settings import Settings
from dte_core.signing import CompanyCertificate, verify_signature
from dte_core.xmlsafe import DSIG_NS, SII_NS, parse_untrusted
from tests.ai_service.cli.independent import xmllint_valid
from tests.ai_service.conftest import RUT_A, RUT_B, Tenant, create_tenant
from tests.ai_service.ingest.material import EnvioFactory
from tests.issuing_kit import PASSWORD, RECEPTOR, company_p12

SII = f"{{{SII_NS}}}"
XML = {"Content-Type": "application/xml"}
assert RECEPTOR == RUT_B  # the factory's documents are addressed to tenant B


def _app(settings: Settings, engine: Engine) -> FastAPI:
    return create_app(settings, engine=engine)


@pytest.fixture
def api(settings: Settings, migrated_engine: Engine) -> Iterator[TestClient]:
    with TestClient(_app(settings, migrated_engine)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def factory(sii_key: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvioFactory]:
    made = EnvioFactory(sii_key, tmp_path_factory.mktemp("emisor"))
    yield made
    made.close()


@pytest.fixture
def receptor(api: TestClient) -> Tenant:
    return create_tenant(api, RUT_B, "Receptora Ltda")


@pytest.fixture
def other(api: TestClient) -> Tenant:
    return create_tenant(api, RUT_A, "Otra SpA")


def _with_certificate(api: TestClient, tenant: Tenant) -> Tenant:
    response = api.post(
        "/v1/certificates",
        files={"file": ("firma.p12", company_p12(), "application/x-pkcs12")},
        data={"password": PASSWORD.decode()},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    return tenant


@pytest.fixture(scope="module")
def cert_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cert = CompanyCertificate.from_pkcs12(company_p12(), PASSWORD).certificate
    path = tmp_path_factory.mktemp("pem") / "firma.pem"
    path.write_bytes(cert.public_bytes(Encoding.PEM))
    return path


def _upload(api: TestClient, tenant: Tenant, xml: bytes) -> Any:
    return api.post(
        "/v1/received?filename=envio.xml", content=xml, headers={**tenant.headers, **XML}
    )


def _check_signed(xml: bytes, schema: Path, tmp_path: Path, cert_pem: Path, ids: list[str]) -> Any:
    """Official schema (xmllint), dte_core's verifier and xmlsec1 must all accept the answer."""
    path = tmp_path / "answer.xml"
    path.write_bytes(xml)
    ok, err = xmllint_valid(path, schema)
    assert ok, err
    root = parse_untrusted(xml)
    signatures = list(root.iter(f"{{{DSIG_NS}}}Signature"))
    assert signatures
    for index, signature in enumerate(signatures, start=1):
        assert verify_signature(signature, tolerant=False).valid
        args = ["xmlsec1", "--verify"]
        for name in ids:
            args += ["--id-attr:ID", name]
        args += ["--pubkey-cert-pem", str(cert_pem)]
        args += ["--node-xpath", f"(//*[local-name()='Signature'])[{index}]", str(path)]
        proc = subprocess.run(args, capture_output=True, text=True, check=False)
        assert proc.returncode == 0 and "OK" in proc.stderr + proc.stdout, proc.stderr
    return root


def test_raw_upload_stores_verifies_and_lists(
    api: TestClient, receptor: Tenant, factory: EnvioFactory
) -> None:
    xml = factory.envio(2)
    response = _upload(api, receptor, xml)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["file_created"] and body["valid"]
    assert body["file"]["status"] == "processed" and body["file"]["filename"] == "envio.xml"
    assert response.headers["Location"] == f"/v1/received/files/{body['file']['id']}"
    assert [d["outcome"] for d in body["documents"]] == ["new", "new"]
    page = api.get("/v1/received", headers=receptor.headers).json()
    assert page["total"] == 2
    assert {i["id"] for i in page["items"]} == {d["id"] for d in body["documents"]}
    one = api.get(f"/v1/received/{body['documents'][0]['id']}", headers=receptor.headers).json()
    assert one["authentic"] and one["schema_valid"] and one["status"] == "received"
    assert one["report"]["ted"]["valid"] and one["report"]["caf"]["valid"]
    dte = api.get(one["xml_url"], headers=receptor.headers)
    assert dte.headers["content-type"].startswith("application/xml")
    assert parse_untrusted(dte.content).tag == f"{SII}DTE"
    raw = api.get(body["file"]["raw_url"], headers=receptor.headers)
    assert raw.content == xml
    filtered = api.get("/v1/received?tipo_dte=61", headers=receptor.headers).json()
    assert filtered["total"] == 0
    detail = api.get(response.headers["Location"], headers=receptor.headers).json()
    assert detail["report"]["valid"] and detail["report"]["envelope"]["set_id"] == "SetDoc"
    assert detail["sha256"] == hashlib.sha256(xml).hexdigest()


def test_openapi_documents_both_upload_forms(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    content = spec["paths"]["/v1/received"]["post"]["requestBody"]["content"]
    assert {"application/xml", "multipart/form-data"} <= set(content)


def test_multipart_upload_and_idempotent_retry(
    api: TestClient, receptor: Tenant, factory: EnvioFactory
) -> None:
    xml = factory.envio(1)
    first = api.post(
        "/v1/received",
        files={"file": ("DTE-enviado.xml", xml, "application/xml")},
        headers=receptor.headers,
    )
    assert first.status_code == 201, first.text
    assert first.json()["file"]["filename"] == "DTE-enviado.xml"
    again = _upload(api, receptor, xml)
    assert again.status_code == 200
    assert again.json()["file"]["id"] == first.json()["file"]["id"]
    assert again.json()["documents"][0]["outcome"] == "duplicate"
    assert api.get("/v1/received", headers=receptor.headers).json()["total"] == 1


@pytest.mark.parametrize(
    "name",
    [
        "billion-laughs-1.xml",
        "billion-laughs-2.xml",
        "external-entity-expansion-remote.xml",
        "quadratic-blowup-entity-expansion.xml",
    ],
)
def test_hostile_xml_is_refused_with_400_but_kept(
    api: TestClient, receptor: Tenant, shared_sii: Path, name: str
) -> None:
    raw = (shared_sii / "samples" / "xml-attacks" / name).read_bytes()
    response = _upload(api, receptor, raw)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "hostile_xml" and "kept as received file" in error["message"]
    (stored,) = api.get("/v1/received/files", headers=receptor.headers).json()
    assert stored["status"] == "refused" and stored["error_code"] == "hostile_xml"
    assert api.get(stored["raw_url"], headers=receptor.headers).content == raw
    assert _upload(api, receptor, raw).status_code == 400  # again: same answer, same file
    assert len(api.get("/v1/received/files", headers=receptor.headers).json()) == 1


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"<EnvioDTE><SetDTE>", XML, 422, "unreadable_xml"),
        (b"<AEC/>", XML, 422, "unsupported_document"),
        (b"", XML, 400, "empty_upload"),
        (b"{}", {"Content-Type": "application/json"}, 415, "unsupported_media_type"),
    ],
)
def test_bad_uploads_have_clear_codes(
    api: TestClient, receptor: Tenant, body: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    response = api.post("/v1/received", content=body, headers={**receptor.headers, **headers})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_multipart_over_one_mebibyte_is_accepted(
    api: TestClient, receptor: Tenant, factory: EnvioFactory
) -> None:
    """File parts are spooled, not held to starlette's 1 MiB field limit: big envelopes pass."""
    xml = factory.envio(1)
    declaration, _, rest = xml.partition(b"\n")
    padded = declaration + b"\n<!-- " + b"x" * (1024 * 1024 + 200_000) + b" -->\n" + rest
    response = api.post(
        "/v1/received",
        files={"file": ("grande.xml", padded, "application/xml")},
        headers=receptor.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["file"]["size"] == len(padded) > 1024 * 1024
    assert response.json()["valid"]


def test_multipart_without_file_part(api: TestClient, receptor: Tenant) -> None:
    response = api.post(
        "/v1/received", data={"x": "1"}, files={"other": ("a", b"b")}, headers=receptor.headers
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "missing_file"


def test_company_b_cannot_read_company_a_documents(
    api: TestClient, receptor: Tenant, other: Tenant, factory: EnvioFactory
) -> None:
    body = _upload(api, receptor, factory.envio(1)).json()
    doc_id, file_id = body["documents"][0]["id"], body["file"]["id"]
    _with_certificate(api, other)
    for method, path in [
        ("GET", f"/v1/received/{doc_id}"),
        ("GET", f"/v1/received/{doc_id}/xml"),
        ("GET", f"/v1/received/files/{file_id}"),
        ("GET", f"/v1/received/files/{file_id}/raw"),
        ("POST", f"/v1/received/files/{file_id}/acuse"),
    ]:
        response = api.request(method, path, headers=other.headers)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"].startswith("received_")
    response = api.post(
        f"/v1/received/{doc_id}/resultado", json={"estado": "rejected"}, headers=other.headers
    )
    assert response.status_code == 404
    assert api.get("/v1/received", headers=other.headers).json() == {"items": [], "total": 0}
    assert api.get("/v1/received/files", headers=other.headers).json() == []
    assert api.get(f"/v1/received/{doc_id}").status_code == 401  # and no key, no data


def test_acuse_de_recibo_is_signed_and_schema_valid(
    api: TestClient,
    receptor: Tenant,
    factory: EnvioFactory,
    shared_sii: Path,
    tmp_path: Path,
    cert_pem: Path,
) -> None:
    body = _upload(api, receptor, factory.envio(2)).json()
    file_id = body["file"]["id"]
    missing = api.post(f"/v1/received/files/{file_id}/acuse", headers=receptor.headers)
    assert missing.status_code == 409 and missing.json()["error"]["code"] == "no_certificate"
    _with_certificate(api, receptor)
    response = api.post(f"/v1/received/files/{file_id}/acuse", headers=receptor.headers)
    assert response.status_code == 201, response.text
    schema = shared_sii / "schemas" / "respuesta-envio" / "RespuestaEnvioDTE_v10.xsd"
    root = _check_signed(response.content, schema, tmp_path, cert_pem, ["Resultado"])
    envio = root.find(f"{SII}Resultado/{SII}RecepcionEnvio")
    assert envio.findtext(f"{SII}CodEnvio") == str(file_id)
    assert envio.findtext(f"{SII}EstadoRecepEnv") == "0"
    assert envio.findtext(f"{SII}EnvioDTEID") == "SetDoc"
    assert [e.text for e in envio.iter(f"{SII}EstadoRecepDTE")] == ["0", "0"]
    assert root.findtext(f".//{SII}RutResponde") == RUT_B
    assert root.findtext(f".//{SII}IdRespuesta") == response.headers["X-Response-Id"]


def test_acuse_of_a_refused_file_is_a_conflict(
    api: TestClient, receptor: Tenant, shared_sii: Path
) -> None:
    _with_certificate(api, receptor)
    _upload(api, receptor, b"<EnvioDTE>")
    (stored,) = api.get("/v1/received/files", headers=receptor.headers).json()
    response = api.post(f"/v1/received/files/{stored['id']}/acuse", headers=receptor.headers)
    assert response.status_code == 409 and response.json()["error"]["code"] == "file_not_answerable"


def test_acceptance_and_recibo_de_mercaderias(
    api: TestClient,
    receptor: Tenant,
    factory: EnvioFactory,
    shared_sii: Path,
    tmp_path: Path,
    cert_pem: Path,
) -> None:
    _with_certificate(api, receptor)
    doc_id = _upload(api, receptor, factory.envio(1)).json()["documents"][0]["id"]
    accepted = api.post(
        f"/v1/received/{doc_id}/resultado",
        json={"estado": "accepted", "glosa": "Conforme"},
        headers=receptor.headers,
    )
    assert accepted.status_code == 201, accepted.text
    schema = shared_sii / "schemas" / "respuesta-envio" / "RespuestaEnvioDTE_v10.xsd"
    root = _check_signed(accepted.content, schema, tmp_path, cert_pem, ["Resultado"])
    assert root.findtext(f".//{SII}ResultadoDTE/{SII}EstadoDTE") == "0"
    assert (
        api.get(f"/v1/received/{doc_id}", headers=receptor.headers).json()["status"] == "accepted"
    )
    assert api.get("/v1/received?status=accepted", headers=receptor.headers).json()["total"] == 1

    recibo = api.post(
        f"/v1/received/{doc_id}/recibo",
        json={"recinto": "Bodega central"},
        headers=receptor.headers,
    )
    assert recibo.status_code == 201, recibo.text
    schema = shared_sii / "schemas" / "recibos" / "EnvioRecibos_v10.xsd"
    root = _check_signed(
        recibo.content, schema, tmp_path, cert_pem, ["DocumentoRecibo", "SetRecibos"]
    )
    assert "Ley 19.983" in (root.findtext(f".//{SII}Declaracion") or "")
    assert root.findtext(f".//{SII}Recinto") == "Bodega central"


def test_a_forged_document_can_only_be_rejected(
    api: TestClient, receptor: Tenant, shared_sii: Path
) -> None:
    _with_certificate(api, receptor)
    forged = (
        shared_sii
        / "samples"
        / "sii-dte"
        / "DTE--76354771-K--33--170--cleaned-mod-changed-monto.xml"
    ).read_bytes()
    (doc,) = _upload(api, receptor, forged).json()["documents"]
    assert not doc["authentic"]
    for estado in ("accepted", "accepted_with_discrepancies"):
        response = api.post(
            f"/v1/received/{doc['id']}/resultado", json={"estado": estado}, headers=receptor.headers
        )
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "document_not_authentic"
    recibo = api.post(
        f"/v1/received/{doc['id']}/recibo", json={"recinto": "x"}, headers=receptor.headers
    )
    assert recibo.status_code == 409
    rejected = api.post(
        f"/v1/received/{doc['id']}/resultado",
        json={"estado": "rejected", "glosa": "Timbre invalido", "cod_rch_dsc": -3},
        headers=receptor.headers,
    )
    assert rejected.status_code == 201, rejected.text
    root = parse_untrusted(rejected.content)
    assert (
        root.findtext(f".//{SII}EstadoDTE") == "2" and root.findtext(f".//{SII}CodRchDsc") == "-3"
    )
    bad = api.post(
        f"/v1/received/{doc['id']}/resultado",
        json={"estado": "rejected", "cod_rch_dsc": 4},
        headers=receptor.headers,
    )
    assert bad.status_code == 422
