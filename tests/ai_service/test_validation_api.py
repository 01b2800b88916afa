"""POST /v1/validate with the company's real CAFs, folios and issued documents."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.ai_service.conftest import Tenant
from tests.ai_service.test_dte import _doc, _ready, issue


def _rules(body: dict[str, Any]) -> set[str]:
    return {f["rule_id"] for f in body["findings"]}


def test_a_good_document_is_ok(client: TestClient, tenant_a: Tenant, make_caf: Any) -> None:
    _ready(client, tenant_a, make_caf)
    response = client.post("/v1/validate", json=_doc(tenant_a), headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision"] == "ok", body["findings"]
    assert body["engine"] == "local"
    assert body["rules_run"] >= 30


def test_without_a_caf_issuing_is_blocked(client: TestClient, tenant_a: Tenant) -> None:
    body = client.post("/v1/validate", json=_doc(tenant_a), headers=tenant_a.headers).json()
    assert body["decision"] == "blocked"
    assert "CAF_MISSING" in _rules(body)


def test_history_catches_credit_beyond_the_original(
    client: TestClient, tenant_a: Tenant, make_caf: Any
) -> None:
    _ready(client, tenant_a, make_caf)
    factura = issue(client, tenant_a, _doc(tenant_a)).json()  # folio 1, total 119 000
    nota = _doc(tenant_a, 61)
    nota["Referencia"][0].update({"FolioRef": str(factura["folio"]), "CodRef": 3})
    nota["Detalle"] = [{"NmbItem": "Descuento", "QtyItem": 1, "PrcItem": 90000}]
    assert issue(client, tenant_a, nota).status_code == 201  # credits 107 100
    again = client.post("/v1/validate", json=nota, headers=tenant_a.headers).json()
    assert "CREDIT_EXCEEDS_BALANCE" in _rules(again)
    unknown = _doc(tenant_a, 61)
    unknown["Referencia"][0]["FolioRef"] = "999"
    assert "REF_FOLIO_UNKNOWN" in _rules(
        client.post("/v1/validate", json=unknown, headers=tenant_a.headers).json()
    )


def test_all_findings_come_at_once_with_fixes(client: TestClient, tenant_a: Tenant) -> None:
    doc = _doc(tenant_a)
    doc["Encabezado"]["Receptor"]["RUTRecep"] = "77777777-8"
    doc["Encabezado"]["Receptor"]["CmnaRecep"] = "Santiagoo"
    doc["Encabezado"]["Totales"] = {"MntNeto": 100000, "IVA": 19001, "MntTotal": 119001}
    body = client.post("/v1/validate?explain=true", json=doc, headers=tenant_a.headers).json()
    rules = _rules(body)
    assert {"RUT_RECEPTOR_INVALID", "COMUNA_UNKNOWN", "IVA_ARITHMETIC"} <= rules
    assert all(f["field"] and f["message"] for f in body["findings"])
    assert body["explanation"]["engine"].startswith("local")
    assert body["explanation"]["fixes"]


def test_another_companys_history_is_not_used(
    client: TestClient, tenant_a: Tenant, tenant_b: Tenant, make_caf: Any
) -> None:
    _ready(client, tenant_a, make_caf)
    issue(client, tenant_a, _doc(tenant_a))
    nota = _doc(tenant_b, 61)
    nota["Referencia"][0]["FolioRef"] = "1"  # A's folio 1 exists; B has none
    body = client.post("/v1/validate", json=nota, headers=tenant_b.headers).json()
    assert "REF_FOLIO_UNKNOWN" in _rules(body)
