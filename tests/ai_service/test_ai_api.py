"""The AI endpoints on a generated company the engines never saw: quality floors through the
API, learning from a correction, XML input, and company scoping."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ai_service.synth.dte_xml import to_dte_xml
from ai_service.synth.generator import generate_company
from ai_service.synth.labels import SyntheticInvoice
from tests.ai_service.conftest import Tenant, create_tenant

SEED = 90210  # not a seed any engine was tuned on


@lru_cache(maxsize=1)
def _company() -> tuple[dict[str, Any], list[SyntheticInvoice], str]:
    company = generate_company("construction", SEED, n_invoices=260)
    context, future = company.split(0.7)
    data = context.model_dump(mode="json")
    body = {
        k: data[k]
        for k in (
            "accounts",
            "projects",
            "suppliers",
            "purchase_orders",
            "receipts",
            "invoices",
            "decisions",
        )
    }
    body["policy"] = data["policy"]
    return body, future, str(context.company_rut)


@pytest.fixture
def company(client: TestClient) -> Tenant:
    body, _, rut = _company()
    tenant = create_tenant(client, rut, "Constructora Generada")
    response = client.put("/v1/context", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return tenant


def _invoice_json(doc: SyntheticInvoice) -> dict[str, Any]:
    return {"invoice": doc.invoice.model_dump(mode="json")}


def test_analyze_meets_quality_floors_on_unseen_documents(
    client: TestClient, company: Tenant
) -> None:
    _, future, _ = _company()
    docs = [d for d in future if d.label.decided][:60]
    body = {"invoices": [d.invoice.model_dump(mode="json") for d in docs]}
    response = client.post(
        "/v1/analyze", json=body, headers={**company.headers, "Accept": "application/x-ndjson"}
    )
    assert response.status_code == 200, response.text
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert len(lines) == len(docs)
    pairs = list(zip(lines, docs, strict=True))
    accounts = sum(
        r["classification"]["invoice"]["decision"] == d.label.account_code for r, d in pairs
    )
    with_project = [(r, d) for r, d in pairs if d.label.project_code]
    projects = sum(
        r["project"]["result"]["decision"] == d.label.project_code for r, d in with_project
    )
    assert accounts / len(docs) >= 0.85, accounts
    assert projects / max(len(with_project), 1) >= 0.75, projects
    for r in lines:
        sections = (
            r["classification"]["invoice"],
            r["project"]["result"],
            r["purchase_order"],
            r["anomalies"],
        )
        for section in sections:
            assert section["engine"] == "local"
            assert 0 <= section["confidence"] <= 1


def test_a_correction_changes_the_next_answer(client: TestClient, company: Tenant) -> None:
    _, future, _ = _company()
    doc = next(d for d in future if d.label.decided and len(d.invoice.lines) == 1)
    first = client.post("/v1/classify", json=_invoice_json(doc), headers=company.headers).json()
    predicted = first["invoice"]["decision"]
    other = next(a["code"] for a in _company()[0]["accounts"] if a["code"] != predicted)
    decision = {
        "invoice_key": doc.invoice.key,
        "decided_at": "2030-01-01T10:00:00",
        "account_code": other,
        "lines": [{"line_no": doc.invoice.lines[0].line_no, "account_code": other}],
    }
    learnt = client.post(
        "/v1/learn",
        json={"invoices": [doc.invoice.model_dump(mode="json")], "decisions": [decision]},
        headers=company.headers,
    )
    assert learnt.status_code == 200, learnt.text
    twin = doc.invoice.model_copy(update={"folio": doc.invoice.folio + 100_000})
    again = client.post(
        "/v1/classify", json={"invoice": twin.model_dump(mode="json")}, headers=company.headers
    ).json()
    assert again["invoice"]["decision"] == other
    evidence = again["invoice"]["evidence"] + [
        e for ln in again["lines"] for e in ln["result"]["evidence"]
    ]
    assert any(e["kind"] == "correction" for e in evidence)


def test_xml_input_and_every_endpoint(client: TestClient, company: Tenant) -> None:
    _, future, _ = _company()
    doc = next(
        d for d in future if d.label.decided and d.label.project_code and not d.label.anomalies
    )
    xml = to_dte_xml(doc.invoice)
    headers = {**company.headers, "Content-Type": "application/xml"}
    answers = {}
    for path in ("/v1/classify", "/v1/match/project", "/v1/reconcile", "/v1/anomalies"):
        response = client.post(path, content=xml, headers=headers)
        assert response.status_code == 200, (path, response.text)
        body = response.json()
        answers[path] = body.get("invoice") or body.get("result") or body
    # the XML carries what the JSON does: the engines reach the labelled answers from it
    assert answers["/v1/classify"]["decision"] == doc.label.account_code
    assert answers["/v1/match/project"]["decision"] == doc.label.project_code
    assert answers["/v1/anomalies"]["decision"]["alerts"] == []
    assert answers["/v1/reconcile"]["decision"]["invoice_key"] == doc.invoice.key


def test_bad_input_is_a_clear_4xx(client: TestClient, company: Tenant) -> None:
    bad = client.post("/v1/classify", json={"invoice": {"folio": "x"}}, headers=company.headers)
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_invoice"
    assert bad.json()["error"]["fields"]
    hostile = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><DTE>&a;</DTE>'
    response = client.post(
        "/v1/classify",
        content=hostile,
        headers={**company.headers, "Content-Type": "application/xml"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "hostile_xml"


def test_documents_of_another_company_are_refused(
    client: TestClient, company: Tenant, tenant_b: Tenant
) -> None:
    _, future, _ = _company()
    response = client.post("/v1/classify", json=_invoice_json(future[0]), headers=tenant_b.headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "wrong_company"


def test_suggestions_for_a_received_duplicate_and_for_a_document_being_issued(
    client: TestClient, company: Tenant
) -> None:
    _, future, _ = _company()
    booked = _company()[0]["invoices"][-1]
    duplicate = client.post("/v1/suggestions", json={"invoice": booked}, headers=company.headers)
    assert duplicate.status_code == 200, duplicate.text
    kinds = {s["kind"]: s for s in duplicate.json()["suggestions"]}
    assert (
        kinds["possible_duplicate"]["value"]
        == f"{booked['emisor_rut']}:{booked['tipo_dte']}:{booked['folio']}"
    )
    fresh = next(d for d in future if d.label.decided and not d.label.anomalies)
    body = client.post("/v1/suggestions", json=_invoice_json(fresh), headers=company.headers).json()
    got = {s["kind"]: s for s in body["suggestions"]}
    assert got["account"]["value"] == fresh.label.account_code
    assert "possible_duplicate" not in got
    from tests.issuing_kit import factura

    doc = factura(33)
    doc["Encabezado"]["Emisor"]["RUTEmisor"] = company.rut
    doc["Encabezado"]["Receptor"]["RUTRecep"] = "77777777-8"
    issuing = client.post("/v1/suggestions", json={"document": doc}, headers=company.headers).json()
    rules = {s["value"]["rule_id"] for s in issuing["suggestions"]}
    assert {"RUT_RECEPTOR_INVALID", "CAF_MISSING"} <= rules
