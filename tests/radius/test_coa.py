"""The CoA / Disconnect client against a small UDP listener playing a MikroTik NAS."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from pyrad.packet import CoANAK, CoAPacket, CoARequest, DisconnectNAK, DisconnectRequest

from jasiyo.errors import RadiusError
from jasiyo.radius import coa
from jasiyo.radius.backend import NasClient
from jasiyo.radius.dictionaries import load_dictionary

SECRET = b"coa-secret"


@dataclass
class FakeNas(asyncio.DatagramProtocol):
    """Answers Disconnect/CoA like RouterOS: ACK for a known session, NAK 503 otherwise.

    Requests that fail the Request Authenticator or Message-Authenticator check are
    ignored, as a NAS does. ``drop_first`` requests are ignored to exercise retries.
    """

    sessions: dict[str, str] = field(default_factory=lambda: {"81a0000c": "alice"})
    drop_first: int = 0
    silent: bool = False
    received: list[CoAPacket] = field(default_factory=list)
    transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        pkt = CoAPacket(secret=SECRET, dict=load_dictionary(), packet=data)
        if not pkt.VerifyCoARequest() or not pkt.message_authenticator:
            return
        if not pkt.verify_message_authenticator():
            return
        self.received.append(pkt)
        if self.silent or self.drop_first:
            self.drop_first = max(0, self.drop_first - 1)
            return
        reply = pkt.CreateReply()
        reply.message_authenticator = True
        sid = pkt["Acct-Session-Id"][0] if "Acct-Session-Id" in pkt else ""
        if self.sessions.get(sid) != pkt["User-Name"][0]:
            reply.code = DisconnectNAK if pkt.code == DisconnectRequest else CoANAK
            reply["Error-Cause"] = "Session-Context-Not-Found"
        elif pkt.code == DisconnectRequest:
            del self.sessions[sid]
        self.transport.sendto(reply.ReplyPacket(), addr)


async def with_nas(nas_proto: FakeNas, fn: Any) -> Any:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: nas_proto, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        return await fn(NasClient("core-1", "127.0.0.1", SECRET, coa_port=port))
    finally:
        transport.close()
        await asyncio.sleep(0)


def test_disconnect_ack_removes_session() -> None:
    nas = FakeNas()
    attrs = coa.session_attributes("alice", "81a0000c", "100.64.0.5")
    result = asyncio.run(with_nas(nas, lambda n: coa.disconnect(n, attrs, timeout=1)))
    assert result.status is coa.CoAStatus.ACK and result.ok and result.attempts == 1
    assert nas.sessions == {}
    sent = nas.received[0]
    assert sent.code == DisconnectRequest
    assert sent["Framed-IP-Address"] == ["100.64.0.5"]


def test_disconnect_unknown_session_is_nak_with_error_cause() -> None:
    nas = FakeNas()
    attrs = coa.session_attributes("alice", "nope")
    result = asyncio.run(with_nas(nas, lambda n: coa.disconnect(n, attrs, timeout=1)))
    assert result.status is coa.CoAStatus.NAK and not result.ok
    assert result.error_cause == 503
    assert result.error_cause_name == "Session-Context-Not-Found"


def test_coa_change_rate_limit_ack() -> None:
    nas = FakeNas()
    attrs = {**coa.session_attributes("alice", "81a0000c"), "Mikrotik-Rate-Limit": "2M/2M"}
    result = asyncio.run(with_nas(nas, lambda n: coa.change(n, attrs, timeout=1)))
    assert result.ok
    assert nas.received[0].code == CoARequest
    assert nas.received[0]["Mikrotik-Rate-Limit"] == ["2M/2M"]
    assert nas.sessions == {"81a0000c": "alice"}  # a CoA does not end the session


def test_retries_then_ack() -> None:
    nas = FakeNas(drop_first=2)
    attrs = coa.session_attributes("alice", "81a0000c")
    result = asyncio.run(with_nas(nas, lambda n: coa.disconnect(n, attrs, timeout=0.3, retries=3)))
    assert result.ok and result.attempts == 3
    # retransmissions are the same request (same Identifier and authenticator)
    assert len({(p.id, p.authenticator) for p in nas.received}) == 1


def test_timeout_when_nas_is_silent() -> None:
    nas = FakeNas(silent=True)
    attrs = coa.session_attributes("alice", "81a0000c")
    result = asyncio.run(with_nas(nas, lambda n: coa.disconnect(n, attrs, timeout=0.2, retries=2)))
    assert result.status is coa.CoAStatus.TIMEOUT and result.attempts == 2
    assert len(nas.received) == 2


def test_reply_signed_with_another_secret_is_not_believed() -> None:
    nas = FakeNas()

    async def go(n: NasClient) -> coa.CoAResult:
        wrong = NasClient(n.name, n.address, b"other-secret", coa_port=n.coa_port)
        return await coa.disconnect(wrong, coa.session_attributes("alice", "81a0000c"),
                                    timeout=0.2, retries=1)  # fmt: skip

    # the NAS ignores our request (bad authenticator), so: timeout, session untouched
    result = asyncio.run(with_nas(nas, go))
    assert result.status is coa.CoAStatus.TIMEOUT
    assert nas.sessions == {"81a0000c": "alice"}


def test_request_without_session_identity_refused() -> None:
    nas_client = NasClient("core-1", "127.0.0.1", SECRET, coa_port=9)
    with pytest.raises(RadiusError, match="User-Name or Acct-Session-Id"):
        coa.disconnect_sync(nas_client, {"Framed-IP-Address": "10.0.0.1"})
    with pytest.raises(RadiusError, match="cannot encode"):
        coa.disconnect_sync(nas_client, {"User-Name": "a", "No-Such-Attribute": "x"})


def test_sync_wrapper_from_plain_code() -> None:
    nas = FakeNas()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        transport, _ = await loop.create_datagram_endpoint(lambda: nas, local_addr=("127.0.0.1", 0))
        holder["transport"] = transport
        holder["port"] = transport.get_extra_info("sockname")[1]
        ready.set()

    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    asyncio.run_coroutine_threadsafe(serve(), loop)
    assert ready.wait(5)
    try:
        client = NasClient("core-1", "127.0.0.1", SECRET, coa_port=holder["port"])
        result = coa.disconnect_sync(client, coa.session_attributes("alice", "81a0000c"))
        assert result.ok and nas.sessions == {}
    finally:

        async def close() -> None:
            holder["transport"].close()
            await asyncio.sleep(0)  # let the transport finish closing its socket

        asyncio.run_coroutine_threadsafe(close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        t.join(5)
        loop.close()
