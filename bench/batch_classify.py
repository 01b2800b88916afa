"""Batch classification throughput through real Celery workers on the local Redis.

    .venv/bin/python bench/batch_classify.py [--invoices 10000] [--workers 1 2]
        [--database-url URL] [--redis redis://127.0.0.1:6379/0]

Generates a construction company (``ai_service.synth``): its context (600 invoices of history
with the accountant's decisions) and ``--invoices`` later invoices as DTE XML, ingested through
the real ingestion (stored raw, verified, deduplicated). Then, for each worker count, starts
``python -m ai_service.jobs.worker --concurrency N`` (prefork: N worker processes), warms every
process up (each builds the company's classifier once), submits one job referencing every
invoice and times it from dispatch until the job is finished in the database. Prints invoices/s
per worker count and the speed-up against the first count, measured in the same run.
The goal (issue 5): >= 100 invoices/s on 2 cores with the local engine.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

SECRET_KEY = "bench-secret-key-0123456789-0123456789"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _setup(url: str, n: int, seed: int) -> tuple[object, str, list[str]]:
    from ai_service.db.migrate import upgrade_to_head
    from ai_service.ingest.service import Ingestor
    from ai_service.repositories import context as context_repo
    from ai_service.repositories.companies import create_company
    from ai_service.secrets import SecretBox
    from ai_service.synth import generate_company
    from ai_service.synth.dte_xml import to_dte_xml
    from dte_core.caf import SiiKeyring
    from dte_core.storage import create_engine_for

    upgrade_to_head(url)
    engine = create_engine_for(url)
    started = time.perf_counter()
    history = generate_company("construction", seed, n_invoices=600).context
    later = generate_company("construction", seed, n_invoices=int(n * 1.2))
    assert later.context.company_rut == history.company_rut
    seen, documents = set(), []
    for doc in later.documents:
        if doc.invoice.key not in seen:
            seen.add(doc.invoice.key)
            documents.append(doc)
    if len(documents) < n:
        raise SystemExit(f"the generator gave only {len(documents)} distinct invoices")
    documents = documents[:n]
    _log(f"generated {n} invoices in {time.perf_counter() - started:.1f} s")
    company, _ = create_company(
        engine, SecretBox(SECRET_KEY.encode()), rut=str(history.company_rut), name="Constructora"
    )
    batches = []
    for name in ("accounts", "projects", "suppliers", "invoices", "decisions"):
        kind = context_repo.BY_FIELD[name]
        batches.append((kind, list(getattr(history, name))))
    context_repo.upsert(engine, company.id, batches)
    ingestor = Ingestor(engine, SiiKeyring.default())
    started = time.perf_counter()
    ids = []
    for doc in documents:
        result = ingestor.ingest(
            company.id, to_dte_xml(doc.invoice, history.company_name), source="cli"
        )
        ids.extend(d.id for d in result.documents if d.id)
    elapsed = time.perf_counter() - started
    _log(f"ingested {len(ids)} documents in {elapsed:.1f} s ({len(ids) / elapsed:.0f}/s)")
    return engine, company.id, ids


def _worker(url: str, redis: str, queue: str, prefix: str, n: int, data: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DTE_AI_DATABASE_URL": url,
        "DTE_AI_DATA_DIR": str(data),
        "DTE_AI_SECRET_KEY": SECRET_KEY,
        "DTE_AI_CELERY_BROKER_URL": redis,
        "DTE_AI_JOBS_QUEUE": queue,
        "DTE_AI_JOBS_KEY_PREFIX": prefix,
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ai_service.jobs.worker",
            "--concurrency",
            str(n),
            "--hostname",
            f"bench-{queue}@localhost",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _run_job(engine: object, company_id: str, ids: list[str], dispatcher: object) -> float:
    from ai_service.jobs import repository as repo
    from ai_service.jobs.models import NewItem

    job, _ = repo.create_job(engine, company_id, [NewItem(i) for i in ids], source="cli")  # type: ignore[arg-type]
    started = time.perf_counter()
    dispatcher.dispatch(job.id, job.total)  # type: ignore[attr-defined]
    while True:
        info = repo.get_job(engine, company_id, job.id)  # type: ignore[arg-type]
        if info.finished:
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    if info.done != len(ids):
        raise SystemExit(f"job {job.id}: {info.done} done, {info.failed} failed of {len(ids)}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chunk", type=int, default=50, help="documents per task")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    import redis as redis_client

    from ai_service.jobs.config import JobsConfig
    from ai_service.jobs.runner import CeleryDispatcher

    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    engine, company_id, ids = _setup(url, args.invoices, args.seed)
    tag = uuid.uuid4().hex[:10]
    queue, prefix = f"bench-{tag}", f"bench-{tag}:"
    config = JobsConfig(
        celery_broker_url=args.redis,
        jobs_queue=queue,
        jobs_key_prefix=prefix,
        jobs_chunk_size=args.chunk,
    )
    dispatcher = CeleryDispatcher(config)
    figures: dict[int, float] = {}
    notes: dict[int, str] = {}
    try:
        for n in args.workers:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            load = os.getloadavg()[0]
            proc = _worker(url, args.redis, queue, prefix, n, tmp / "data")
            try:
                # every process builds the classifier on its first task: not part of the batch
                _run_job(engine, company_id, ids[: args.chunk * n * 4], dispatcher)
                elapsed = _run_job(engine, company_id, ids, dispatcher)
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(60)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            figures[n] = len(ids) / elapsed
            # other work on the machine takes cores from the workers: show how busy it was
            notes[n] = f"workers' CPU {cpu:.1f} s (with start-up), load average before {load:.2f}"
            _log(f"{n} worker process(es): {len(ids)} invoices in {elapsed:.1f} s")
    finally:
        dispatcher.shutdown()
        client = redis_client.Redis.from_url(args.redis)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
    base = args.workers[0]
    backend = url.split(":")[0]
    print(f"batch classification: {len(ids)} invoices, local engine, chunk {args.chunk}, {backend}")
    for n, rate in figures.items():
        speedup = rate / figures[base]
        print(f"  {n} worker process(es): {rate:8.1f} invoices/s   speed-up x{speedup:.2f}")
        print(f"      {notes[n]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
