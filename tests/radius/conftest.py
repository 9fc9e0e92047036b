"""Fixtures: a real RadiusServer on 127.0.0.1 (free ports) over a MemoryBackend, and UDP
clients. The helpers are in ``tests/radius/support.py`` (re-exported here for old imports).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from jasiyo.radius.memory import MemoryBackend
from tests.radius.support import (
    RADCLIENT,
    RATE,
    SECRET,
    Client,
    RadclientResult,
    ServerThread,
    acct_request,
    auth_request,
    decode_reply,
    make_backend,
    radclient,
    state,
)

__all__ = [
    "RADCLIENT",
    "RATE",
    "SECRET",
    "Client",
    "RadclientResult",
    "ServerThread",
    "acct_request",
    "auth_request",
    "decode_reply",
    "make_backend",
    "radclient",
    "state",
]


@pytest.fixture
def backend() -> MemoryBackend:
    return make_backend()


@pytest.fixture
def radius(backend: MemoryBackend) -> Iterator[ServerThread]:
    st = ServerThread(backend)
    try:
        yield st
    finally:
        st.close()


@pytest.fixture
def udp() -> Iterator[Any]:
    socks: list[socket.socket] = []

    def make(port: int) -> Client:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        return Client(port, s)

    yield make
    for s in socks:
        s.close()
