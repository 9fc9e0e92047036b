"""A Dynamic Authorization client (RFC 5176): Disconnect-Request and CoA-Request to a NAS.

MikroTik applies address lists and pools only at login, so suspending a subscriber means
a Disconnect-Request and letting re-authentication apply the new state; a CoA-Request can
change the rate of a live session (``Mikrotik-Rate-Limit``). The session is named by
User-Name + Acct-Session-Id (+ Framed-IP-Address when known): :func:`session_attributes`.

    result = await disconnect(nas, session_attributes("alice", "81a00012"))
    if result.status is CoAStatus.NAK: print(result.error_cause_name)

Requests carry a Message-Authenticator; replies are checked (Response Authenticator and
Message-Authenticator) before they are believed. :func:`disconnect_sync` and
:func:`change_sync` are for callers without an event loop, such as the CLI.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from pyrad.packet import (
    CoAACK,
    CoANAK,
    CoAPacket,
    CoARequest,
    DisconnectACK,
    DisconnectNAK,
    DisconnectRequest,
)

from jasiyo.errors import RadiusError
from jasiyo.log import event, get_logger
from jasiyo.radius.accounting import nas_session_id
from jasiyo.radius.backend import NasClient
from jasiyo.radius.dictionaries import load_dictionary

log = get_logger(__name__)

AttrValue = str | int | bytes


class CoAStatus(StrEnum):
    ACK = "ack"
    NAK = "nak"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class CoAResult:
    """What the NAS said. ``error_cause`` is the Error-Cause of a NAK (RFC 5176 3.5)."""

    status: CoAStatus
    attempts: int
    error_cause: int | None = None
    error_cause_name: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is CoAStatus.ACK


def session_attributes(
    username: str, acct_session_id: str, framed_ip: str | None = None
) -> dict[str, AttrValue]:
    """The attributes that identify one session to the NAS (the session id as the NAS sent
    it: without the NAS-Port the agent adds for a generic NAS, see
    :func:`jasiyo.radius.accounting.nas_session_id`)."""
    attrs: dict[str, AttrValue] = {"User-Name": username, "Acct-Session-Id": nas_session_id(acct_session_id)}
    if framed_ip:
        attrs["Framed-IP-Address"] = framed_ip
    return attrs


async def disconnect(
    nas: NasClient,
    attrs: Mapping[str, AttrValue],
    *,
    timeout: float = 2.0,
    retries: int = 3,
    port: int | None = None,
) -> CoAResult:
    """Send a Disconnect-Request; ACK means the session is gone.

    ``retries`` is the number of sends; each waits ``timeout`` seconds. ``port`` overrides
    ``nas.coa_port``. RadiusError for attributes the dictionary cannot encode.
    """
    return await _exchange(nas, DisconnectRequest, attrs, timeout, retries, port)


async def change(
    nas: NasClient,
    attrs: Mapping[str, AttrValue],
    *,
    timeout: float = 2.0,
    retries: int = 3,
    port: int | None = None,
) -> CoAResult:
    """Send a CoA-Request: the session attributes plus what to change."""
    return await _exchange(nas, CoARequest, attrs, timeout, retries, port)


def disconnect_sync(nas: NasClient, attrs: Mapping[str, AttrValue], **kw: float) -> CoAResult:
    """:func:`disconnect` for code without an event loop (the CLI)."""
    return asyncio.run(disconnect(nas, attrs, **kw))  # type: ignore[arg-type]


def change_sync(nas: NasClient, attrs: Mapping[str, AttrValue], **kw: float) -> CoAResult:
    """:func:`change` for code without an event loop (the CLI)."""
    return asyncio.run(change(nas, attrs, **kw))  # type: ignore[arg-type]


# ------------------------------------------------------------------ the exchange


class _ReplyProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.replies.put_nowait(data)


def _build(nas: NasClient, code: int, attrs: Mapping[str, AttrValue]) -> tuple[CoAPacket, bytes]:
    if not attrs.get("User-Name") and not attrs.get("Acct-Session-Id"):
        raise RadiusError("a CoA or Disconnect request needs User-Name or Acct-Session-Id")
    pkt = CoAPacket(code=code, secret=nas.secret, dict=load_dictionary(),
                    message_authenticator=True)  # fmt: skip
    try:
        for name, value in attrs.items():
            pkt.AddAttribute(name, value)
        return pkt, pkt.RequestPacket()
    except (KeyError, ValueError, TypeError) as exc:
        raise RadiusError(f"cannot encode the CoA request attribute: {exc}") from exc


def _accept_reply(request: CoAPacket, raw: bytes) -> CoAPacket | None:
    """The decoded reply if it answers ``request`` and is signed with our secret."""
    try:
        reply = request.CreateReply(packet=raw)
    except Exception:  # noqa: BLE001 - anything undecodable is not an answer
        return None
    ok_codes = (DisconnectACK, DisconnectNAK) if request.code == DisconnectRequest else (CoAACK, CoANAK)
    if reply.code not in ok_codes or not request.VerifyReply(reply, raw):
        return None
    return reply


async def _exchange(
    nas: NasClient,
    code: int,
    attrs: Mapping[str, AttrValue],
    timeout: float,
    retries: int,
    port: int | None,
) -> CoAResult:
    request, data = _build(nas, code, attrs)
    target = (nas.address, port or nas.coa_port)
    kind = "disconnect" if code == DisconnectRequest else "coa"
    loop = asyncio.get_running_loop()
    try:
        transport, proto = await loop.create_datagram_endpoint(_ReplyProtocol, remote_addr=target)
    except OSError as exc:
        raise RadiusError(f"cannot reach {nas.name} at {target[0]}:{target[1]}: {exc}") from exc
    try:
        for attempt in range(1, max(1, retries) + 1):
            transport.sendto(data)  # the same bytes each time: the NAS can spot the repeat
            reply = await _wait_reply(proto, request, timeout)
            if reply is not None:
                return _result(nas, kind, reply, attempt)
        event(log, "radius.coa", logging.WARNING, nas=nas.name, kind=kind, result="timeout",
              attempts=max(1, retries))  # fmt: skip
        return CoAResult(CoAStatus.TIMEOUT, attempts=max(1, retries))
    finally:
        transport.close()
        await asyncio.sleep(0)  # one loop turn: the socket is closed now, not at exit


async def _wait_reply(proto: _ReplyProtocol, request: CoAPacket, timeout: float) -> CoAPacket | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (left := deadline - loop.time()) > 0:
        try:
            raw = await asyncio.wait_for(proto.replies.get(), left)
        except TimeoutError:
            return None
        reply = _accept_reply(request, raw)
        if reply is not None:
            return reply
        # a stray or forged datagram: keep waiting for the real answer
    return None


def _result(nas: NasClient, kind: str, reply: CoAPacket, attempts: int) -> CoAResult:
    if reply.code in (DisconnectACK, CoAACK):
        event(log, "radius.coa", nas=nas.name, kind=kind, result="ack", attempts=attempts)
        return CoAResult(CoAStatus.ACK, attempts)
    raw_cause = dict.get(reply, 101)
    cause = int.from_bytes(raw_cause[0], "big") if raw_cause and len(raw_cause[0]) == 4 else None
    name = None
    if cause is not None:
        values = load_dictionary().attributes["Error-Cause"].values
        encoded = cause.to_bytes(4, "big")
        name = values.GetBackward(encoded) if values.HasBackward(encoded) else str(cause)
    event(log, "radius.coa", logging.WARNING, nas=nas.name, kind=kind, result="nak",
          error_cause=name, attempts=attempts)  # fmt: skip
    return CoAResult(CoAStatus.NAK, attempts, cause, name)
