"""The embeddings index over HTTP: built from the company's booked invoices, queried with the
bundled model, and never answering with another company's vectors."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.ai_service.conftest import Tenant

INVOICE = {
    "emisor_rut": "96790240-3",
    "emisor_name": "Ferretería Los Andes",
    "tipo_dte": 33,
    "fecha": "2026-11-03",
    "neto": 100000,
    "iva": 19000,
    "total": 119000,
}


def _context(rut: str, items: list[str], account: str) -> dict[str, Any]:
    invoices, decisions = [], []
    for folio, item in enumerate(items, start=1):
        invoices.append(
            {
                **INVOICE,
                "receptor_rut": rut,
                "folio": folio,
                "lines": [{"line_no": 1, "name": item, "amount": 100000}],
            }
        )
        decisions.append(
            {
                "invoice_key": f"96790240-3:33:{folio}",
                "decided_at": "2026-11-04T10:00:00",
                "account_code": account,
            }
        )
    return {
        "accounts": [{"code": account, "name": "Gastos"}],
        "invoices": invoices,
        "decisions": decisions,
    }


@pytest.mark.slow
def test_similar_documents_come_from_the_company_only(
    client: TestClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    a_items = ["Cemento Portland 25 kg", "Fierro estriado 12 mm", "Arriendo de grúa horquilla"]
    b_items = ["Cemento especial secreto B", "Servicio de catering B"]
    client.put(
        "/v1/context", json=_context(tenant_a.rut, a_items, "5101"), headers=tenant_a.headers
    )
    client.put(
        "/v1/context", json=_context(tenant_b.rut, b_items, "6101"), headers=tenant_b.headers
    )
    built = client.post("/v1/index/rebuild", headers=tenant_a.headers)
    assert built.status_code == 200, built.text
    assert built.json()["documents"] == 3
    assert client.post("/v1/index/rebuild", headers=tenant_b.headers).json()["documents"] == 2
    found = client.get(
        "/v1/index/similar", params={"text": "cem. portland saco 25kg"}, headers=tenant_a.headers
    )
    assert found.status_code == 200, found.text
    matches = found.json()
    assert matches[0]["text"].endswith("Cemento Portland 25 kg")
    assert matches[0]["metadata"]["account_code"] == "5101"
    assert 0 < matches[0]["embedding_score"] <= 1 and matches[0]["lexical_score"] > 0
    # B's "cemento" is a better lexical match for this query, yet A never sees it
    probe = client.get(
        "/v1/index/similar",
        params={"text": "cemento especial secreto", "k": 50},
        headers=tenant_a.headers,
    ).json()
    assert probe and all("secreto" not in m["text"] for m in probe)
    assert all(m["metadata"]["account_code"] == "5101" for m in probe)
    empty = client.get("/v1/index/similar", params={"text": ""}, headers=tenant_a.headers)
    assert empty.status_code == 422
