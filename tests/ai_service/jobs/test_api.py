"""POST /v1/jobs/classify in its three forms, progress, exports, webhooks, zip safety and
company isolation; the jobs run in-process (the embedded default), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from ai_service.jobs.config import JobsConfig
from ai_service.jobs.runner import InProcessRunner
from ai_service.outbox.webhooks import SIGNATURE_HEADER, verify
from tests.ai_service.conftest import Tenant, create_tenant
from tests.ai_service.jobs.conftest import Company, make_zip, tenant_with_context, without_detalle


class Receiver:
    """A webhook receiver behind httpx.MockTransport: fails the first ``fail_first`` POSTs."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(500 if len(self.requests) <= self.fail_first else 204)


@pytest.fixture
def receiver() -> Receiver:
    return Receiver(fail_first=1)


@pytest.fixture
def runner(client: TestClient, receiver: Receiver) -> Iterator[InProcessRunner]:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    runner = InProcessRunner(
        ctx.engine,
        ctx.box,
        JobsConfig(jobs_chunk_size=7, jobs_workers=2),
        http_client=lambda: httpx.Client(transport=httpx.MockTransport(receiver.handler)),
        webhook_wait=0.01,
    )
    client.app.state.jobs_dispatcher = runner  # type: ignore[attr-defined]
    yield runner
    runner.shutdown()


@pytest.fixture
def tenant(client: TestClient, construction: Company, runner: InProcessRunner) -> Tenant:
    return tenant_with_context(client, construction)


def _multipart(files: list[tuple[str, bytes]], **fields: str) -> dict[str, Any]:
    return {
        "files": [("files", (name, data, "application/xml")) for name, data in files],
        "data": fields,
    }


