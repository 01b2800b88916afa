"""An issuing company, the SII simulator on loopback, and outbox workers pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ai_service.outbox.wiring import build_worker
from ai_service.outbox.worker import OutboxWorker
from ai_service.secrets import SecretBox
from ai_service.settings import Settings
from dte_core.caf import SiiKeyring
from dte_core.sii.simstate import SimulatorConfig
from dte_core.sii.simulator import SiiSimulator, SimulatorServer
from tests.ai_service.conftest import Tenant
from tests.ai_service.test_dte import _doc, _ready, issue


@pytest.fixture
def sim(sii_key_pem: Path) -> SiiSimulator:
    keyring = SiiKeyring.default().with_trusted_key(sii_key_pem.read_bytes())
    return SiiSimulator(SimulatorConfig(keyring=keyring, step_seconds=None))


@pytest.fixture
def sim_server(sim: SiiSimulator) -> Iterator[SimulatorServer]:
    with SimulatorServer(sim) as server:
        yield server


@pytest.fixture
def worker_settings(settings: Settings, sim_server: SimulatorServer) -> Settings:
    return settings.model_copy(
        update={
            "sii_base_url": sim_server.url,
            "outbox_recovery_grace_seconds": 0.0,
            "outbox_batch_size": 2,
        }
    )


@pytest.fixture
def make_worker(worker_settings: Settings, migrated_engine: Engine) -> Callable[[], OutboxWorker]:
    box = SecretBox(worker_settings.secret_key_bytes())
    return lambda: build_worker(worker_settings, migrated_engine, box)


@dataclass
class Issuing:
    client: TestClient
    tenant: Tenant

    def issue_and_send(self, n: int, tipo: int = 33) -> list[str]:
        ids = []
        for _ in range(n):
            response = issue(self.client, self.tenant, _doc(self.tenant, tipo))
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        for doc_id in ids:
            sent = self.client.post(f"/v1/dte/{doc_id}/send", headers=self.tenant.headers)
            assert sent.status_code == 202, sent.text
        return ids

    def state(self, doc_id: str) -> Any:
        return self.client.get(f"/v1/dte/{doc_id}", headers=self.tenant.headers).json()


@pytest.fixture
def issuing(client: TestClient, tenant_a: Tenant, make_caf: Any) -> Issuing:
    _ready(client, tenant_a, make_caf)
    response = client.put(
        "/v1/sii/resolution",
        json={"fch_resol": "2014-08-22", "nro_resol": 0},
        headers=tenant_a.headers,
    )
    assert response.status_code == 200, response.text
    return Issuing(client, tenant_a)


def run_until_settled(worker: OutboxWorker, passes: int = 30) -> None:
    """Passes until nothing is left to do (the simulator advances one stage per poll)."""
    for _ in range(passes):
        report = worker.run_once()
        if not report.busy() and not report.pending and report.errors == 0:
            return
