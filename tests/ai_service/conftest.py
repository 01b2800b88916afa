"""Fixtures for the service: injected settings (never the developer's environment), an app on
each database, companies with API keys, and CAF material signed by a test SII key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from ai_service.main import create_app
from ai_service.settings import Settings, get_settings

ADMIN_TOKEN = "admin-token-used-only-by-the-test-suite"
SECRET_KEY = "secret-key-used-only-by-the-test-suite-0123456789"
RUT_A = "76086428-5"
RUT_B = "77777777-7"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No DTE_AI_* setting of the developer's shell may reach a test (the test-database URL
    DTE_AI_TEST_POSTGRES_URL is not a setting and stays)."""
    for name in Settings.model_fields:
        monkeypatch.delenv(f"DTE_AI_{name.upper()}", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def sii_key() -> Any:
    from dte_core.testkit.caf import generate_sii_test_key

    return generate_sii_test_key()


@pytest.fixture(scope="session")
def sii_key_pem(sii_key: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dte_core.testkit.caf import public_key_pem

    path = tmp_path_factory.mktemp("sii") / "sii-test-key.pem"
    path.write_bytes(public_key_pem(sii_key))
    return path


@pytest.fixture
def make_caf(sii_key: Any) -> Callable[..., bytes]:
    from dte_core.testkit.caf import make_caf_xml

    def make(
        rut: str = RUT_A,
        tipo: int = 33,
        desde: int = 1,
        hasta: int = 50,
        fecha: date | None = None,
        key: Any = None,
    ) -> bytes:
        return make_caf_xml(
            sii_key=key or sii_key,
            rut_emisor=rut,
            razon_social="EMPRESA DEMO SPA",
            tipo_dte=tipo,
            folio_desde=desde,
            folio_hasta=hasta,
            fecha_autorizacion=fecha or date.today(),
        )

    return make


@pytest.fixture
def settings(tmp_path: Path, db_url: str, sii_key_pem: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        secret_key=SecretStr(SECRET_KEY),
        admin_token=SecretStr(ADMIN_TOKEN),
        trusted_sii_keys=[sii_key_pem],
        folio_low_water_mark=1,
    )


@pytest.fixture
def client(settings: Settings, migrated_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=migrated_engine)) as test_client:
        yield test_client


ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


@dataclass(frozen=True)
class Tenant:
    id: str
    rut: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def create_tenant(client: TestClient, rut: str, name: str = "Empresa") -> Tenant:
    response = client.post("/v1/companies", json={"rut": rut, "name": name}, headers=ADMIN)
    assert response.status_code == 201, response.text
    body = response.json()
    return Tenant(id=body["id"], rut=body["rut"], key=body["api_key"]["key"])


@pytest.fixture
def tenant_a(client: TestClient) -> Tenant:
    return create_tenant(client, RUT_A, "Empresa Demo SpA")


@pytest.fixture
def tenant_b(client: TestClient) -> Tenant:
    return create_tenant(client, RUT_B, "Otra Empresa Ltda")


def upload_caf(client: TestClient, tenant: Tenant, xml: bytes) -> Any:
    return client.post(
        "/v1/cafs",
        content=xml,
        headers={**tenant.headers, "Content-Type": "application/xml"},
    )