def _finished(client: TestClient, runner: InProcessRunner, tenant: Tenant, job_id: str) -> Any:
    runner.wait(job_id, timeout=120)
    response = client.get(f"/v1/jobs/{job_id}?items_limit=1000", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_uploaded_files_are_classified_and_a_poisoned_one_fails_alone(
    client: TestClient,
    runner: InProcessRunner,
    tenant: Tenant,
    construction: Company,
    shared_sii: Any,
) -> None:
    files = construction.files(12)
    poisoned = ("sin-detalle.xml", without_detalle(construction.xml(construction.documents[20])))
    hostile = ("bomba.xml", (shared_sii / "samples/xml-attacks/billion-laughs-1.xml").read_bytes())
    created = client.post(
        "/v1/jobs/classify",
        headers=tenant.headers,
        **_multipart([*files[:6], poisoned, hostile, *files[6:]]),
    )
    assert created.status_code == 202, created.text
    job_id = created.json()["job"]["id"]
    assert created.headers["location"] == f"/v1/jobs/{job_id}"
    assert created.json()["job"]["total"] == 14
    job = _finished(client, runner, tenant, job_id)
    assert (job["state"], job["total"], job["done"], job["failed"], job["pending"]) == (
        "finished",
        14,
        12,
        2,
        0,
    )
    items = job["items"]
    assert [i["seq"] for i in items] == list(range(14))
    by_name = {i["filename"]: i for i in items}
    assert by_name["sin-detalle.xml"]["state"] == "failed"
    assert by_name["sin-detalle.xml"]["error"]["code"] == "invalid_document"
    assert by_name["sin-detalle.xml"]["document_id"] is not None  # ingested, then refused
    assert by_name["bomba.xml"]["error"]["code"] == "hostile_xml"
    assert by_name["bomba.xml"]["document_id"] is None and by_name["bomba.xml"]["file_id"]
    truth = {d.invoice.key: d.label.account_code for d in construction.documents}
    right = 0
    for item in items:
        if item["state"] != "done":
            continue
        result = item["result"]
        key = f"{item['rut_emisor']}:{item['tipo_dte']}:{item['folio']}"
        assert result["invoice_key"] == key
        assert {c["value"] for c in result["invoice"]["candidates"]} <= construction.accounts
        assert result["invoice"]["engine"] == "local"
        right += result["invoice"]["candidates"][0]["value"] == truth[key]
    assert right >= 9, f"only {right} of 12 invoices got the accountant's account first"
    # the uploaded files are kept as received files, the hostile one refused
    received = client.get("/v1/received/files?limit=500", headers=tenant.headers).json()
    assert len(received) == 14
    assert sum(1 for f in received if f["status"] == "refused") == 1


def test_webhook_is_signed_with_the_job_secret_and_retried(
    client: TestClient,
    runner: InProcessRunner,
    tenant: Tenant,
    construction: Company,
    receiver: Receiver,
) -> None:
    created = client.post(
        "/v1/jobs/classify",
        headers=tenant.headers,
        **_multipart(construction.files(3), webhook_url="https://odoo.example.cl/hook"),
    )
    assert created.status_code == 202, created.text
    secret = created.json()["webhook_secret"]
    job = _finished(client, runner, tenant, created.json()["job"]["id"])
    assert len(receiver.requests) == 2  # the first answered 500, the retry 204
    first, second = receiver.requests
    assert str(second.url) == "https://odoo.example.cl/hook"
    assert (
        second.headers["X-DteAi-Delivery"]
        == f"job-{job['id']}"
        == first.headers["X-DteAi-Delivery"]
    )
    body = json.loads(second.content)
    assert body == {
        "event": "classify_job.finished",
        "job_id": job["id"],
        "state": "finished",
        "total": 3,
        "done": 3,
        "failed": 0,
        "finished_at": body["finished_at"],
        "results_url": f"/v1/jobs/{job['id']}/results",
    }
    assert verify(
        secret.encode(), second.headers[SIGNATURE_HEADER], second.content, now=int(time.time())
    )
    assert not verify(
        b"another secret", second.headers[SIGNATURE_HEADER], second.content, now=int(time.time())
    )
    assert job["webhook"]["attempts"] == 2 and job["webhook"]["delivered_at"]
    assert "webhook_secret" not in client.get(f"/v1/jobs/{job['id']}", headers=tenant.headers).text


def test_zip_body_and_zips_inside_multipart(
    client: TestClient, runner: InProcessRunner, tenant: Tenant, construction: Company
) -> None:
    files = construction.files(8)
    body = make_zip([(f"facturas/{n}", d) for n, d in files[:5]] + [("facturas/leeme.txt", b"hi")])
    created = client.post(
        "/v1/jobs/classify",
        content=body,
        headers={**tenant.headers, "Content-Type": "application/zip"},
    )
    assert created.status_code == 202, created.text
    assert created.json()["skipped"] == ["upload.zip/facturas/leeme.txt"]
    job = _finished(client, runner, tenant, created.json()["job"]["id"])
    assert (job["total"], job["done"]) == (5, 5)
    # a zip next to a plain XML in one multipart upload; the repeated document counts once
    mixed = client.post(
        "/v1/jobs/classify",
        headers=tenant.headers,
        files=[
            ("files", ("lote.zip", make_zip(files[5:]), "application/zip")),
            ("files", files[0] + ("application/xml",)),
            ("files", ("otra-vez.xml", files[7][1], "application/xml")),
        ],
    )
    assert mixed.status_code == 202, mixed.text
    job = _finished(client, runner, tenant, mixed.json()["job"]["id"])
    assert (job["total"], job["done"], job["failed"]) == (4, 4, 0)


def test_references_idempotency_and_replays_never_duplicate(
    client: TestClient, runner: InProcessRunner, tenant: Tenant, construction: Company
) -> None:
    uploaded = client.post(
        "/v1/jobs/classify", headers=tenant.headers, **_multipart(construction.files(10))
    )
    first = _finished(client, runner, tenant, uploaded.json()["job"]["id"])
    ids = [i["document_id"] for i in first["items"]]
    headers = {**tenant.headers, "Idempotency-Key": "odoo-batch-1"}
    created = client.post(
        "/v1/jobs/classify", json={"document_ids": ids + ids[:3]}, headers=headers
    )
    assert created.status_code == 202, created.text
    job_id = created.json()["job"]["id"]
    assert created.json()["job"]["total"] == 10
    again = client.post("/v1/jobs/classify", json={"document_ids": ids}, headers=headers)
    assert again.status_code == 200 and again.json()["job"]["id"] == job_id
    job = _finished(client, runner, tenant, job_id)
    # the same results as the first job: the classifier is deterministic
    assert [i["result"] for i in job["items"]] == [i["result"] for i in first["items"]]
    runner.dispatch(job_id, 10)  # a re-driven job, as after a restart
    runner.wait(job_id, timeout=60)
    again = client.get(f"/v1/jobs/{job_id}?items_limit=1000", headers=tenant.headers).json()
    assert (again["done"], again["failed"], len(again["items"])) == (10, 0, 10)
    assert again["items"] == job["items"]
    assert [j["id"] for j in client.get("/v1/jobs", headers=tenant.headers).json()] == [
        job_id,
        first["id"],
    ]


def test_exports_jsonl_and_csv(
    client: TestClient, runner: InProcessRunner, tenant: Tenant, construction: Company
) -> None:
    files = [*construction.files(5), ("roto.xml", b"<DTE")]
    created = client.post("/v1/jobs/classify", headers=tenant.headers, **_multipart(files))
    job = _finished(client, runner, tenant, created.json()["job"]["id"])
    jsonl = client.get(f"/v1/jobs/{job['id']}/results?format=jsonl", headers=tenant.headers)
    assert jsonl.status_code == 200
    assert jsonl.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in jsonl.text.splitlines()]
    assert [line["seq"] for line in lines] == list(range(6))
    assert [line["result"] for line in lines] == [i["result"] for i in job["items"]]
    assert lines[5]["error"]["code"] == "unreadable_xml" and lines[5]["result"] is None
    exported = client.get(f"/v1/jobs/{job['id']}/results?format=csv", headers=tenant.headers)
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 6
    for row, item in zip(rows, job["items"], strict=True):
        assert row["document_id"] == (item["document_id"] or "")
        assert row["state"] == item["state"]
        if item["state"] == "done":
            invoice = item["result"]["invoice"]
            assert row["account"] == (invoice["decision"] or "")
            assert float(row["confidence"]) == invoice["confidence"]
    assert rows[5]["error_code"] == "unreadable_xml"
    bad = client.get(f"/v1/jobs/{job['id']}/results?format=xlsx", headers=tenant.headers)
    assert bad.status_code == 422


