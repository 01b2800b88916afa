"""Real Celery workers (``python -m ai_service.jobs.worker``) on the machine's Redis, sharing the
test's database (a SQLite file, or PostgreSQL): the job runs to the end, results match the
in-process runner's, the webhook is signed, and a worker killed with SIGKILL mid-job loses
nothing — a new worker finishes the job with every document recorded exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from ai_service.db.job_tables import classify_job_items
from ai_service.jobs import repository as repo
from ai_service.jobs.config import JobsConfig
from ai_service.jobs.runner import CeleryDispatcher, InProcessRunner
from ai_service.outbox.webhooks import SIGNATURE_HEADER, verify
from tests.ai_service.conftest import SECRET_KEY, Tenant
from tests.ai_service.jobs.conftest import REDIS_URL, Company, tenant_with_context

pytestmark = pytest.mark.slow
VISIBILITY_SECONDS = 2.0


def _wait(check: Callable[[], bool], timeout: float, what: str, proc: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the worker exited ({proc.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Workers:
    def __init__(self, db_url: str, namespace: tuple[str, str], tmp_path: Path) -> None:
        self.queue, self.prefix = namespace
        self.env = {
            **os.environ,
            "DTE_AI_DATA_DIR": str(tmp_path / "worker-data"),
            "DTE_AI_DATABASE_URL": db_url,
            "DTE_AI_SECRET_KEY": SECRET_KEY,
            "DTE_AI_CELERY_BROKER_URL": REDIS_URL,
            "DTE_AI_JOBS_QUEUE": self.queue,
            "DTE_AI_JOBS_KEY_PREFIX": self.prefix,
            "DTE_AI_JOBS_VISIBILITY_TIMEOUT": str(VISIBILITY_SECONDS),
        }
        self.logs = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def config(self, chunk: int) -> JobsConfig:
        return JobsConfig(
            celery_broker_url=REDIS_URL,
            jobs_queue=self.queue,
            jobs_key_prefix=self.prefix,
            jobs_chunk_size=chunk,
            jobs_visibility_timeout=VISIBILITY_SECONDS,
        )

    def start(self, concurrency: int = 1) -> subprocess.Popen[bytes]:
        n = len(self.procs)
        log = (self.logs / f"worker-{n}.log").open("wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ai_service.jobs.worker",
                "--concurrency",
                str(concurrency),
                "--hostname",
                f"test-{n}-{self.queue}@localhost",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: SIGKILL reaches the pool too
        )
        log.close()
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)

    def log(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:] for p in self.logs.glob("worker-*.log")
        )


@pytest.fixture
def workers(
    db_url: str, redis_namespace: tuple[str, str], tmp_path: Path, migrated_engine: Engine
) -> Iterator[Workers]:
    pool = Workers(db_url, redis_namespace, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()


class Hook(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook_server() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Handler", (Hook,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def _app_with(client: TestClient, dispatcher: Any) -> None:
    app: Any = client.app
    app.state.jobs_dispatcher = dispatcher


def _upload(client: TestClient, tenant: Tenant, files: list[tuple[str, bytes]], **data: str) -> Any:
    response = client.post(
        "/v1/jobs/classify",
        headers=tenant.headers,
        files=[("files", (n, d, "application/xml")) for n, d in files],
        data=data,
    )
    assert response.status_code == 202, response.text
    return response.json()


def _job(client: TestClient, tenant: Tenant, job_id: str) -> Any:
    return client.get(f"/v1/jobs/{job_id}?items_limit=1000", headers=tenant.headers).json()


def test_a_real_worker_runs_the_job_like_the_in_process_runner(
    client: TestClient,
    workers: Workers,
    construction: Company,
    hook_server: tuple[str, list[tuple[dict[str, str], bytes]]],
) -> None:
    url, received = hook_server
    dispatcher = CeleryDispatcher(workers.config(chunk=4))
    _app_with(client, dispatcher)
    tenant = tenant_with_context(client, construction)
    proc = workers.start(concurrency=2)
    created = _upload(client, tenant, construction.files(30), webhook_url=url)
    job_id = created["job"]["id"]
    try:
        _wait(lambda: _job(client, tenant, job_id)["state"] == "finished", 120, "the job", proc)
        _wait(lambda: len(received) == 1, 60, "the webhook", proc)
    except AssertionError:
        print(workers.log())
        raise
    finally:
        dispatcher.shutdown()
    job = _job(client, tenant, job_id)
    assert (job["total"], job["done"], job["failed"]) == (30, 30, 0)
    headers, body = received[0]
    assert verify(
        created["webhook_secret"].encode(), headers[SIGNATURE_HEADER], body, now=int(time.time())
    )
    assert headers["X-DteAi-Delivery"] == f"job-{job_id}"
    assert job["webhook"]["delivered_at"] and job["webhook"]["attempts"] == 1
    # the Redis result backend holds each task's summary, under this run's prefix only
    r = redis.Redis.from_url(REDIS_URL)
    metas = list(r.scan_iter(match=f"{workers.prefix}celery-task-meta-*"))
    assert len(metas) >= 30 // 4
    r.close()
    # the same documents through the in-process runner give the very same results
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    local = InProcessRunner(ctx.engine, ctx.box, JobsConfig(jobs_chunk_size=7))
    _app_with(client, local)
    ids = [i["document_id"] for i in job["items"]]
    again = client.post("/v1/jobs/classify", json={"document_ids": ids}, headers=tenant.headers)
    local.wait(again.json()["job"]["id"], timeout=60)
    local.shutdown()
    in_process = _job(client, tenant, again.json()["job"]["id"])
    assert [i["result"] for i in in_process["items"]] == [i["result"] for i in job["items"]]


def test_a_worker_killed_mid_job_loses_nothing(
    client: TestClient, workers: Workers, construction: Company, migrated_engine: Engine
) -> None:
    dispatcher = CeleryDispatcher(workers.config(chunk=2))
    _app_with(client, dispatcher)
    tenant = tenant_with_context(client, construction)
    files = construction.files(100)
    created = _upload(client, tenant, files)
    job_id = created["job"]["id"]
    total = created["job"]["total"]
    assert total == 100
    r = redis.Redis.from_url(REDIS_URL)
    unacked = f"{workers.prefix}unacked"
    kills = 0
    try:
        # kill while the worker holds a task (unacked in Redis); a kill that lands between two
        # tasks proves less, so try again, up to three times
        while kills < 3:
            done_before = _job(client, tenant, job_id)["done"]
            proc = workers.start(concurrency=1)
            _wait(
                lambda n=done_before: (
                    _job(client, tenant, job_id)["done"] >= n + 10 and r.hlen(unacked) >= 1
                ),
                120,
                "results and a task in flight",
                proc,
            )
            workers.kill(proc)
            kills += 1
            if r.hlen(unacked) >= 1:
                break
        at_kill = _job(client, tenant, job_id)
        assert 0 < at_kill["done"] < total, "the worker was not killed mid-job"
        # the task it held was neither acknowledged nor lost: it waits in Redis, unacked
        assert r.hlen(unacked) >= 1, f"no kill in {kills} landed while a task was in flight"
        time.sleep(VISIBILITY_SECONDS + 0.5)
        assert _job(client, tenant, job_id)["done"] == at_kill["done"]  # nobody works on it
        last = workers.start(concurrency=1)
        _wait(lambda: _job(client, tenant, job_id)["state"] == "finished", 180, "the job", last)
    except AssertionError:
        print(workers.log())
        raise
    finally:
        dispatcher.shutdown()
    job = _job(client, tenant, job_id)
    assert (job["done"], job["failed"], job["pending"]) == (total, 0, 0)
    company_id = tenant.id
    assert repo.count_items(migrated_engine, company_id, job_id) == {"done": total}
    with migrated_engine.connect() as conn:
        rows = conn.execute(
            select(classify_job_items.c.document_id, classify_job_items.c.result).where(
                classify_job_items.c.job_id == job_id
            )
        ).all()
    # each document exactly once, each with its own result
    assert Counter(doc for doc, _ in rows) == dict.fromkeys({doc for doc, _ in rows}, 1)
    assert len(rows) == total
    keys = [f"{i['rut_emisor']}:{i['tipo_dte']}:{i['folio']}" for i in job["items"]]
    assert [i["result"]["invoice_key"] for i in job["items"]] == keys
    assert len(set(keys)) == total
    # nothing left behind in the broker: queue drained, no message unacknowledged
    _wait(lambda: r.hlen(unacked) == 0, 30, "the last ack")
    assert r.llen(f"{workers.prefix}{workers.queue}") == 0
    r.close()
