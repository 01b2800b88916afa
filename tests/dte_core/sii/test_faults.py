"""Each injected fault and what the client does about it: retry, open the breaker, or refuse to
upload blindly."""

from __future__ import annotations

import socket

import pytest

from dte_core.sii.client import SiiClient
from dte_core.sii.codes import EstadoDte, EstadoEnvio
from dte_core.sii.errors import (
    SiiProtocolError,
    SiiServerError,
    SiiTransportError,
    SiiUnavailableError,
    UploadOutcomeUnknownError,
)
from dte_core.sii.simulator import Fault, SiiSimulator, SimulatorServer
from dte_core.sii.transport import NotSentError
from tests.dte_core.sii import envelopes
from tests.dte_core.sii.conftest import Clock, Sleeps, make_transport


def _calls(sim: SiiSimulator, path: str) -> int:
    return sum(1 for _, p, _ in sim.requests if p == path)


def test_5xx_on_a_query_is_retried_with_backoff(
    sim: SiiSimulator, client: SiiClient, sleeps: Sleeps
) -> None:
    sim.faults.add("CrSeed", Fault.SERVER_ERROR, times=2)
    assert len(client.get_seed()) == 12
    assert _calls(sim, "/DTEWS/CrSeed.jws") == 3
    assert len(sleeps.waits) == 2 and all(0 < w <= 1.1 for w in sleeps.waits)


def test_retries_give_up_after_the_policy_attempts(sim: SiiSimulator, client: SiiClient) -> None:
    sim.faults.add("CrSeed", Fault.SERVER_ERROR, times=3)
    with pytest.raises(SiiServerError) as info:
        client.get_seed()
    assert info.value.status_code == 503 and info.value.retryable
    assert _calls(sim, "/DTEWS/CrSeed.jws") == 3


def test_malformed_answer_is_retried(sim: SiiSimulator, client: SiiClient) -> None:
    sim.faults.add("CrSeed", Fault.MALFORMED)
    assert client.get_seed()
    assert _calls(sim, "/DTEWS/CrSeed.jws") == 2
    sim.faults.add("CrSeed", Fault.MALFORMED, times=3)
    with pytest.raises(SiiProtocolError):
        client.get_seed()


def test_breaker_opens_then_lets_one_trial_through(sim: SiiSimulator, sleeps: Sleeps) -> None:
    breaker_clock = Clock()
    transport = make_transport(sleeps, app=sim, attempts=3, threshold=2, clock=breaker_clock)
    client = SiiClient(envelopes.certificate(), base_url="http://sii.test", transport=transport)
    sim.faults.add("CrSeed", Fault.SERVER_ERROR, times=10)
    with pytest.raises(SiiUnavailableError):
        client.get_seed()  # two failures open it; the third attempt is refused locally
    assert _calls(sim, "/DTEWS/CrSeed.jws") == 2
    with pytest.raises(SiiUnavailableError) as info:
        client.get_seed()
    assert _calls(sim, "/DTEWS/CrSeed.jws") == 2  # nothing sent while open
    assert 0 < info.value.retry_after <= 30
    assert transport.breaker.state == "open"
    breaker_clock.advance(31)
    assert transport.breaker.state == "half_open"
    sim.faults.clear()
    assert client.get_seed()
    assert transport.breaker.state == "closed"


def test_timeout_over_a_real_socket_is_retried(
    sim: SiiSimulator, server: SimulatorServer, sleeps: Sleeps
) -> None:
    sim.faults.slow_seconds = 1.0
    transport = make_transport(sleeps, timeout=0.2)
    client = SiiClient(envelopes.certificate(), base_url=server.url, transport=transport)
    sim.faults.add("CrSeed", Fault.SLOW)
    assert client.get_seed()
    assert len(sleeps.waits) == 1


def test_connection_refused_is_a_transport_error_even_for_uploads(sleeps: Sleeps) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = SiiClient(
        envelopes.certificate(),
        base_url=f"http://127.0.0.1:{port}",
        transport=make_transport(sleeps, threshold=100),
    )
    with pytest.raises(NotSentError) as info:
        client.get_seed()
    assert isinstance(info.value, SiiTransportError) and info.value.retryable
    assert len(sleeps.waits) == 2  # three attempts, nothing ever reached a server