def test_another_company_cannot_see_or_use_the_jobs(
    client: TestClient,
    runner: InProcessRunner,
    tenant: Tenant,
    construction: Company,
    restaurant: Company,
) -> None:
    created = client.post(
        "/v1/jobs/classify", headers=tenant.headers, **_multipart(construction.files(2))
    )
    job = _finished(client, runner, tenant, created.json()["job"]["id"])
    other = tenant_with_context(client, restaurant)
    for path in ("", "/results", "/results?format=csv"):
        response = client.get(f"/v1/jobs/{job['id']}{path}", headers=other.headers)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "job_not_found"
    assert client.get("/v1/jobs", headers=other.headers).json() == []
    # nor classify A's documents by id
    ids = [i["document_id"] for i in job["items"]]
    refused = client.post("/v1/jobs/classify", json={"document_ids": ids}, headers=other.headers)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "unknown_documents"
    assert [f["message"] for f in refused.json()["error"]["fields"]] == ids
    # an invoice addressed to A, uploaded by B: stored, then fails alone as another company's
    mixed = client.post(
        "/v1/jobs/classify",
        headers=other.headers,
        **_multipart([construction.files(3)[2], *restaurant.files(2)]),
    )
    job_b = _finished(client, runner, other, mixed.json()["job"]["id"])
    assert [i["state"] for i in job_b["items"]] == ["failed", "done", "done"]
    assert job_b["items"][0]["error"]["code"] == "context_mismatch"
    assert client.get("/v1/jobs", headers={"Authorization": "Bearer nope"}).status_code == 401


