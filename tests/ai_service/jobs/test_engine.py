"""The task code itself: replays and concurrent duplicates of a task record each document once,
a document the engine chokes on fails alone, a job of refused files still finishes (once)."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from ai_service.ingest.service import Ingestor
from ai_service.jobs import repository as repo
from ai_service.jobs.config import JobsConfig
from ai_service.jobs.engine import Classifiers, process_range
from ai_service.jobs.intake import ingest_files
from ai_service.jobs.runner import InProcessRunner
from ai_service.repositories import context as context_repo
from ai_service.repositories.companies import create_company
from ai_service.secrets import SecretBox
from ai_service.usecases.classification import ExpenseClassifier
from dte_core.caf import SiiKeyring
from tests.ai_service.conftest import SECRET_KEY
from tests.ai_service.jobs.conftest import CONTEXT_SECTIONS, Company


@pytest.fixture
def company_id(migrated_engine: Engine, construction: Company) -> str:
    created, _ = create_company(
        migrated_engine, SecretBox(SECRET_KEY.encode()), rut=construction.rut, name="Constructora"
    )
    batches = [
        (
            context_repo.BY_FIELD[name],
            context_repo.validate_items(
                context_repo.BY_FIELD[name], construction.context_body[name], name
            ),
        )
        for name in CONTEXT_SECTIONS
    ]
    context_repo.upsert(migrated_engine, created.id, batches)
    return created.id


def _job(engine: Engine, company_id: str, files: list[tuple[str, bytes]]) -> repo.JobInfo:
    items = ingest_files(Ingestor(engine, SiiKeyring.default()), company_id, files, source="cli")
    job, created = repo.create_job(engine, company_id, items, source="cli")
    assert created
    return job


def _results(engine: Engine, company_id: str, job_id: str) -> list[Any]:
    return [
        (i.seq, i.state, i.result, i.error_code)
        for i in repo.iter_items(engine, company_id, job_id)
    ]


def test_a_replayed_range_records_nothing_twice(
    migrated_engine: Engine, company_id: str, construction: Company
) -> None:
    job = _job(migrated_engine, company_id, construction.files(12))
    classifiers = Classifiers(migrated_engine)
    first = process_range(migrated_engine, classifiers, job.id, 0, 8)
    assert (first.recorded, first.failed, first.finished_job) == (8, 0, False)
    before = _results(migrated_engine, company_id, job.id)
    replay = process_range(migrated_engine, classifiers, job.id, 0, 8)
    assert (replay.recorded, replay.finished_job) == (0, False)
    assert _results(migrated_engine, company_id, job.id) == before
    last = process_range(migrated_engine, classifiers, job.id, 8, 12)
    assert (last.recorded, last.finished_job) == (4, True)
    again = process_range(migrated_engine, classifiers, job.id, 0, 12)
    assert (again.recorded, again.finished_job) == (0, False)  # the job finishes only once
    info = repo.get_job(migrated_engine, company_id, job.id)
    assert (info.state, info.done, info.failed) == ("finished", 12, 0)
    assert repo.count_items(migrated_engine, company_id, job.id) == {"done": 12}


def test_the_same_range_run_twice_at_once_counts_each_document_once(
    migrated_engine: Engine, company_id: str, construction: Company
) -> None:
    job = _job(migrated_engine, company_id, construction.files(30))
    finished: list[bool] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        classifiers = Classifiers(migrated_engine)  # as two worker processes would
        barrier.wait()
        finished.append(process_range(migrated_engine, classifiers, job.id, 0, 30).finished_job)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(finished) == [False, False, True]
    info = repo.get_job(migrated_engine, company_id, job.id)
    assert (info.done, info.failed, info.state) == (30, 0, "finished")
    assert repo.count_items(migrated_engine, company_id, job.id) == {"done": 30}


def test_a_document_the_engine_chokes_on_fails_alone(
    migrated_engine: Engine,
    company_id: str,
    construction: Company,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = construction.files(6)
    poison_key = construction.documents[3].invoice.key
    real = ExpenseClassifier.classify

    def classify(self: Any, invoice: Any) -> Any:
        if invoice.key == poison_key:
            raise FloatingPointError("singular matrix")
        return real(self, invoice)

    monkeypatch.setattr(ExpenseClassifier, "classify", classify)
    job = _job(migrated_engine, company_id, files)
    outcome = process_range(migrated_engine, Classifiers(migrated_engine), job.id, 0, 6)
    assert (outcome.recorded, outcome.failed, outcome.finished_job) == (6, 1, True)
    states = [(i.state, i.error_code) for i in repo.iter_items(migrated_engine, company_id, job.id)]
    assert (
        states == [("done", None)] * 3 + [("failed", "classification_error")] + [("done", None)] * 2
    )


def test_a_job_of_refused_files_finishes_once(migrated_engine: Engine, company_id: str) -> None:
    job = _job(migrated_engine, company_id, [("a.xml", b"<no"), ("b.xml", b"")])
    assert (job.state, job.failed, job.total) == ("queued", 2, 2)
    classifiers = Classifiers(migrated_engine)
    assert process_range(migrated_engine, classifiers, job.id, 0, 2).finished_job
    assert not process_range(migrated_engine, classifiers, job.id, 0, 2).finished_job
    info = repo.get_job(migrated_engine, company_id, job.id)
    assert (info.state, info.done, info.failed) == ("finished", 0, 2)
    codes = [i.error_code for i in repo.iter_items(migrated_engine, company_id, job.id)]
    assert codes == ["unreadable_xml", "empty_file"]


def test_a_new_runner_resumes_unfinished_jobs_and_owed_webhooks(
    migrated_engine: Engine, company_id: str, construction: Company
) -> None:
    box = SecretBox(SECRET_KEY.encode())
    files = construction.files(12)
    items = ingest_files(
        Ingestor(migrated_engine, SiiKeyring.default()), company_id, files, source="cli"
    )
    hook = {"webhook_url": "https://odoo.example.cl/hook", "webhook_secret": box.encrypt(b"s3cret")}
    half, _ = repo.create_job(migrated_engine, company_id, items, source="cli", **hook)
    whole, _ = repo.create_job(migrated_engine, company_id, items[:3], source="cli", **hook)
    # the previous process got half of one job done, finished the other, and died before
    # delivering its webhook
    classifiers = Classifiers(migrated_engine)
    assert not process_range(migrated_engine, classifiers, half.id, 0, 5).finished_job
    assert process_range(migrated_engine, classifiers, whole.id, 0, 3).finished_job
    received: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200)

    runner = InProcessRunner(
        migrated_engine,
        box,
        JobsConfig(jobs_chunk_size=4),
        http_client=lambda: httpx.Client(transport=httpx.MockTransport(answer)),
    )
    try:
        assert runner.resume() == 1
        runner.wait(half.id, timeout=60)
        runner.wait(whole.id, timeout=60)
    finally:
        runner.shutdown()
    info = repo.get_job(migrated_engine, company_id, half.id)
    assert (info.state, info.done, info.failed) == ("finished", 12, 0)
    assert sorted(r.headers["X-DteAi-Delivery"] for r in received) == sorted(
        [f"job-{half.id}", f"job-{whole.id}"]
    )
    assert repo.owed_webhooks(migrated_engine, 12) == []


def test_the_celery_app_acknowledges_late_and_stays_in_its_namespace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ai_service.jobs import tasks

    monkeypatch.setenv("DTE_AI_CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("DTE_AI_JOBS_QUEUE", "q-of-this-test")
    monkeypatch.setenv("DTE_AI_JOBS_KEY_PREFIX", "prefix-of-this-test:")
    monkeypatch.setattr(tasks, "_app", None)
    app = tasks.app  # what `celery -A ai_service.jobs.tasks worker` finds
    assert app is tasks.app
    conf = app.conf
    assert (conf.task_acks_late, conf.task_reject_on_worker_lost) == (True, True)
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_default_queue == "q-of-this-test"
    assert conf.broker_transport_options["global_keyprefix"] == "prefix-of-this-test:"
    assert conf.result_backend_transport_options["global_keyprefix"] == "prefix-of-this-test:"
    classify = app.tasks[tasks.CLASSIFY_RANGE]
    assert (classify.acks_late, classify.reject_on_worker_lost) == (True, True)
    assert tasks.DELIVER_WEBHOOK in app.tasks
    monkeypatch.setattr(tasks, "_app", None)
