"""Company context over HTTP and the CLI: idempotent upserts, validation, company isolation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ai_service.cli import app
from ai_service.repositories import context as repo
from ai_service.repositories.companies import company_by_rut
from ai_service.services.engines import EngineCache
from tests.ai_service.conftest import SECRET_KEY, Tenant

CONTEXT: dict[str, Any] = {
    "accounts": [
        {"code": "5101", "name": "Materiales de construcción"},
        {"code": "5205", "name": "Arriendo de maquinaria"},
    ],
    "projects": [
        {
            "code": "OB-12",
            "name": "Edificio Los Aromos",
            "address": "Los Aromos 1234",
            "comuna": "Ñuñoa",
        }
    ],
    "suppliers": [{"rut": "96.790.240-3", "name": "Sodimac S.A.", "giro": "Ferretería"}],
    "policy": {"approval_threshold": 2_000_000},
}
INVOICE = {
    "emisor_rut": "96790240-3",
    "emisor_name": "Sodimac S.A.",
    "receptor_rut": "76086428-5",
    "tipo_dte": 33,
    "folio": 4512,
    "fecha": "2026-11-03",
    "neto": 100000,
    "iva": 19000,
    "total": 119000,
    "lines": [
        {
            "line_no": 1,
            "name": "CEMENTO PORTLAND 25KG",
            "quantity": 20,
            "unit_price": 5000,
            "amount": 100000,
        }
    ],
}


def _decision(account: str) -> dict[str, Any]:
    return {
        "invoice_key": "96790240-3:33:4512",
        "decided_at": "2026-11-04T10:00:00",
        "account_code": account,
        "project_code": "OB-12",
    }


def test_upsert_is_idempotent_and_versioned(client: TestClient, tenant_a: Tenant) -> None:
    first = client.put("/v1/context", json=CONTEXT, headers=tenant_a.headers)
    assert first.status_code == 200, first.text
    assert first.json() == {"inserted": 5, "updated": 0, "unchanged": 0, "version": 1}
    again = client.put("/v1/context", json=CONTEXT, headers=tenant_a.headers).json()
    assert again == {"inserted": 0, "updated": 0, "unchanged": 5, "version": 1}
    changed = {"accounts": [{"code": "5101", "name": "Materiales"}]}
    assert client.put("/v1/context", json=changed, headers=tenant_a.headers).json() == {
        "inserted": 0,
        "updated": 1,
        "unchanged": 0,
        "version": 2,
    }
    summary = client.get("/v1/context", headers=tenant_a.headers).json()
    assert summary["version"] == 2
    assert summary["counts"]["accounts"] == 2 and summary["counts"]["suppliers"] == 1


def test_invalid_items_are_all_reported_and_nothing_is_written(
    client: TestClient, tenant_a: Tenant
) -> None:
    bad = {
        "accounts": [{"code": "5101"}],
        "suppliers": [{"rut": "96790240-4", "name": "X"}],
        "projects": CONTEXT["projects"],
    }
    response = client.put("/v1/context", json=bad, headers=tenant_a.headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_context"
    fields = {f["field"] for f in error["fields"]}
    assert "accounts[0].name" in fields
    assert client.get("/v1/context", headers=tenant_a.headers).json()["counts"]["projects"] == 0


def test_unknown_section_is_refused(client: TestClient, tenant_a: Tenant) -> None:
    response = client.put("/v1/context", json={"acounts": []}, headers=tenant_a.headers)
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "acounts"


def test_a_correction_reaches_the_cached_context_at_once(
    client: TestClient, tenant_a: Tenant, migrated_engine: Any
) -> None:
    client.put("/v1/context", json=CONTEXT, headers=tenant_a.headers)
    body = {"invoices": [INVOICE], "decisions": [_decision("5205")]}
    assert client.post("/v1/learn", json=body, headers=tenant_a.headers).status_code == 200
    cache = EngineCache(migrated_engine)
    company = company_by_rut(migrated_engine, tenant_a.rut)
    assert company is not None
    assert cache.get(company).context.decisions[0].account_code == "5205"
    client.post("/v1/learn", json={"decisions": [_decision("5101")]}, headers=tenant_a.headers)
    assert cache.get(company).context.decisions[0].account_code == "5101"


def test_companies_never_see_each_others_context(
    client: TestClient, tenant_a: Tenant, tenant_b: Tenant, migrated_engine: Any
) -> None:
    client.put("/v1/context", json=CONTEXT, headers=tenant_a.headers)
    assert client.get("/v1/context", headers=tenant_b.headers).json()["counts"]["accounts"] == 0
    # the same natural key in B is B's own item, not an overwrite of A's
    client.put(
        "/v1/context", json={"accounts": [{"code": "5101", "name": "B"}]}, headers=tenant_b.headers
    )
    company_a = company_by_rut(migrated_engine, tenant_a.rut)
    assert company_a is not None
    loaded = repo.load(migrated_engine, company_a.id, company_a.rut, company_a.name)
    assert {a.name for a in loaded.accounts} == {
        "Materiales de construcción",
        "Arriendo de maquinaria",
    }
    # and B cannot delete A's item through the natural key
    gone = client.delete("/v1/context/projects/OB-12", headers=tenant_b.headers)
    assert gone.status_code == 404
    assert client.get("/v1/context", headers=tenant_a.headers).json()["counts"]["projects"] == 1


def test_cli_load_and_learn(
    tmp_path: Path,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    client: TestClient,
    tenant_a: Tenant,
) -> None:
    monkeypatch.setenv("DTE_AI_DATABASE_URL", db_url)
    monkeypatch.setenv("DTE_AI_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("DTE_AI_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    ctx_file = tmp_path / "context.json"
    ctx_file.write_text(json.dumps(CONTEXT), encoding="utf-8")
    result = runner.invoke(app, ["context", "load", str(ctx_file), "--company", tenant_a.rut])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["inserted"] == 5
    decisions = tmp_path / "decisions.jsonl"
    decisions.write_text(json.dumps({"invoice": INVOICE, "decision": _decision("5101")}) + "\n")
    result = runner.invoke(app, ["learn", str(decisions), "--company", tenant_a.rut])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["inserted"] == 2
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"decision": {"invoice_key": "x"}}\n')
    result = runner.invoke(app, ["learn", str(broken), "--company", tenant_a.rut])
    assert result.exit_code == 2
    assert json.loads(result.stderr)["error"]["code"] == "invalid_context"
    missing = runner.invoke(app, ["context", "load", str(ctx_file), "--company", "11111111-1"])
    assert missing.exit_code == 2
    assert json.loads(missing.stderr)["error"]["code"] == "company_not_found"