def _zip_with(names: list[str]) -> bytes:
    return make_zip([(n, b"<DTE/>") for n in names])


def _symlink_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("enlace.xml")
        info.external_attr = 0o120777 << 16
        archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (_zip_with(["../../etc/cron.d/x.xml"]), "zip_path_traversal"),
        (_zip_with(["/abs/x.xml"]), "zip_path_traversal"),
        (_zip_with(["a\\..\\x.xml"]), "zip_path_traversal"),
        (_zip_with([f"f{i}.xml" for i in range(5001)]), "zip_too_many_entries"),
        (make_zip([("bomba.xml", b"\0" * (40 * 1024 * 1024))]), "zip_bomb"),
        (_symlink_zip(), "zip_link"),
        (b"PK\x03\x04 but not a zip at all", "zip_unreadable"),
    ],
    ids=["dotdot", "absolute", "backslash", "entries", "bomb", "symlink", "garbage"],
)
def test_unsafe_zips_are_refused_whole(
    client: TestClient, tenant: Tenant, body: bytes, code: str
) -> None:
    assert len(body) < 2 * 1024 * 1024  # under the request limit: refused for what it holds
    response = client.post(
        "/v1/jobs/classify",
        content=body,
        headers={**tenant.headers, "Content-Type": "application/zip"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code
    # refused before anything was ingested
    assert client.get("/v1/received/files", headers=tenant.headers).json() == []
    assert client.get("/v1/jobs", headers=tenant.headers).json() == []


def test_bad_requests(
    client: TestClient, runner: InProcessRunner, tenant: Tenant, construction: Company
) -> None:
    empty = create_tenant(client, "76354771-K", "Sin Contexto SpA")
    no_context = client.post(
        "/v1/jobs/classify", json={"document_ids": ["x"]}, headers=empty.headers
    )
    assert no_context.status_code == 409
    assert no_context.json()["error"]["code"] == "no_context"
    cases = [
        ({"json": {"document_ids": []}}, 422, "invalid_request"),
        ({"json": {"document_ids": ["nope"]}}, 422, "unknown_documents"),
        (
            {"content": b"x", "headers": {"Content-Type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
        ({"files": [("other", ("a.xml", b"<DTE/>", "application/xml"))]}, 400, "missing_file"),
        (
            {"json": {"document_ids": ["x"], "webhook_url": "ftp://odoo/hook"}},
            422,
            "invalid_webhook_url",
        ),
    ]
    for kwargs, status, code in cases:
        headers = {**tenant.headers, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        response = client.post("/v1/jobs/classify", headers=headers, **kwargs)  # type: ignore[arg-type]
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), kwargs
    empty_ids = client.post("/v1/jobs/classify", headers=tenant.headers, json={"document_ids": []})
    assert [f["field"] for f in empty_ids.json()["error"]["fields"]] == ["document_ids"]
    missing = client.get("/v1/jobs/00000000-0000-0000-0000-000000000000", headers=tenant.headers)
    assert missing.status_code == 404


def test_an_unreachable_queue_keeps_the_job_and_says_so(
    client: TestClient, tenant: Tenant, construction: Company
) -> None:
    from ai_service.jobs import repository as repo
    from ai_service.jobs.runner import CeleryDispatcher

    # nothing listens on port 1: the broker is down
    down = CeleryDispatcher(JobsConfig(celery_broker_url="redis://127.0.0.1:1/0"))
    client.app.state.jobs_dispatcher = down  # type: ignore[attr-defined]
    try:
        response = client.post(
            "/v1/jobs/classify", headers=tenant.headers, **_multipart(construction.files(2))
        )
    finally:
        down.shutdown()
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "queue_unavailable"
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    (job,) = repo.list_jobs(ctx.engine, tenant.id, limit=5, offset=0)
    assert job.id in response.json()["error"]["message"]
    assert (job.state, job.total, job.pending) == ("queued", 2, 2)  # saved, to be resumed
