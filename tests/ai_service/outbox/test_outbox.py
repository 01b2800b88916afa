"""The outbox against the SII simulator: every document reaches one final state, once."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ai_service.outbox import webhooks
from ai_service.outbox.worker import OutboxWorker
from dte_core.sii.simulator import Fault, SiiSimulator
from tests.ai_service.outbox.conftest import Issuing, run_until_settled

MakeWorker = Callable[[], OutboxWorker]


def _uploads(sim: SiiSimulator) -> int:
    return sum(1 for method, path, _ in sim.requests if path == "/cgi_dte/UPL/DTEUpload")


def test_send_needs_the_sii_resolution(client: Any, tenant_a: Any, make_caf: Any) -> None:
    from tests.ai_service.test_dte import _doc, _ready, issue

    _ready(client, tenant_a, make_caf)
    doc_id = issue(client, tenant_a, _doc(tenant_a)).json()["id"]
    response = client.post(f"/v1/dte/{doc_id}/send", headers=tenant_a.headers)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "no_sii_resolution"


def test_documents_travel_to_accepted(
    issuing: Issuing, make_worker: MakeWorker, sim: SiiSimulator
) -> None:
    ids = issuing.issue_and_send(3)
    assert {issuing.state(i)["sii"]["state"] for i in ids} == {"queued"}
    run_until_settled(make_worker())
    for doc_id in ids:
        body = issuing.state(doc_id)
        assert body["status"] == "accepted", body
        assert body["sii"]["sii_estado"] == "EPR"
        assert body["sii"]["detail"]["track_id"]
    assert _uploads(sim) == 2  # batch size 2: two envelopes
    events = issuing.client.get(f"/v1/dte/{ids[0]}/events", headers=issuing.tenant.headers).json()
    assert [e["state"] for e in events] == [
        "queued",
        "submitted",
        "uploading",
        "uploaded",
        "accepted",
    ]


def test_sending_twice_queues_once(
    issuing: Issuing, make_worker: MakeWorker, sim: SiiSimulator
) -> None:
    (doc_id,) = issuing.issue_and_send(1)
    again = issuing.client.post(f"/v1/dte/{doc_id}/send", headers=issuing.tenant.headers)
    assert again.status_code == 202
    run_until_settled(make_worker())
    issuing.client.post(f"/v1/dte/{doc_id}/send", headers=issuing.tenant.headers)
    run_until_settled(make_worker())
    assert _uploads(sim) == 1
    assert issuing.state(doc_id)["status"] == "accepted"


def test_a_failed_upload_is_sent_again_only_after_the_sii_says_it_has_none(
    issuing: Issuing, make_worker: MakeWorker, sim: SiiSimulator
) -> None:
    (doc_id,) = issuing.issue_and_send(1)
    sim.faults.add("upload", Fault.SERVER_ERROR, times=10)  # beyond the client's retries
    worker = make_worker()
    worker.run_once()
    # an error answer may still mean "registered": the worker does not assume either way
    assert issuing.state(doc_id)["sii"]["state"] == "uploading"
    sim.faults.clear()
    first_upload_attempts = _uploads(sim)
    run_until_settled(worker)
    paths = [path for _, path, _ in sim.requests]
    check = paths.index("/DTEWS/QueryEstDte.jws")
    assert check < len(paths) - paths[::-1].index("/cgi_dte/UPL/DTEUpload") - 1
    assert _uploads(sim) == first_upload_attempts + 1
    assert issuing.state(doc_id)["status"] == "accepted"
    assert len(sim.sii.envios) == 1


def test_a_lost_receipt_is_settled_by_status_not_by_a_second_upload(
    issuing: Issuing, make_worker: MakeWorker, sim: SiiSimulator
) -> None:
    ids = issuing.issue_and_send(2)
    sim.faults.add("upload", Fault.LOST_RESPONSE)  # the SII registers it, the answer is lost
    worker = make_worker()
    worker.run_once()
    assert {issuing.state(i)["sii"]["state"] for i in ids} == {"uploading"}
    sim.sii.settle()
    (envio,) = sim.sii.envios.values()
    sim.sii.stage(envio, poll=True)
    for _ in range(6):
        sim.sii.stage(envio, poll=True)  # the SII finishes processing it meanwhile
    run_until_settled(worker)
    assert len(sim.sii.envios) == 1, "the envelope was uploaded twice"
    for doc_id in ids:
        body = issuing.state(doc_id)
        assert body["status"] == "accepted"
        assert body["sii"]["sii_estado"] == "DOK"


def test_a_rejected_envelope_rejects_its_documents_with_the_reasons(
    issuing: Issuing, make_worker: MakeWorker, sim: SiiSimulator
) -> None:
    from sqlalchemy import update

    from ai_service.db.tables import documents

    (doc_id,) = issuing.issue_and_send(1)
    engine = issuing.client.app.state.ctx.engine
    with engine.begin() as conn:  # tamper the stored XML: the SII must catch it
        xml = conn.execute(documents.select().where(documents.c.id == doc_id)).one().xml
        conn.execute(
            update(documents)
            .where(documents.c.id == doc_id)
            .values(xml=bytes(xml).replace(b"<MntTotal>119000<", b"<MntTotal>119001<"))
        )
    run_until_settled(make_worker())
    body = issuing.state(doc_id)
    assert body["status"] == "rejected"
    assert body["sii"]["detail"]


@pytest.fixture
def receiver() -> Iterator[dict[str, Any]]:
    got: dict[str, Any] = {"requests": [], "fail": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if got["fail"] > 0:
                got["fail"] -= 1
                self.send_response(500)
                self.end_headers()
                return
            got["requests"].append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    got["url"] = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield got
    server.shutdown()
    server.server_close()


def test_webhooks_are_signed_and_retried_until_delivered(
    issuing: Issuing, make_worker: MakeWorker, receiver: dict[str, Any]
) -> None:
    import time
    from datetime import timedelta

    created = issuing.client.post(
        "/v1/webhooks", json={"url": receiver["url"]}, headers=issuing.tenant.headers
    )
    assert created.status_code == 201
    secret = created.json()["secret"].encode()
    receiver["fail"] = 1  # the first delivery fails: it must come again
    (doc_id,) = issuing.issue_and_send(1)
    run_until_settled(make_worker())
    ctx = issuing.client.app.state.ctx
    import httpx

    later = lambda: webhooks.utcnow() + timedelta(hours=2)  # noqa: E731 - past every backoff
    with httpx.Client() as http:
        webhooks.deliver_due(ctx.engine, ctx.box, http, now=later)
    states = [json.loads(body)["state"] for _, body in receiver["requests"]]
    assert sorted(states) == sorted(["queued", "submitted", "uploading", "uploaded", "accepted"])
    for headers, body in receiver["requests"]:
        assert json.loads(body)["document_id"] == doc_id
        signature = headers["X-DteAi-Signature"]
        sent_at = int(signature.split(",")[0].removeprefix("t="))
        assert abs(sent_at - time.time()) < 60 or abs(sent_at - later().timestamp()) < 60
        assert webhooks.verify(secret, signature, body, now=sent_at + 5)
        assert not webhooks.verify(b"other", signature, body, now=sent_at)
        assert not webhooks.verify(secret, signature, body + b" ", now=sent_at)
        assert not webhooks.verify(secret, signature, body, now=sent_at + 86_400)  # replayed


def test_another_company_cannot_send_or_watch(issuing: Issuing, tenant_b: Any) -> None:
    (doc_id,) = issuing.issue_and_send(1)
    for method, path in (("post", f"/v1/dte/{doc_id}/send"), ("get", f"/v1/dte/{doc_id}/events")):
        response = getattr(issuing.client, method)(path, headers=tenant_b.headers)
        assert response.status_code == 404


def test_the_receptor_registers_its_acceptance_at_the_sii(
    issuing: Issuing,
    make_worker: MakeWorker,
    sim: SiiSimulator,
    tenant_b: Any,
    worker_settings: Any,
) -> None:
    from tests.ai_service.test_dte import _load_certificate

    (doc_id,) = issuing.issue_and_send(1)
    run_until_settled(make_worker())
    client = issuing.client
    xml = client.get(f"/v1/dte/{doc_id}/xml", headers=issuing.tenant.headers).content
    xml_headers = {**tenant_b.headers, "Content-Type": "application/xml"}
    received = client.post("/v1/received", content=xml, headers=xml_headers).json()
    received_id = received["documents"][0]["id"]
    _load_certificate(client, tenant_b)
    client.app.state.ctx.settings = worker_settings  # the app talks to the simulator too
    path = f"/v1/received/{received_id}/sii-decision"
    accepted = client.post(path, json={"accion": "ACD"}, headers=tenant_b.headers)
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["ok"] and body["codigo"] == 0
    assert any(e["cod_evento"] == "ACD" for e in body["eventos"])
    again = client.post(path, json={"accion": "RCD"}, headers=tenant_b.headers).json()
    assert not again["ok"]  # already accepted: the SII refuses a later claim
    assert client.post(path, json={"accion": "XYZ"}, headers=tenant_b.headers).status_code == 422
    other = client.post(path, json={"accion": "ACD"}, headers=issuing.tenant.headers)
    assert other.status_code == 404  # A cannot act on B's received document


def test_boletas_go_to_the_boleta_service_and_facturas_to_dteupload(
    issuing: Issuing, make_worker: MakeWorker, sim: SiiSimulator, make_caf: Any
) -> None:
    from tests.ai_service.conftest import upload_caf

    caf = upload_caf(issuing.client, issuing.tenant, make_caf(rut=issuing.tenant.rut, tipo=39))
    assert caf.status_code == 201, caf.text
    boletas = issuing.issue_and_send(2, tipo=39)
    (factura,) = issuing.issue_and_send(1)
    run_until_settled(make_worker())
    for doc_id in [*boletas, factura]:
        assert issuing.state(doc_id)["status"] == "accepted", issuing.state(doc_id)
    paths = [path for _, path, _ in sim.requests]
    assert paths.count("/recursos/v1/boleta.electronica.envio") == 1  # one EnvioBOLETA
    assert paths.count("/cgi_dte/UPL/DTEUpload") == 1  # one EnvioDTE
    assert {e.boleta for e in sim.sii.envios.values()} == {True, False}


def test_a_lost_boleta_receipt_is_settled_by_the_boleta_status(
    issuing: Issuing, make_worker: MakeWorker, sim: SiiSimulator, make_caf: Any
) -> None:
    from tests.ai_service.conftest import upload_caf

    upload_caf(issuing.client, issuing.tenant, make_caf(rut=issuing.tenant.rut, tipo=39))
    ids = issuing.issue_and_send(2, tipo=39)
    sim.faults.add("boleta.envio", Fault.LOST_RESPONSE)
    worker = make_worker()
    worker.run_once()
    assert {issuing.state(i)["sii"]["state"] for i in ids} == {"uploading"}
    (envio,) = sim.sii.envios.values()
    for _ in range(6):
        sim.sii.stage(envio, poll=True)  # the SII processes it meanwhile
    run_until_settled(worker)
    assert len(sim.sii.envios) == 1, "the EnvioBOLETA was uploaded twice"
    assert {issuing.state(i)["sii"]["sii_estado"] for i in ids} == {"DOK"}
