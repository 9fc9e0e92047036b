"""RADIUS test helpers: a real RadiusServer in a thread over a MemoryBackend, packets built
by pyrad's client side, a tiny UDP client and FreeRADIUS's radclient.

The server runs in its own event loop thread, so tests stay plain functions and can drive
it with real clients (pyrad packets over UDP, or radclient).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
from pyrad.packet import AcctPacket, AuthPacket, Packet

from jasiyo.network import Access, DesiredState, Service, mikrotik_rate_limit
from jasiyo.radius.backend import AuthSubject, NasClient
from jasiyo.radius.dictionaries import DICTIONARY_DIR, load_dictionary
from jasiyo.radius.memory import MemoryBackend
from jasiyo.radius.server import RadiusServer

SECRET = b"testing123"
RATE = mikrotik_rate_limit("10M/10M", "20M/20M 8M/8M 16/16")


def state(username: str, access: Access = Access.ALLOW, **kw: Any) -> DesiredState:
    base: dict[str, Any] = dict(
        username=username,
        service=Service.PPPOE,
        access=access,
        rate_limit=RATE,
        plan="home-10",
        interim_interval=300,
    )
    base.update(kw)
    return DesiredState(**base)


def make_backend() -> MemoryBackend:
    b = MemoryBackend()
    b.add_nas(NasClient("core-1", "127.0.0.1", SECRET))
    b.add_subject(AuthSubject("alice", "alice-pw", state("alice", session_timeout=86400)))
    b.add_subject(AuthSubject("bob", "bob-pw", state("bob", Access.REJECT)))
    b.add_subject(
        AuthSubject(
            "carol",
            "carol-pw",
            state("carol", Access.WALLED_GARDEN, rate_limit="256k/256k", address_list="suspended"),
        )
    )
    b.add_subject(AuthSubject("dave", "dave-pw", state("dave", service=Service.STATIC, ip="100.64.0.9")))
    return b


class ServerThread:
    """A RadiusServer in a background event loop."""

    def __init__(self, backend: MemoryBackend, **kw: Any) -> None:
        self.backend = backend
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = RadiusServer(backend, "127.0.0.1", 0, 0, **kw)
        self.call(self.server.start())

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def sync(self) -> None:
        """Give the loop a moment to handle what it has already received."""
        self.call(asyncio.sleep(0.05))

    def wait_for(self, condition: Any, timeout: float = 10.0) -> bool:
        """Poll ``condition()`` until true; False after ``timeout`` (a slow box, not a bug)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        try:
            self.call(self.server.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    @property
    def stats(self) -> Any:
        return self.server.stats


# ------------------------------------------------------------------ a tiny UDP client


@dataclass
class Client:
    """Sends raw datagrams to one port from one socket; returns the reply bytes or None."""

    port: int
    sock: socket.socket

    def exchange(self, data: bytes, timeout: float = 5.0) -> bytes | None:
        self.sock.sendto(data, ("127.0.0.1", self.port))
        return self.receive(timeout)

    def receive(self, timeout: float = 5.0) -> bytes | None:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65535)
        except TimeoutError:
            return None


def auth_request(secret: bytes = SECRET, ma: bool = True, **attrs: Any) -> AuthPacket:
    """An Access-Request built by pyrad's client side (with Message-Authenticator)."""
    pkt = AuthPacket(secret=secret, dict=load_dictionary(), message_authenticator=ma)
    pkt.authenticator = pkt.CreateAuthenticator()
    for name, value in attrs.items():
        name = name.replace("_", "-")
        if name == "User-Password":
            value = pkt.PwCrypt(value)
        pkt.AddAttribute(name, value)
    return pkt


def acct_request(secret: bytes = SECRET, **attrs: Any) -> AcctPacket:
    pkt = AcctPacket(secret=secret, dict=load_dictionary())
    for name, value in attrs.items():
        pkt.AddAttribute(name.replace("_", "-"), value)
    return pkt


def decode_reply(request: Packet, raw: bytes) -> Packet:
    """Decode and verify a reply (Response Authenticator, Message-Authenticator)."""
    reply = request.CreateReply(packet=raw)
    assert request.VerifyReply(reply, raw, enforce_ma=request.code in (1, 12)), "bad reply"
    return reply


# ------------------------------------------------------------------ radclient

RADCLIENT = shutil.which("radclient")


@dataclass
class RadclientResult:
    returncode: int
    code: str | None  # "Access-Accept", "Accounting-Response", ... or None (no answer)
    attrs: dict[str, list[str]]
    output: str


def radclient(port: int, kind: str, text: str, secret: bytes = SECRET, timeout: int = 5) -> RadclientResult:
    """Run radclient once with ``text`` as its input; parse the reply it printed.

    ``-d`` points at our shipped dictionaries (FreeRADIUS format), so the Mikrotik- names
    radclient prints are the ones the server encoded. One try, short timeout: a dropped
    request shows as code None (so tests expecting a drop pass a short ``timeout``).
    """
    if RADCLIENT is None:
        pytest.skip("radclient (freeradius-utils) is not installed")
    proc = subprocess.run(
        [RADCLIENT, "-x", "-r", "1", "-t", str(timeout), "-d", str(DICTIONARY_DIR),
         f"127.0.0.1:{port}", kind, secret.decode()],
        input=text, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    m = re.search(r"Received (\S+) Id \d+", out)
    attrs: dict[str, list[str]] = {}
    if m:
        for line in out[m.end() :].splitlines():
            am = re.match(r"\s+([A-Za-z0-9-]+) = (.*)$", line)
            if am:
                attrs.setdefault(am.group(1), []).append(am.group(2).strip().strip('"'))
            elif line and not line.startswith((" ", "\t")):
                break
    return RadclientResult(proc.returncode, m.group(1) if m else None, attrs, out)
