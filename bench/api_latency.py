"""Latency of each AI endpoint with the local engines, 32 requests in flight, over loopback.

Starts ``dte-ai serve`` on a fresh SQLite database, loads a generated construction company
(the seeded generator), then fires requests from 32 concurrent clients at each endpoint and
prints p50/p95 next to ``/healthz`` measured the same way (the cost of HTTP, auth and the
event loop alone), the analyze throughput, and the server's RSS.

    .venv/bin/python bench/api_latency.py [--requests 400] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ADMIN = "bench-admin-token-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(tmp: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DTE_AI_DATA_DIR": str(tmp),
        "DTE_AI_DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
        "DTE_AI_SECRET_KEY": "bench-secret-key-0123456789abcdefghij",
        "DTE_AI_ADMIN_TOKEN": ADMIN,
        "DTE_AI_RATE_LIMIT": "1000000/minute",
    }
    exe = Path(sys.executable).with_name("dte-ai")
    proc = subprocess.Popen(
        [str(exe), "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start")


async def _hammer(
    client: httpx.AsyncClient, path: str, bodies: list[Any], total: int, concurrency: int
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def worker() -> None:
        nonlocal errors
        for i in counter:
            body = bodies[i % len(bodies)]
            started = time.perf_counter()
            if body is None:
                response = await client.get(path)
            else:
                response = await client.post(path, json=body)
            latencies.append((time.perf_counter() - started) * 1000)
            errors += response.status_code >= 400

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def _run(args: argparse.Namespace, port: int) -> list[tuple[str, list[float], int]]:
    from ai_service.synth.generator import generate_company
    from tests.issuing_kit import factura

    company = generate_company("construction", 777, n_invoices=args.invoices)
    context, future = company.split(0.7)
    data = context.model_dump(mode="json")
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=60) as admin:
        created = await admin.post(
            "/v1/companies",
            json={"rut": str(context.company_rut), "name": "Bench"},
            headers={"X-Admin-Token": ADMIN},
        )
        key = created.json()["api_key"]["key"]
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as client:
        sections = ("accounts", "projects", "suppliers", "purchase_orders", "receipts")
        sections += ("invoices", "decisions")
        loaded = await client.put("/v1/context", json={k: data[k] for k in sections})
        loaded.raise_for_status()
        invoices = [{"invoice": d.invoice.model_dump(mode="json")} for d in future[:200]]
        await client.post("/v1/analyze", json=invoices[0])  # build the engines once
        rebuilt = await client.post("/v1/index/rebuild")  # loads the embedding model
        rebuilt.raise_for_status()
        doc = factura(33)
        doc["Encabezado"]["Emisor"]["RUTEmisor"] = str(context.company_rut)
        questions = [
            {"question": q}
            for q in ("¿Cuál es la tasa del IVA?", "plazo para reclamar una factura", "CAF vencido")
        ]
        plan = [
            ("GET /healthz (reference)", "/healthz", [None]),
            ("POST /v1/validate", "/v1/validate", [doc]),
            ("POST /v1/classify", "/v1/classify", invoices),
            ("POST /v1/match/project", "/v1/match/project", invoices),
            ("POST /v1/reconcile", "/v1/reconcile", invoices),
            ("POST /v1/anomalies", "/v1/anomalies", invoices),
            ("POST /v1/analyze (1 doc)", "/v1/analyze", invoices),
            ("POST /v1/suggestions", "/v1/suggestions", invoices),
            ("POST /v1/chat", "/v1/chat", questions),
        ]
        similar = [
            ("GET /v1/index/similar", f"/v1/index/similar?text={t}")
            for t in ("cemento", "arriendo grua")
        ]
        out = []
        for label, path, bodies in plan:
            latencies, errors = await _hammer(client, path, bodies, args.requests, args.concurrency)
            out.append((label, latencies, errors))
        for label, path in similar[:1]:
            latencies, errors = await _hammer(client, path, [None], args.requests, args.concurrency)
            out.append((label, latencies, errors))
        return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--invoices", type=int, default=1500)
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        proc = _start(Path(tmp), port, args.workers)
        try:
            server = psutil.Process(proc.pid)
            started = time.perf_counter()
            results = asyncio.run(_run(args, port))
            elapsed = time.perf_counter() - started
            rss = sum(p.memory_info().rss for p in [server, *server.children(True)]) / 2**20
        finally:
            proc.terminate()
            proc.wait(10)
    reference = _pct(results[0][1], 95)
    print(
        f"{args.concurrency} concurrent clients, {args.requests} requests per endpoint, "
        f"{args.workers} server worker(s)"
    )
    print(f"{'endpoint':32s} {'p50 ms':>8s} {'p95 ms':>8s} {'p95/ref':>8s} {'req/s':>8s} errors")
    for label, latencies, errors in results:
        p50, p95 = _pct(latencies, 50), _pct(latencies, 95)
        rate = len(latencies) / (sum(latencies) / 1000 / args.concurrency)
        print(f"{label:32s} {p50:8.1f} {p95:8.1f} {p95 / reference:8.1f} {rate:8.1f} {errors}")
    analyze = next(r for r in results if r[0].startswith("POST /v1/analyze"))
    docs_per_s = len(analyze[1]) / (sum(analyze[1]) / 1000 / args.concurrency)
    print(f"analyze throughput: {docs_per_s:.1f} documents/s")
    print(f"server RSS at the end: {rss:.0f} MiB (engines built, embedding model loaded)")
    print(f"total bench time: {elapsed:.1f} s")


if __name__ == "__main__":
    main()
