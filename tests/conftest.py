"""Suite-wide guards and shared fixtures.

No test may open a socket to anything but loopback: the SII, Anthropic and Ollama are
unreachable from CI, and a test that silently depends on the network is a defect.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

pytest_plugins = ["tests.dbfixtures"]

ROOT = Path(__file__).resolve().parents[1]
SHARED_SII = Path(os.environ.get("DTE_AI_SHARED_SII", ROOT.parent / "shared" / "sii"))

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _is_loopback(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


class NetworkBlockedError(RuntimeError):
    pass


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_loopback(address):
        raise NetworkBlockedError(f"test tried to reach {address!r}: only loopback is allowed")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _is_loopback(address):
        raise NetworkBlockedError(f"test tried to reach {address!r}: only loopback is allowed")
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    if host is not None and not _is_loopback((host,)) and host != "localhost":
        try:
            ipaddress.ip_address(str(host))
        except ValueError as exc:
            raise NetworkBlockedError(f"test tried to resolve {host!r}") from exc
    return _real_getaddrinfo(host, *args, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo


@pytest.fixture(scope="session")
def shared_sii() -> Path:
    if not SHARED_SII.is_dir():
        pytest.fail(f"shared SII material not found at {SHARED_SII} (set DTE_AI_SHARED_SII)")
    return SHARED_SII
