"""Hostile input: every bad packet is dropped and counted, and the server keeps answering."""

from __future__ import annotations

import logging
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyrad.packet import AccessAccept
from pyrad.server_async import ServerType

from jasiyo.radius.backend import NasClient
from jasiyo.radius.memory import MemoryBackend
from jasiyo.radius.server import MAX_PACKET, _Protocol
from tests.support.props import examples

from .conftest import SECRET, ServerThread, acct_request, auth_request, decode_reply


def good_auth(radius: ServerThread, udp: Any) -> None:
    """The server still answers a valid request."""
    req = auth_request(User_Name="alice", User_Password="alice-pw")
    raw = udp(radius.server.auth_port).exchange(req.RequestPacket())
    assert raw is not None and decode_reply(req, raw).code == AccessAccept


def valid_auth_bytes() -> bytes:
    return auth_request(User_Name="alice", User_Password="alice-pw").RequestPacket()


@pytest.mark.parametrize(
    ("make", "counter"),
    [
        (lambda: b"", "dropped_truncated"),
        (lambda: valid_auth_bytes()[:19], "dropped_truncated"),
        # Length field says more than arrived
        (lambda: valid_auth_bytes()[:-5], "dropped_truncated"),
        (lambda: valid_auth_bytes()[:2] + b"\x00\x10" + valid_auth_bytes()[4:], "dropped_truncated"),
        (lambda: valid_auth_bytes() + b"\x00" * MAX_PACKET, "dropped_oversized"),
        (lambda: valid_auth_bytes()[:2] + struct.pack("!H", 5000) + b"\x00" * 4980,
         "dropped_oversized"),
        # an attribute whose length byte is 1 (< 2): undecodable
        (lambda: b"\x01\x07\x00\x17" + b"A" * 16 + b"\x01\x01\x00", "dropped_malformed"),
        # one bit flipped in the signed attributes: Message-Authenticator no longer matches
        (lambda: _flip(valid_auth_bytes(), -3), "dropped_bad_authenticator"),
        # an Accounting-Request sent to the auth port, an Access-Accept sent to us
        (lambda: acct_request(Acct_Status_Type="Start").RequestPacket(), "dropped_bad_code"),
        (lambda: b"\x02" + valid_auth_bytes()[1:], "dropped_bad_code"),
    ],
)  # fmt: skip
def test_bad_datagrams_dropped_and_counted(radius: ServerThread, udp: Any, make: Any, counter: str) -> None:
    client = udp(radius.server.auth_port)
    assert client.exchange(make(), timeout=0.3) is None
    assert radius.wait_for(lambda: getattr(radius.stats, counter) >= 1), radius.stats
    assert getattr(radius.stats, counter) == 1, radius.stats
    assert radius.stats.dropped == 1
    good_auth(radius, udp)


def _flip(data: bytes, index: int) -> bytes:
    b = bytearray(data)
    b[index] ^= 0x01
    return bytes(b)


def test_wrong_secret_dropped_on_both_ports(radius: ServerThread, udp: Any) -> None:
    req = auth_request(secret=b"wrong", User_Name="alice", User_Password="alice-pw")
    assert udp(radius.server.auth_port).exchange(req.RequestPacket(), timeout=0.3) is None
    acct = acct_request(secret=b"wrong", Acct_Status_Type="Start", Acct_Session_Id="x")
    assert udp(radius.server.acct_port).exchange(acct.RequestPacket(), timeout=0.3) is None
    assert radius.wait_for(lambda: radius.stats.dropped_bad_authenticator == 2), radius.stats
    assert radius.backend.records == []
    good_auth(radius, udp)


def test_unknown_nas_dropped_counted_logged_once(udp: Any, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, "jasiyo.radius")
    backend = MemoryBackend()
    backend.add_nas(NasClient("elsewhere", "192.0.2.1", SECRET))  # not us
    st = ServerThread(backend)
    try:
        for _ in range(3):
            req = auth_request(User_Name="alice", User_Password="alice-pw")
            assert udp(st.server.auth_port).exchange(req.RequestPacket(), timeout=0.3) is None
        assert st.wait_for(lambda: st.stats.dropped_unknown_nas == 3), st.stats
        assert sum("radius.unknown_nas" in r.getMessage() for r in caplog.records) == 1
        # a router added while running is served at once
        backend.add_nas(NasClient("core-1", "127.0.0.1", SECRET))
        from .conftest import make_backend

        backend.add_subject(make_backend().subjects["alice"])
        good_auth(st, udp)
    finally:
        st.close()


