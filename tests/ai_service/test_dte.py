"""POST /v1/dte end to end, GET it back, and the isolation between companies."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import Engine, select

from ai_service.db.tables import documents
from dte_core.storage import folio_allocations
from dte_core.testkit.caf import public_key_pem
from dte_core.testkit.pki import make_company_p12
from tests.ai_service.cli.independent import check_ted, xmllint_valid, xmlsec1_verify
from tests.ai_service.conftest import Tenant, upload_caf
from tests.issuing_kit import factura

SII = "{http://www.sii.cl/SiiDte}"
PASSWORD = b"s3cret-demo"
MakeCaf = Callable[..., bytes]


@lru_cache(maxsize=1)
def _p12() -> bytes:
    return make_company_p12(rut="13185095-6", name="Firmante Demo", password=PASSWORD)


def _load_certificate(client: TestClient, tenant: Tenant) -> None:
    response = client.post(
        "/v1/certificates",
        files={"file": ("firma.p12", _p12(), "application/x-pkcs12")},
        data={"password": PASSWORD.decode()},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text


def _ready(client: TestClient, tenant: Tenant, make_caf: MakeCaf, **caf: Any) -> Tenant:
    for tipo in (33, 61):
        response = upload_caf(client, tenant, make_caf(rut=tenant.rut, tipo=tipo, **caf))
        assert response.status_code == 201, response.text
    _load_certificate(client, tenant)
    return tenant


def _doc(tenant: Tenant, tipo: int = 33) -> dict[str, Any]:
    doc = factura(tipo)
    doc["Encabezado"]["Emisor"]["RUTEmisor"] = tenant.rut
    return doc


def issue(client: TestClient, tenant: Tenant, doc: dict[str, Any]) -> Any:
    return client.post("/v1/dte", json=doc, headers=tenant.headers)


@pytest.fixture
def ready_a(client: TestClient, tenant_a: Tenant, make_caf: MakeCaf) -> Tenant:
    return _ready(client, tenant_a, make_caf)


def test_issue_persists_and_returns_a_signed_document(
    client: TestClient,
    ready_a: Tenant,
    migrated_engine: Engine,
    tmp_path: Path,
    shared_sii: Path,
    sii_key: Any,
) -> None:
    response = issue(client, ready_a, _doc(ready_a))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["tipo_dte"], body["folio"], body["status"]) == (33, 1, "signed")
    assert body["rut_emisor"] == ready_a.rut
    assert body["monto_total"] == 119000
    assert body["totales"]["MntNeto"] == 100000
    assert body["totales"]["IVA"] == 19000
    assert response.headers["location"] == f"/v1/dte/{body['id']}"

    with migrated_engine.connect() as conn:
        row = conn.execute(select(documents).where(documents.c.id == body["id"])).one()
        allocation = conn.execute(select(folio_allocations)).one()
    assert (row.company_id, row.folio, row.status) == (ready_a.id, 1, "signed")
    assert (allocation.status, allocation.document_ref) == ("issued", body["id"])

    meta = client.get(f"/v1/dte/{body['id']}", headers=ready_a.headers)
    assert meta.status_code == 200
    assert {k: meta.json()[k] for k in ("id", "folio", "monto_total", "status")} == {
        k: body[k] for k in ("id", "folio", "monto_total", "status")
    }

    xml = client.get(f"/v1/dte/{body['id']}/xml", headers=ready_a.headers)
    assert xml.status_code == 200
    assert xml.headers["content-type"] == "application/xml; charset=ISO-8859-1"
    assert xml.content == bytes(row.xml)
    assert "Ñandú".encode("iso-8859-1") in xml.content
    same = client.get(f"/v1/dte/{body['id']}?format=xml", headers=ready_a.headers)
    assert same.content == xml.content

    # checked by tools that share nothing with dte_core
    path = tmp_path / f"DTE--{ready_a.rut}--33--1.xml"
    path.write_bytes(xml.content)
    ok, err = xmllint_valid(path, shared_sii / "schemas/dte/DTE_v10.xsd")
    assert ok, err
    _, cert, _ = pkcs12.load_key_and_certificates(_p12(), PASSWORD)
    assert cert is not None
    cert_pem = tmp_path / "cert.pem"
    cert_pem.write_bytes(cert.public_bytes(Encoding.PEM))
    ok, err = xmlsec1_verify(path, cert_pem, 1)
    assert ok, err
    documento = etree.fromstring(xml.content).find(f"{SII}Documento")
    assert documento is not None
    assert check_ted(documento, public_key_pem(sii_key)) == []

    second = issue(client, ready_a, _doc(ready_a))
    assert second.json()["folio"] == 2
    metrics = client.get("/metrics").text
    assert 'dte_ai_documents_issued_total{tipo_dte="33"} 2.0' in metrics


def test_invalid_document_names_fields_and_consumes_no_folio(
    client: TestClient, ready_a: Tenant, migrated_engine: Engine
) -> None:
    bad = _doc(ready_a)
    bad["Encabezado"]["Receptor"]["RUTRecep"] = "77777777-8"
    bad["Detalle"][1]["QtyItem"] = "muchos"
    response = issue(client, ready_a, bad)
    assert response.status_code == 422
    error = response.json()["error"]
    fields = {f["field"] for f in error["fields"]}
    assert any("RUTRecep" in f for f in fields), fields
    assert any("QtyItem" in f for f in fields), fields
    with migrated_engine.connect() as conn:
        assert conn.execute(select(folio_allocations)).all() == []
        assert conn.execute(select(documents)).all() == []
    assert issue(client, ready_a, _doc(ready_a)).json()["folio"] == 1


def test_missing_material_is_reported(
    client: TestClient, tenant_a: Tenant, make_caf: MakeCaf
) -> None:
    response = issue(client, tenant_a, _doc(tenant_a))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "no_certificate"
    _load_certificate(client, tenant_a)
    response = issue(client, tenant_a, _doc(tenant_a))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "no_caf"


def test_folios_run_low_then_out(client: TestClient, tenant_a: Tenant, make_caf: MakeCaf) -> None:
    _ready(client, tenant_a, make_caf, hasta=3)  # low-water mark is 1 in these settings
    first = issue(client, tenant_a, _doc(tenant_a)).json()
    assert first["folio_warning"] is None
    second = issue(client, tenant_a, _doc(tenant_a)).json()
    assert "request a new CAF" in second["folio_warning"]
    assert issue(client, tenant_a, _doc(tenant_a)).json()["folio"] == 3
    exhausted = issue(client, tenant_a, _doc(tenant_a))
    assert exhausted.status_code == 409
    assert exhausted.json()["error"]["code"] == "folios_exhausted"
    assert client.get("/v1/cafs", headers=tenant_a.headers).json()[0]["remaining"] == 0


def test_companies_are_isolated(
    client: TestClient, ready_a: Tenant, tenant_b: Tenant, make_caf: MakeCaf
) -> None:
    doc_id = issue(client, ready_a, _doc(ready_a)).json()["id"]
    # B cannot read A's document, and cannot even learn that the id exists
    for path in (f"/v1/dte/{doc_id}", f"/v1/dte/{doc_id}/xml", f"/v1/dte/{doc_id}?format=xml"):
        response = client.get(path, headers=tenant_b.headers)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "document_not_found"
    unknown = client.get("/v1/dte/00000000-0000-0000-0000-000000000000", headers=tenant_b.headers)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "document_not_found")
    # B cannot list A's CAFs
    assert client.get("/v1/cafs", headers=tenant_b.headers).json() == []
    # B cannot issue with A's CAF: A's RUT is not B's
    _load_certificate(client, tenant_b)
    as_a = issue(client, tenant_b, _doc(ready_a))
    assert as_a.status_code == 422
    assert as_a.json()["error"]["code"] == "emisor_mismatch"
    as_b = issue(client, tenant_b, _doc(tenant_b))
    assert as_b.status_code == 422
    assert as_b.json()["error"]["code"] == "no_caf"
    # and A's folios were untouched by all of it
    assert issue(client, ready_a, _doc(ready_a)).json()["folio"] == 2
