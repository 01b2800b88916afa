import socket

import pytest

from tests.conftest import NetworkBlockedError


def test_non_loopback_connect_is_blocked() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(NetworkBlockedError):
        s.connect(("203.0.113.7", 443))
    s.close()


def test_name_resolution_of_public_host_is_blocked() -> None:
    with pytest.raises(NetworkBlockedError):
        socket.getaddrinfo("www.sii.cl", 443)


def test_loopback_is_allowed() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.connect(server.getsockname())
    client.close()
    server.close()
