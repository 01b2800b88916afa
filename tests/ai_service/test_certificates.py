"""POST/GET /v1/certificates: opened to validate, encrypted at rest, one per company."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from ai_service.db.tables import company_certificates
from ai_service.secrets import SecretBox
from dte_core.testkit.pki import make_company_p12
from tests.ai_service.conftest import SECRET_KEY, Tenant

PASSWORD = "s3cret-demo-password"
SIGNER_RUT = "13185095-6"


@lru_cache(maxsize=4)
def _p12(valid_days: int = 365, rut: str = SIGNER_RUT) -> bytes:
    return make_company_p12(
        rut=rut, name="Firmante Demo", password=PASSWORD.encode(), valid_days=valid_days
    )


def upload(client: TestClient, tenant: Tenant, data: bytes, password: str = PASSWORD) -> Any:
    return client.post(
        "/v1/certificates",
        files={"file": ("firma.p12", data, "application/x-pkcs12")},
        data={"password": password},
        headers=tenant.headers,
    )


def test_upload_opens_the_certificate_and_shows_its_rut(
    client: TestClient, tenant_a: Tenant
) -> None:
    response = upload(client, tenant_a, _p12())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["rut"] == SIGNER_RUT
    assert "CN=Firmante Demo" in body["subject"]
    assert body["not_after"] > body["created_at"]
    assert PASSWORD not in response.text
    current = client.get("/v1/certificates", headers=tenant_a.headers)
    assert current.status_code == 200
    assert current.json() == body


@pytest.mark.parametrize(
    ("data", "password", "code"),
    [
        (None, "wrong-password", "invalid_certificate"),
        (b"not a pkcs12 file", PASSWORD, "invalid_certificate"),
        ("expired", PASSWORD, "certificate_expired"),
    ],
)
def test_unusable_certificates_are_refused_and_not_stored(
    client: TestClient, tenant_a: Tenant, data: Any, password: str, code: str
) -> None:
    payload = {None: _p12(), "expired": _p12(valid_days=-1)}.get(data, data)
    response = upload(client, tenant_a, payload, password)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code
    missing = client.get("/v1/certificates", headers=tenant_a.headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "certificate_not_found"


def test_missing_file_is_an_invalid_request(client: TestClient, tenant_a: Tenant) -> None:
    response = client.post(
        "/v1/certificates", data={"password": PASSWORD}, headers=tenant_a.headers
    )
    assert response.status_code == 422
    assert [f["field"] for f in response.json()["error"]["fields"]] == ["file"]


def test_certificate_and_password_are_encrypted_at_rest_and_replaced(
    client: TestClient, tenant_a: Tenant, migrated_engine: Engine
) -> None:
    assert upload(client, tenant_a, _p12()).status_code == 201
    replacement = _p12(rut="11111111-1")
    assert upload(client, tenant_a, replacement).status_code == 201
    with migrated_engine.connect() as conn:
        rows = conn.execute(select(company_certificates)).all()
    assert len(rows) == 1  # one active certificate per company
    row = rows[0]
    assert row.rut == "11111111-1"
    assert PASSWORD.encode() not in row.password
    assert replacement not in row.p12
    box = SecretBox(SECRET_KEY.encode())
    assert box.decrypt(row.p12) == replacement
    assert box.decrypt(row.password) == PASSWORD.encode()


def test_another_company_does_not_see_the_certificate(
    client: TestClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    assert upload(client, tenant_a, _p12()).status_code == 201
    assert client.get("/v1/certificates", headers=tenant_b.headers).status_code == 404


def test_password_and_certificate_never_reach_the_logs(
    client: TestClient, tenant_a: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    upload(client, tenant_a, _p12(), "wrong-password-that-must-not-be-logged")
    upload(client, tenant_a, _p12())
    logged = caplog.text
    assert PASSWORD not in logged
    assert "wrong-password-that-must-not-be-logged" not in logged