def test_upload_is_never_retried_blindly_after_a_5xx(sim: SiiSimulator, client: SiiClient) -> None:
    data = envelopes.facturas(100, 2)
    client.get_token()
    sim.faults.add("upload", Fault.SERVER_ERROR)
    with pytest.raises(UploadOutcomeUnknownError) as info:
        client.upload(data)
    assert isinstance(info.value.cause, SiiServerError) and not info.value.retryable
    assert _calls(sim, "/cgi_dte/UPL/DTEUpload") == 1
    # the caller checks first: nothing arrived, so uploading again is safe
    assert {s.estado for _, s in client.documents_status(data)} == {EstadoDte.FAU}
    receipt = client.upload(data)
    assert receipt.track_id is not None


def test_lost_receipt_shows_the_documents_arrived(
    sim: SiiSimulator, client: SiiClient, clock: Clock
) -> None:
    sim.sii.config.step_seconds = 10  # the SII processes on its own, nobody polls a track id
    data = envelopes.facturas(110, 2)
    sim.faults.add("upload", Fault.LOST_RESPONSE)
    with pytest.raises(UploadOutcomeUnknownError):
        client.upload(data)
    assert _calls(sim, "/cgi_dte/UPL/DTEUpload") == 1
    clock.advance(60)
    statuses = client.documents_status(data)
    assert [s.estado for _, s in statuses] == [EstadoDte.DOK, EstadoDte.DOK]  # do not resend


def test_upload_with_a_malformed_receipt_is_not_resent(
    sim: SiiSimulator, client: SiiClient
) -> None:
    sim.faults.add("upload", Fault.MALFORMED)
    with pytest.raises(UploadOutcomeUnknownError) as info:
        client.upload(envelopes.facturas(120, 1))
    assert isinstance(info.value.cause, SiiProtocolError)
    assert _calls(sim, "/cgi_dte/UPL/DTEUpload") == 1


def test_upload_timeout_over_a_real_socket_is_not_resent(
    sim: SiiSimulator, server: SimulatorServer, sleeps: Sleeps
) -> None:
    sim.faults.slow_seconds = 1.0
    client = SiiClient(
        envelopes.certificate(),
        base_url=server.url,
        transport=make_transport(sleeps, timeout=0.3),
    )
    client.get_token()
    sim.faults.add("upload", Fault.SLOW)
    with pytest.raises(UploadOutcomeUnknownError) as info:
        client.upload(envelopes.facturas(130, 1))
    assert isinstance(info.value.cause, SiiTransportError)
    assert _calls(sim, "/cgi_dte/UPL/DTEUpload") == 1


def test_expired_token_at_upload_is_renewed_and_the_file_sent_once_more(
    sim: SiiSimulator, client: SiiClient
) -> None:
    client.get_token()
    sim.sii.expire_tokens()  # STATUS 5: refused before registration, so resending is safe
    receipt = client.upload(envelopes.facturas(140, 1))
    assert receipt.track_id is not None
    assert _calls(sim, "/cgi_dte/UPL/DTEUpload") == 2
    assert len(sim.sii.envios) == 1
    status = client.wait_envio(receipt.track_id, rut_company=envelopes.EMISOR, sleep=lambda s: None)
    assert status.estado is EstadoEnvio.EPR and status.aceptados == 1


def test_lost_token_answer_restarts_from_a_new_seed(sim: SiiSimulator, client: SiiClient) -> None:
    # the SII consumed the seed, then the answer was lost: the same seed would get "NO Existe SEED"
    sim.faults.add("GetTokenFromSeed", Fault.LOST_RESPONSE)
    assert client.get_token()
    assert _calls(sim, "/DTEWS/CrSeed.jws") == 2
    assert _calls(sim, "/DTEWS/GetTokenFromSeed.jws") == 2
