"""Fixtures: a simulator with a hand-driven clock, clients over WSGI or over a loopback server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from dte_core.sii.boleta import BoletaClient
from dte_core.sii.client import SiiClient
from dte_core.sii.reclamo import ReclamoClient
from dte_core.sii.simstate import SimulatorConfig
from dte_core.sii.simulator import SiiSimulator, SimulatorServer
from dte_core.sii.transport import CircuitBreaker, RetryPolicy, SiiTransport
from tests.dte_core.sii import envelopes


@dataclass
class Clock:
    """Seconds since the epoch, moved only by the test."""

    now: float = 1_764_590_400.0  # 2025-12-01 12:00 UTC

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Sleeps:
    """Stands in for time.sleep in retries: records the waits instead of waiting."""

    waits: list[float]

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> SiiSimulator:
    return SiiSimulator(SimulatorConfig(keyring=envelopes.keyring(), clock=clock))


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps([])


def make_transport(
    sleeps: Sleeps,
    *,
    app: SiiSimulator | None = None,
    attempts: int = 3,
    threshold: int = 5,
    clock: Clock | None = None,
    timeout: float = 5.0,
) -> SiiTransport:
    return SiiTransport(
        transport=httpx.WSGITransport(app=app) if app is not None else None,
        timeout=timeout,
        retry=RetryPolicy(attempts=attempts, initial=0.1, maximum=1.0, jitter=0.1),
        breaker=CircuitBreaker(
            failure_threshold=threshold, reset_timeout=30.0, clock=clock or Clock()
        ),
        sleep=sleeps,
    )


@pytest.fixture
def client(sim: SiiSimulator, sleeps: Sleeps, clock: Clock) -> SiiClient:
    return SiiClient(
        envelopes.certificate(),
        base_url="http://maullin.sii.test",
        transport=make_transport(sleeps, app=sim),
        clock=clock,
    )


@pytest.fixture
def boleta_client(sim: SiiSimulator, sleeps: Sleeps, clock: Clock) -> BoletaClient:
    return BoletaClient(
        envelopes.certificate(),
        base_url="http://apicert.sii.test/recursos/v1",
        transport=make_transport(sleeps, app=sim),
        clock=clock,
    )


@pytest.fixture
def reclamo_client(client: SiiClient) -> ReclamoClient:
    return ReclamoClient(client)


@pytest.fixture
def server(sim: SiiSimulator) -> Iterator[SimulatorServer]:
    with SimulatorServer(sim) as running:
        yield running
