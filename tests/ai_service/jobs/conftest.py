"""Fixtures for batch classification: a generated construction company (context in the API,
later invoices as DTE XML), a second company, poisoned documents, and Redis for real workers."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from ai_service.jobs.config import JobsConfig
from ai_service.synth import SyntheticCompany, SyntheticInvoice, generate_company
from ai_service.synth.dte_xml import to_dte_xml
from tests.ai_service.conftest import Tenant, create_tenant

SEED = 31
CONTEXT_SECTIONS = ("accounts", "projects", "suppliers", "invoices", "decisions")
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(autouse=True)
def _no_jobs_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's DTE_AI_CELERY_* / DTE_AI_JOBS_* must not reach a test."""
    for name in JobsConfig.model_fields:
        monkeypatch.delenv(f"DTE_AI_{name.upper()}", raising=False)


@dataclass(frozen=True)
class Company:
    synthetic: SyntheticCompany
    context_body: dict[str, Any]
    documents: list[SyntheticInvoice]  # received after the context's decisions

    @property
    def rut(self) -> str:
        return str(self.synthetic.context.company_rut)

    @property
    def name(self) -> str:
        return self.synthetic.context.company_name

    def xml(self, doc: SyntheticInvoice) -> bytes:
        return to_dte_xml(doc.invoice, self.name)

    def files(self, n: int | None = None) -> list[tuple[str, bytes]]:
        docs = self.documents if n is None else self.documents[:n]
        return [(f"{d.invoice.key.replace(':', '--')}.xml", self.xml(d)) for d in docs]

    @property
    def accounts(self) -> set[str]:
        return {a.code for a in self.synthetic.context.accounts}


def _company(kind: str, n_invoices: int) -> Company:
    synthetic = generate_company(kind, SEED, n_invoices=n_invoices)
    context, later = synthetic.split(0.7)
    seen: set[str] = set()
    documents = []
    for doc in later:  # exact duplicates would be deduplicated by the ingestion
        if doc.invoice.key not in seen and doc.invoice.key not in context.invoice_by_key:
            seen.add(doc.invoice.key)
            documents.append(doc)
    body = {
        name: [item.model_dump(mode="json") for item in getattr(context, name)]
        for name in CONTEXT_SECTIONS
    }
    return Company(synthetic, body, documents)


@pytest.fixture(scope="session")
def construction() -> Company:
    return _company("construction", 400)


@pytest.fixture(scope="session")
def restaurant() -> Company:
    return _company("restaurant", 120)


def tenant_with_context(client: TestClient, company: Company) -> Tenant:
    tenant = create_tenant(client, company.rut, company.name)
    response = client.put("/v1/context", json=company.context_body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return tenant


def without_detalle(xml: bytes) -> bytes:
    """A DTE whose lines were stripped: ingested (it has emisor, tipo, folio), unreadable as an
    invoice."""
    root = etree.fromstring(xml)
    for det in root.findall(".//{*}Detalle"):
        det.getparent().remove(det)
    out = etree.tostring(root, encoding="ISO-8859-1", xml_declaration=True)
    assert isinstance(out, bytes)
    return out


def make_zip(entries: list[tuple[str, bytes]], **kw: Any) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, **kw) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def redis_namespace() -> Iterator[tuple[str, str]]:
    """A queue name and key prefix of this test only; every key under it is deleted after."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: start it (tests need it)")
    tag = uuid.uuid4().hex[:12]
    prefix = f"dte-ai-test-{tag}:"
    try:
        yield f"dte-ai-test-{tag}", prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