def test_retransmission_in_flight_is_ignored(radius: ServerThread, udp: Any) -> None:
    """While the first copy waits for its commit, copies are not queued again."""
    client = udp(radius.server.acct_port)
    data = acct_request(Acct_Status_Type="Start", Acct_Session_Id="dup").RequestPacket()
    for _ in range(5):
        client.sock.sendto(data, ("127.0.0.1", client.port))
    replies = [client.receive(1.0) for _ in range(5)]
    answered = [r for r in replies if r is not None]
    assert answered and all(r == answered[0] for r in answered)
    s = radius.stats
    assert radius.wait_for(lambda: s.duplicates_in_flight + s.duplicates_resent == 4), s
    assert s.accounting_requests == 1
    assert len(radius.backend.records) == 1


# ------------------------------------------------------------------ property-based fuzzing


class Recorder:
    """Stands in for the UDP transport: records what the server would send."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return False


def _feed(radius: ServerThread, kind: ServerType, data: bytes) -> Recorder:
    """Run the server's datagram handler on ``data`` inside its loop, as a socket would."""
    server = radius.server

    async def go() -> Recorder:
        proto = _Protocol("127.0.0.1", 0, server.logger, server, kind, {}, None)
        proto.transport = Recorder()
        server.datagram(proto, data, ("127.0.0.1", 50000))
        return proto.transport

    return radius.call(go())


def _base_packets() -> list[tuple[ServerType, bytes]]:
    auth = auth_request(User_Name="alice", User_Password="alice-pw")
    auth["MS-CHAP-Challenge"] = b"\x01" * 16
    acct = acct_request(
        User_Name="alice", Acct_Status_Type="Interim-Update", Acct_Session_Id="f",
        Acct_Input_Octets=1, Acct_Input_Gigawords=2, Framed_IP_Address="10.0.0.1",
        Mikrotik_Rate_Limit="1M/1M",
    )  # fmt: skip
    return [(ServerType.Auth, auth.RequestPacket()), (ServerType.Acct, acct.RequestPacket())]


BASES = _base_packets()


@st.composite
def hostile(draw: st.DrawFn) -> tuple[ServerType, bytes, bytes]:
    kind, base = draw(st.sampled_from(BASES))
    how = draw(st.sampled_from(["random", "flip", "splice", "truncate", "extend"]))
    if how == "random":
        return kind, base, draw(st.binary(min_size=0, max_size=5000))
    data = bytearray(base)
    if how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
    elif how == "splice":
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.binary(min_size=1, max_size=64))
    elif how == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    else:
        data += draw(st.binary(min_size=1, max_size=300))
    return kind, base, bytes(data)


@settings(
    max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=hostile())
def test_fuzz_handler_never_raises_never_answers_invalid(
    radius: ServerThread, case: tuple[ServerType, bytes, bytes]
) -> None:
    kind, base, data = case
    before = radius.stats.received
    recorder = _feed(radius, kind, data)  # raising here would fail the test
    assert radius.stats.received == before + 1
    assert radius.stats.dropped_internal_error == 0  # every bad input has a named reason
    if kind is ServerType.Acct:
        radius.sync()  # accounting is answered after its commit
    length = int.from_bytes(data[2:4], "big") if len(data) >= 4 else 0
    # valid means: the signed part (up to Length) is the untouched original; octets past
    # the Length field are padding the RFC says to ignore
    valid = len(data) <= MAX_PACKET and length == len(base) and data[:length] == base
    if recorder.sent:
        assert valid, f"answered an invalid packet: {data.hex()}"


class FlakyStore(MemoryBackend):
    """A backend whose subscriber lookup fails, like a locked database."""

    broken = True

    def subject(self, username: str) -> Any:
        if self.broken:
            raise RuntimeError("database is locked")
        return super().subject(username)


def test_backend_failure_drops_request_and_server_recovers(udp: Any) -> None:
    from .conftest import make_backend

    backend = FlakyStore()
    template = make_backend()
    backend.nases.update(template.nases)
    backend.subjects.update(template.subjects)
    st = ServerThread(backend)
    try:
        req = auth_request(User_Name="alice", User_Password="alice-pw")
        client = udp(st.server.auth_port)
        assert client.exchange(req.RequestPacket(), timeout=0.3) is None
        assert st.wait_for(lambda: st.stats.dropped_backend_error == 1), st.stats
        backend.broken = False
        # the NAS's retransmission (same bytes) is handled afresh, not ignored as in flight
        raw = client.exchange(req.RequestPacket())
        assert raw is not None and decode_reply(req, raw).code == AccessAccept
    finally:
        st.close()
