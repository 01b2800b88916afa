"""The HTTP skeleton: error shape, health, metrics, size limit, admin and API-key auth."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, select

from ai_service.db.tables import api_keys, companies
from ai_service.main import create_app
from ai_service.settings import Settings
from tests.ai_service.conftest import ADMIN, ADMIN_TOKEN, RUT_A, SECRET_KEY, Tenant, create_tenant


def _error(response: object, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


def test_health_pings_the_database(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_health_reports_an_unreachable_database(tmp_path: Path) -> None:
    broken = create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    settings = Settings(data_dir=tmp_path, secret_key=SecretStr(SECRET_KEY))
    with TestClient(create_app(settings, engine=broken)) as client:
        _error(client.get("/healthz"), 503, "database_unavailable")


def test_unknown_route_and_wrong_method_use_the_error_shape(client: TestClient) -> None:
    _error(client.get("/v1/nothing-here"), 404, "not_found")
    response = client.delete("/healthz")
    _error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET"


def test_validation_errors_name_each_field(client: TestClient) -> None:
    response = client.post("/v1/companies", json={"rut": "76086428-4", "name": ""}, headers=ADMIN)
    error = _error(response, 422, "invalid_request")
    fields = {f["field"]: f for f in error["fields"]}  # type: ignore[attr-defined]
    assert set(fields) == {"rut", "name"}
    assert "76086428-5" in fields["rut"]["message"]  # says how to fix it
    assert fields["name"]["code"] == "string_too_short"


def test_malformed_json_is_an_invalid_request(client: TestClient) -> None:
    response = client.post(
        "/v1/companies",
        content=b'{"rut": ',
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    _error(response, 422, "invalid_request")


def test_admin_creates_companies_and_keys(client: TestClient, migrated_engine: Engine) -> None:
    response = client.post(
        "/v1/companies", json={"rut": "76.086.428-5", "name": " Empresa Demo "}, headers=ADMIN
    )
    assert response.status_code == 201
    body = response.json()
    assert body["rut"] == RUT_A  # canonical
    assert body["name"] == "Empresa Demo"
    key = body["api_key"]
    assert key["prefix"] == key["key"][:8]
    second = client.post(f"/v1/companies/{body['id']}/api-keys", headers=ADMIN)
    assert second.status_code == 201
    assert second.json()["key"] != key["key"]
    # only an HMAC of each key is stored, never the key
    with migrated_engine.connect() as conn:
        stored = conn.execute(select(api_keys.c.key_hash, api_keys.c.prefix)).all()
    assert len(stored) == 2
    for row in stored:
        assert key["key"] not in row.key_hash
        assert second.json()["key"] not in row.key_hash
    for k in (key["key"], second.json()["key"]):
        assert client.get("/v1/cafs", headers={"X-API-Key": k}).status_code == 200


def test_duplicate_rut_is_a_conflict(client: TestClient, tenant_a: Tenant) -> None:
    response = client.post(
        "/v1/companies", json={"rut": "76086428-5", "name": "again"}, headers=ADMIN
    )
    error = _error(response, 409, "company_exists")
    assert error["fields"][0]["field"] == "rut"  # type: ignore[index]


def test_api_key_for_unknown_company_is_404(client: TestClient) -> None:
    _error(client.post("/v1/companies/nope/api-keys", headers=ADMIN), 404, "company_not_found")


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "unauthorized"),
        ({"X-Admin-Token": "wrong"}, 401, "invalid_admin_token"),
        ({"Authorization": "Bearer wrong"}, 401, "invalid_admin_token"),
    ],
)
def test_admin_endpoints_need_the_admin_token(
    client: TestClient, headers: dict[str, str], status: int, code: str
) -> None:
    response = client.post("/v1/companies", json={"rut": RUT_A, "name": "x"}, headers=headers)
    _error(response, status, code)


def test_admin_bearer_token_is_accepted(client: TestClient) -> None:
    response = client.post(
        "/v1/companies",
        json={"rut": RUT_A, "name": "x"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 201


def test_a_company_key_is_not_an_admin_token(client: TestClient, tenant_a: Tenant) -> None:
    response = client.post(
        "/v1/companies", json={"rut": "77777777-7", "name": "x"}, headers=tenant_a.headers
    )
    _error(response, 401, "invalid_admin_token")


def test_admin_endpoints_are_disabled_without_an_admin_token(
    settings: Settings, migrated_engine: Engine
) -> None:
    app = create_app(settings.model_copy(update={"admin_token": None}), engine=migrated_engine)
    with TestClient(app) as client:
        response = client.post("/v1/companies", json={"rut": RUT_A, "name": "x"}, headers=ADMIN)
        _error(response, 403, "admin_disabled")
        with migrated_engine.connect() as conn:
            assert conn.execute(select(companies)).all() == []


def test_missing_and_wrong_api_keys_are_401(client: TestClient, tenant_a: Tenant) -> None:
    response = client.get("/v1/cafs")
    _error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    _error(client.get("/v1/cafs", headers={"X-API-Key": "dtk_wrong"}), 401, "invalid_api_key")
    tampered = tenant_a.key[:-1] + ("A" if tenant_a.key[-1] != "A" else "B")
    _error(client.get("/v1/cafs", headers={"X-API-Key": tampered}), 401, "invalid_api_key")


def test_revoked_key_stops_working(client: TestClient) -> None:
    tenant = create_tenant(client, RUT_A)
    extra = client.post(f"/v1/companies/{tenant.id}/api-keys", headers=ADMIN).json()
    response = client.delete(f"/v1/companies/{tenant.id}/api-keys/{extra['id']}", headers=ADMIN)
    assert response.status_code == 204
    _error(client.get("/v1/cafs", headers={"X-API-Key": extra["key"]}), 401, "invalid_api_key")
    assert client.get("/v1/cafs", headers=tenant.headers).status_code == 200
    again = client.delete(f"/v1/companies/{tenant.id}/api-keys/{extra['id']}", headers=ADMIN)
    _error(again, 404, "not_found")


def test_request_over_the_size_limit_is_413(settings: Settings, migrated_engine: Engine) -> None:
    small = settings.model_copy(update={"max_request_bytes": 1000})
    with TestClient(create_app(small, engine=migrated_engine)) as client:
        tenant = create_tenant(client, RUT_A)
        declared = client.post("/v1/cafs", content=b"x" * 1001, headers=tenant.headers)
        _error(declared, 413, "request_too_large")

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
            for _ in range(5):
                yield b"x" * 300

        streamed = client.post(
            "/v1/cafs",
            content=chunks(),
            headers={**tenant.headers, "Content-Type": "application/xml"},
        )
        _error(streamed, 413, "request_too_large")
        metrics = client.get("/metrics").text
    assert 'route="/v1/cafs",status="413"' in metrics


def test_metrics_count_requests_by_route_template(client: TestClient, tenant_a: Tenant) -> None:
    for doc in ("a", "b", "c"):
        client.get(f"/v1/dte/{doc}", headers=tenant_a.headers)
    client.get("/v1/unknown/path")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    line = 'dte_ai_http_requests_total{method="GET",route="/v1/dte/{document_id}",status="404"} 3.0'
    assert line in text
    assert 'route="unmatched",status="404"' in text
    assert "/v1/dte/a" not in text  # raw paths never become labels
    count = 'dte_ai_http_request_duration_seconds_count{method="GET",route="/v1/dte/{document_id}"}'
    assert count in text
    assert "# TYPE dte_ai_documents_issued_total counter" in text


def test_openapi_documents_the_endpoints_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/healthz", "/v1/companies", "/v1/cafs", "/v1/certificates", "/v1/dte"):
        assert path in paths
    examples = paths["/v1/dte"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    factura = examples["factura"]["value"]
    assert set(factura) == {"Encabezado", "Detalle"}
    assert set(factura["Encabezado"]) == {"IdDoc", "Emisor", "Receptor"}
    assert {"NmbItem", "QtyItem", "PrcItem"} <= set(factura["Detalle"][0])
    assert "application/xml" in paths["/v1/cafs"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in paths["/v1/certificates"]["post"]["requestBody"]["content"]
    assert client.get("/docs").status_code == 200


def test_secrets_never_reach_the_logs(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = create_tenant(client, RUT_A)
    client.get("/v1/cafs", headers=tenant.headers)
    client.get("/v1/cafs", headers={"X-API-Key": tenant.key + "x"})
    logged = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert tenant.key not in logged
    assert ADMIN_TOKEN not in logged
