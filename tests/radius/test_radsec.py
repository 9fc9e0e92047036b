"""RadSec (RFC 6614) over real TLS sockets: identification, answers, framing and limits.

The server is the real RadiusServer + RadsecServer over a MemoryBackend; the client is the
ssl module with certificates made by :mod:`jasiyo.radius.pki` (and a second, foreign CA).
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyrad.packet import AccessAccept, AccountingResponse, AuthPacket, StatusServer

from jasiyo.radius import pki
from jasiyo.radius.backend import NasClient
from jasiyo.radius.dictionaries import load_dictionary
from jasiyo.radius.radsec import RADSEC_SECRET, RadsecServer, RadsecSettings
from tests.support.props import examples

from .conftest import RATE, ServerThread, acct_request, auth_request, decode_reply, make_backend


@dataclass
class Pki:
    dir: Path
    foreign: Path

    def client(self, name: str, foreign: bool = False) -> pki.Issued:
        return pki.issue(self.foreign if foreign else self.dir, name, out=self.dir / "clients")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: Any) -> Pki:
    base = tmp_path_factory.mktemp("radsec")
    pki.make_ca(base / "ca", "test-agent", ["127.0.0.1"])
    pki.make_ca(base / "foreign", "someone-else", ["127.0.0.1"])
    return Pki(base / "ca", base / "foreign")


class RadsecThread(ServerThread):
    def __init__(self, certs: Pki, **kw: Any) -> None:
        backend = make_backend()
        # the RadSec router: its own NAS address, identified by certificate only
        backend.add_nas(NasClient("pop-tls", "10.9.0.1", b"unused-udp-secret"))
        super().__init__(backend)
        self.radsec = RadsecServer(self.server, RadsecSettings(
            certificate=certs.dir / "server.pem", private_key=certs.dir / "server.key",
            ca=certs.dir / "ca.pem", port=0, **kw))  # fmt: skip
        self.call(self.radsec.start())

    def close(self) -> None:
        try:
            self.call(self.radsec.stop())
        finally:
            super().close()


@pytest.fixture
def radsec(certs: Pki) -> Iterator[RadsecThread]:
    st_ = RadsecThread(certs, record_timeout=1.0, idle_timeout=5.0)
    try:
        yield st_
    finally:
        st_.close()


def connect(server: RadsecThread, certs: Pki, issued: pki.Issued, tls12: bool = False) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(certs.dir / "ca.pem"))
    ctx.load_cert_chain(issued.certificate, issued.private_key)
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    raw = socket.create_connection(("127.0.0.1", server.radsec.port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def read_packet(sock: ssl.SSLSocket) -> bytes | None:
    """One RADIUS packet from the stream; None if the server closed it."""
    buf = b""
    try:
        while len(buf) < 4:
            chunk = sock.recv(4 - len(buf))
            if not chunk:
                return None
            buf += chunk
        length = int.from_bytes(buf[2:4], "big")
        while len(buf) < length:
            chunk = sock.recv(length - len(buf))
            if not chunk:
                return None
            buf += chunk
    except (ssl.SSLError, ConnectionError):
        return None
    return buf


def pap(**kw: Any) -> AuthPacket:
    return auth_request(secret=RADSEC_SECRET, User_Name="alice", User_Password="alice-pw", **kw)


def answered(server: RadsecThread, certs: Pki, issued: pki.Issued) -> bool:
    with connect(server, certs, issued) as s:
        req = pap()
        s.sendall(req.RequestPacket())
        raw = read_packet(s)
        return raw is not None and decode_reply(req, raw).code == AccessAccept


def test_pinned_router_gets_accept_accounting_and_status_server(radsec: RadsecThread, certs: Pki) -> None:
    issued = certs.client("anything")  # the name is not a router's: the pin identifies it
    radsec.backend.radsec_pins[issued.fingerprint] = "10.9.0.1"
    with connect(radsec, certs, issued) as s:
        req = pap()
        s.sendall(req.RequestPacket())
        reply = decode_reply(req, read_packet(s) or b"")
        assert reply.code == AccessAccept
        assert reply["Mikrotik-Rate-Limit"] == [RATE]

        acct = acct_request(
            secret=RADSEC_SECRET, User_Name="alice", Acct_Status_Type="Start", Acct_Session_Id="tls-1"
        )
        s.sendall(acct.RequestPacket())
        assert decode_reply(acct, read_packet(s) or b"").code == AccountingResponse
        assert [r.nas_address for r in radsec.backend.records] == ["10.9.0.1"]

        status = AuthPacket(
            code=StatusServer, secret=RADSEC_SECRET, dict=load_dictionary(), message_authenticator=True
        )
        status.authenticator = status.CreateAuthenticator()
        s.sendall(status.RequestPacket())
        assert decode_reply(status, read_packet(s) or b"").code == AccessAccept
    assert radsec.stats.status_server == 1


def test_router_named_in_certificate_is_known_without_a_pin(radsec: RadsecThread, certs: Pki) -> None:
    assert answered(radsec, certs, certs.client("pop-tls"))


def test_certificate_naming_no_router_is_refused(radsec: RadsecThread, certs: Pki) -> None:
    assert not answered(radsec, certs, certs.client("stranger"))
    assert radsec.radsec.stats["refused_unknown_certificate"] == 1
    assert radsec.stats.access_requests == 0


def test_pinned_router_refuses_another_certificate_with_its_name(radsec: RadsecThread, certs: Pki) -> None:
    pinned = certs.client("pop-tls")
    radsec.backend.radsec_pins[pinned.fingerprint] = "10.9.0.1"
    assert answered(radsec, certs, pinned)
    assert not answered(radsec, certs, certs.client("pop-tls"))  # same name, other key


def test_certificate_of_another_ca_is_refused_in_the_handshake(radsec: RadsecThread, certs: Pki) -> None:
    foreign = certs.client("pop-tls", foreign=True)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with connect(radsec, certs, foreign, tls12=True) as s:  # TLS 1.2: inside the handshake
            s.sendall(pap().RequestPacket())
            s.recv(1)
    # TLS 1.3 finishes the client's side first; the server's alert ends it before any answer
    assert not answered(radsec, certs, foreign)
    assert radsec.stats.access_requests == 0
    assert radsec.wait_for(lambda: radsec.radsec.stats["refused_handshake"] == 2)


def test_client_without_certificate_is_refused(radsec: RadsecThread, certs: Pki) -> None:
    ctx = ssl.create_default_context(cafile=str(certs.dir / "ca.pem"))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    raw = socket.create_connection(("127.0.0.1", radsec.radsec.port), timeout=5)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        ctx.wrap_socket(raw, server_hostname="127.0.0.1").close()
    raw.close()
    assert radsec.wait_for(lambda: radsec.radsec.stats["refused_handshake"] == 1)


# ------------------------------------------------------------------ framing and limits


def test_oversized_length_closes_the_connection_only(radsec: RadsecThread, certs: Pki) -> None:
    issued = certs.client("pop-tls")
    with connect(radsec, certs, issued) as s:
        s.sendall(b"\x01\x01\xff\xff" + b"\x00" * 64)
        assert read_packet(s) is None  # closed: the framing is lost
    assert radsec.wait_for(lambda: radsec.radsec.stats["closed_framing"] == 1)
    assert radsec.stats.dropped_oversized == 1
    assert answered(radsec, certs, issued)


def test_partial_record_times_out_and_the_server_still_answers(radsec: RadsecThread, certs: Pki) -> None:
    issued = certs.client("pop-tls")
    with connect(radsec, certs, issued) as s:
        s.sendall(pap().RequestPacket()[:30])  # a header promising more than ever comes
        s.settimeout(10)
        assert read_packet(s) is None
    assert radsec.wait_for(lambda: radsec.radsec.stats["closed_slow"] == 1)
    assert answered(radsec, certs, issued)


def test_idle_connection_closed(certs: Pki) -> None:
    server = RadsecThread(certs, idle_timeout=0.5)
    try:
        with connect(server, certs, certs.client("pop-tls")) as s:
            s.settimeout(10)
            assert read_packet(s) is None  # closed by the server, nothing sent
        assert server.wait_for(lambda: server.radsec.stats["closed_idle"] == 1)
    finally:
        server.close()


def test_slowloris_connections_do_not_stop_service(radsec: RadsecThread, certs: Pki) -> None:
    # twenty TCP connections that never finish a TLS handshake, and one per router trickling
    idle = [socket.create_connection(("127.0.0.1", radsec.radsec.port)) for _ in range(20)]
    for s in idle:
        s.sendall(b"\x16\x03")  # the first bytes of a ClientHello, then nothing
    try:
        issued = certs.client("pop-tls")
        trickle = connect(radsec, certs, issued)
        for byte in pap().RequestPacket()[:10]:
            trickle.sendall(bytes([byte]))
        assert answered(radsec, certs, issued)
        trickle.close()
    finally:
        for s in idle:
            s.close()


def test_connections_per_router_are_limited(certs: Pki) -> None:
    server = RadsecThread(certs, max_per_router=2)
    held: list[ssl.SSLSocket] = []
    try:
        issued = certs.client("pop-tls")
        held += [connect(server, certs, issued) for _ in range(2)]
        for s in held:  # make sure both are past identification
            req = pap()
            s.sendall(req.RequestPacket())
            assert read_packet(s) is not None
        assert not answered(server, certs, issued)
        assert server.radsec.stats["refused_limit"] == 1
        held[0].close()
        deadline = time.monotonic() + 10
        while not answered(server, certs, issued):
            assert time.monotonic() < deadline, "a freed slot was never reused"
            time.sleep(0.05)
    finally:
        for s in held:
            s.close()
        server.close()


def _pieces() -> st.SearchStrategy[bytes]:
    """Stream pieces: whole valid requests, cut ones, headers with impossible lengths,
    duplicated attributes, and noise."""
    valid = st.builds(lambda: pap().RequestPacket())
    return st.one_of(
        valid,
        st.tuples(valid, st.integers(1, 60)).map(lambda t: t[0][: t[1]]),  # partial record
        st.integers(4097, 65535).map(lambda n: b"\x01\x07" + n.to_bytes(2, "big")),  # too big
        st.integers(0, 19).map(lambda n: b"\x01\x07" + n.to_bytes(2, "big")),  # too small
        valid.map(lambda d: d[:2] + (len(d) + 3).to_bytes(2, "big") + d[4:] + b"\x01\x03a"),
        st.binary(min_size=0, max_size=600),
    )


@settings(
    max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_pieces(), min_size=1, max_size=8), st.booleans())
def test_fuzz_stream_never_stops_the_server(
    radsec: RadsecThread, certs: Pki, pieces: list[bytes], trickle: bool
) -> None:
    """Whatever a client writes (at once, or a byte at a time), the next client is served."""
    issued = certs.client("pop-tls")
    with connect(radsec, certs, issued) as s:
        s.settimeout(2)
        try:
            for piece in pieces:
                if trickle:
                    for i in range(0, len(piece), 7):
                        s.sendall(piece[i : i + 7])
                else:
                    s.sendall(piece)
        except (ssl.SSLError, ConnectionError):
            pass  # the server closed it (framing lost): allowed
    assert answered(radsec, certs, issued)
    assert radsec.stats.dropped_internal_error == 0
