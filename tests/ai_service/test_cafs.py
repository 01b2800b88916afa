"""POST/GET /v1/cafs: verified, bound to the caller's RUT, registered, encrypted at rest."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from ai_service.secrets import SecretBox
from dte_core.storage import caf_ranges
from dte_core.testkit.caf import generate_sii_test_key
from tests.ai_service.conftest import RUT_A, SECRET_KEY, Tenant, create_tenant, upload_caf

MakeCaf = Callable[..., bytes]
REAL_SII_CAF = "CAF-cert-IDK100-FoliosSII7623529139120254111157-RSASK-REDACTED.xml"


def test_upload_registers_the_range(
    client: TestClient, tenant_a: Tenant, make_caf: MakeCaf
) -> None:
    response = upload_caf(client, tenant_a, make_caf(tipo=33, desde=1, hasta=50))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["rut_emisor"] == RUT_A
    assert (body["tipo_dte"], body["folio_desde"], body["folio_hasta"]) == (33, 1, 50)
    assert body["remaining"] == 50
    assert body["next_folio"] == 1
    assert body["verified_by"].startswith("trusted")
    assert body["expires_on"] is not None  # facturas: the SII's six months

    listed = client.get("/v1/cafs", headers=tenant_a.headers)
    assert listed.status_code == 200
    assert [(c["id"], c["remaining"]) for c in listed.json()] == [(body["id"], 50)]


def test_second_caf_adds_to_remaining_and_same_file_is_idempotent(
    client: TestClient, tenant_a: Tenant, make_caf: MakeCaf
) -> None:
    first = make_caf(desde=1, hasta=50)
    assert upload_caf(client, tenant_a, first).status_code == 201
    second = upload_caf(client, tenant_a, make_caf(desde=51, hasta=60))
    assert second.status_code == 201
    assert second.json()["remaining"] == 60
    again = upload_caf(client, tenant_a, first)
    assert again.status_code == 200
    assert len(client.get("/v1/cafs", headers=tenant_a.headers).json()) == 2


def test_overlapping_caf_is_a_conflict(
    client: TestClient, tenant_a: Tenant, make_caf: MakeCaf
) -> None:
    assert upload_caf(client, tenant_a, make_caf(desde=1, hasta=50)).status_code == 201
    response = upload_caf(client, tenant_a, make_caf(desde=40, hasta=80))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "caf_overlap"


def test_caf_signed_by_an_untrusted_key_is_refused(
    client: TestClient, tenant_a: Tenant, make_caf: MakeCaf, migrated_engine: Engine
) -> None:
    forged = make_caf(key=generate_sii_test_key())
    response = upload_caf(client, tenant_a, forged)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "caf_signature_invalid"
    with migrated_engine.connect() as conn:
        assert conn.execute(select(caf_ranges.c.id)).all() == []


def test_altered_caf_is_refused(client: TestClient, tenant_a: Tenant, make_caf: MakeCaf) -> None:
    altered = make_caf(desde=1, hasta=50).replace(b"<H>50</H>", b"<H>5000</H>")
    response = upload_caf(client, tenant_a, altered)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "caf_signature_invalid"


def test_caf_of_another_rut_is_refused(
    client: TestClient, tenant_a: Tenant, make_caf: MakeCaf
) -> None:
    response = upload_caf(client, tenant_a, make_caf(rut="77777777-7"))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "caf_wrong_emisor"
    assert error["fields"][0]["field"] == "CAF.DA.RE"


def test_expired_caf_is_refused(client: TestClient, tenant_a: Tenant, make_caf: MakeCaf) -> None:
    old = make_caf(fecha=date.today() - timedelta(days=400))
    response = upload_caf(client, tenant_a, old)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "caf_expired"


def test_real_sii_caf_verifies_with_the_bundled_keys_but_needs_its_private_key(
    client: TestClient, shared_sii: Path
) -> None:
    tenant = create_tenant(client, "76235291-5")
    response = upload_caf(client, tenant, (shared_sii / "caf" / REAL_SII_CAF).read_bytes())
    assert response.status_code == 422
    error = response.json()["error"]
    # reaching this check means FRMA verified with SiiKeyring.default() (IDK 100)
    assert error["code"] == "caf_no_private_key"


def test_unreadable_and_hostile_xml(client: TestClient, tenant_a: Tenant, shared_sii: Path) -> None:
    garbage = upload_caf(client, tenant_a, b"not xml at all")
    assert garbage.status_code == 422
    assert garbage.json()["error"]["code"] == "caf_unreadable"
    attack = (shared_sii / "samples" / "xml-attacks" / "billion-laughs-1.xml").read_bytes()
    hostile = upload_caf(client, tenant_a, attack)
    assert hostile.status_code == 400
    assert hostile.json()["error"]["code"] == "hostile_xml"


def test_caf_private_key_is_encrypted_at_rest(
    client: TestClient, tenant_a: Tenant, make_caf: MakeCaf, migrated_engine: Engine
) -> None:
    xml = make_caf()
    assert b"RSASK" in xml
    assert upload_caf(client, tenant_a, xml).status_code == 201
    with migrated_engine.connect() as conn:
        stored = conn.execute(select(caf_ranges.c.caf_xml)).scalar_one()
    assert b"RSASK" not in stored
    assert b"PRIVATE KEY" not in stored
    assert SecretBox(SECRET_KEY.encode()).decrypt(stored) == xml


def test_a_company_never_sees_or_registers_for_another(
    client: TestClient, tenant_a: Tenant, tenant_b: Tenant, make_caf: MakeCaf
) -> None:
    a_caf = make_caf(rut=tenant_a.rut)
    assert upload_caf(client, tenant_a, a_caf).status_code == 201
    assert client.get("/v1/cafs", headers=tenant_b.headers).json() == []
    stolen = upload_caf(client, tenant_b, a_caf)
    assert stolen.status_code == 422
    assert stolen.json()["error"]["code"] == "caf_wrong_emisor"
    assert len(client.get("/v1/cafs", headers=tenant_a.headers).json()) == 1
