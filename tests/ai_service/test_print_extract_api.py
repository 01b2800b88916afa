"""The printed PDF of an issued document, read back by the extractor; the XML wins once held."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.ai_service.conftest import Tenant
from tests.ai_service.test_dte import _doc, _ready, issue


def _issued_pdf(client: TestClient, tenant: Tenant, make_caf: Any) -> tuple[dict[str, Any], bytes]:
    _ready(client, tenant, make_caf)
    resolution = {"fch_resol": "2014-08-22", "nro_resol": 80, "oficina_sii": "SANTIAGO ORIENTE"}
    assert (
        client.put("/v1/sii/resolution", json=resolution, headers=tenant.headers).status_code == 200
    )
    doc = issue(client, tenant, _doc(tenant)).json()
    pdf = client.get(f"/v1/dte/{doc['id']}/pdf", headers=tenant.headers)
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    return doc, pdf.content


def _value(body: dict[str, Any], name: str) -> Any:
    return body["link"]["fields"][name]


def test_printed_pdf_reads_back_to_the_issued_values(
    client: TestClient, tenant_a: Tenant, make_caf: Any
) -> None:
    doc, pdf = _issued_pdf(client, tenant_a, make_caf)
    response = client.post(
        "/v1/extract", content=pdf, headers={**tenant_a.headers, "Content-Type": "application/pdf"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["extraction"]["engine"] == "pdf_text"
    assert body["link"]["matched"] is False  # A holds no received copy of its own invoice
    assert _value(body, "folio") == doc["folio"]
    assert _value(body, "tipo_dte") == 33
    assert _value(body, "mnt_total") == doc["monto_total"]


def test_once_the_xml_is_held_it_wins(
    client: TestClient, tenant_a: Tenant, tenant_b: Tenant, make_caf: Any
) -> None:
    doc, pdf = _issued_pdf(client, tenant_a, make_caf)
    xml = client.get(f"/v1/dte/{doc['id']}/xml", headers=tenant_a.headers).content
    received = client.post(
        "/v1/received", content=xml, headers={**tenant_b.headers, "Content-Type": "application/xml"}
    )
    assert received.status_code == 201, received.text
    body = client.post(
        "/v1/extract", content=pdf, headers={**tenant_b.headers, "Content-Type": "application/pdf"}
    ).json()
    assert body["link"]["matched"] is True
    assert body["link"]["authority"] == "xml"
    assert body["link"]["discrepancies"] == []
    # A cannot see B's received copy through the extractor
    body_a = client.post(
        "/v1/extract", content=pdf, headers={**tenant_a.headers, "Content-Type": "application/pdf"}
    ).json()
    assert body_a["link"]["matched"] is False


def test_hostile_and_wrong_files_are_refused(client: TestClient, tenant_a: Tenant) -> None:
    wrong = client.post(
        "/v1/extract",
        content=b"PK\x03\x04 a zip",
        headers={**tenant_a.headers, "Content-Type": "application/zip"},
    )
    assert wrong.status_code == 415
    assert wrong.json()["error"]["code"] == "unsupported_type"
    bomb_header = (
        b"\x89PNG\r\n\x1a\n"
        + b"\x00\x00\x00\rIHDR"
        + (100000).to_bytes(4, "big") * 2
        + b"\x08\x02\x00\x00\x00"
        + b"\x00" * 4
    )
    bomb = client.post(
        "/v1/extract",
        content=bomb_header,
        headers={**tenant_a.headers, "Content-Type": "image/png"},
    )
    assert bomb.status_code == 422
    assert bomb.json()["error"]["code"] in (
        "image_too_large",
        "decompression_bomb",
        "unreadable_image",
    )
