"""The RADIUS server routers talk to: the wire half, on pyrad's ``ServerAsync``.

What pyrad does here: decode packets (``AuthPacket``/``AcctPacket``), verify
Message-Authenticator and Request Authenticators, build and sign replies (``CreateReply``,
``ReplyPacket``, Proxy-State copied, Message-Authenticator added). What this module adds:

* NAS secrets from :meth:`RadiusBackend.nas` per packet, so routers added while running
  are served at once; pyrad's static ``hosts`` dict is not used.
* Every datagram checked before decoding (size, code for the port, known NAS) and every
  drop counted in :class:`RadiusStats`; the server keeps answering whatever arrives.
* Message-Authenticator required on Access-Request (BlastRADIUS) unless the NAS opts out,
  which is logged once per NAS; required on Status-Server (RFC 5997), answered on both ports.
* PAP, CHAP and MS-CHAPv2; the decision is :func:`jasiyo.radius.policy.authorize`.
* Accounting durable before acknowledged, through :class:`GroupCommitWriter`.
* An RFC 5080 duplicate cache on both ports (:mod:`jasiyo.radius.dedup`).

Authentication is answered synchronously inside ``datagram_received``: it is CPU-only
(the backend lookup is in memory), so a task per packet would only add latency.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from pyrad.packet import (
    AccessReject,
    AccessRequest,
    AccountingRequest,
    AcctPacket,
    AuthPacket,
    Packet,
    PacketError,
    StatusServer,
)
from pyrad.server_async import DatagramProtocolServer, ServerAsync, ServerType

from jasiyo.errors import RadiusError
from jasiyo.log import event, get_logger
from jasiyo.radius import fastacct, fastpap, replies, strict
from jasiyo.radius.accounting import (
    GroupCommitWriter,
    PendingAcct,
    UnsupportedStatus,
    decode_attrs,
)
from jasiyo.radius.backend import AuthSubject, NasClient, RadiusBackend, Usage
from jasiyo.radius.dedup import DedupCache, DedupEntry, DedupKey
from jasiyo.radius.dictionaries import load_dictionary
from jasiyo.radius.fastdecide import GUARD_REJECT, FastDecisions, Fixed
from jasiyo.radius.guard import GuessGuard
from jasiyo.radius.metrics import Buckets, DropCounter
from jasiyo.radius.packets import FastAcctPacket, FastAuthPacket
from jasiyo.radius.policy import (
    REJECT_MESSAGE,
    AuthMethod,
    AuthRequest,
    Decision,
    authorize,
    needs_usage,
)

log = get_logger(__name__)

#: RFC 2865 section 3: the maximum length of a RADIUS packet.
MAX_PACKET = 4096

_AUTH_CODES = (AccessRequest, StatusServer)
_ACCT_CODES = (AccountingRequest, StatusServer)


@dataclass
class RadiusStats:
    """Counters since start. ``dropped`` sums every reason a packet was not answered."""

    received: int = 0
    access_requests: int = 0
    access_accepts: int = 0
    access_rejects: int = 0
    accounting_requests: int = 0
    accounting_responses: int = 0
    accounting_ignored: int = 0  # status types we acknowledge without storing
    status_server: int = 0
    duplicates_resent: int = 0  # retransmission answered from the cache
    duplicates_in_flight: int = 0  # retransmission ignored, original still in progress
    dropped_unknown_nas: int = 0
    dropped_truncated: int = 0  # shorter than a header, or than its Length field says
    dropped_oversized: int = 0  # over 4096 bytes
    dropped_malformed: int = 0  # attributes that do not decode
    dropped_duplicate_attribute: int = 0  # breaks RFC 2865/2869 counts (:mod:`.strict`)
    dropped_bad_code: int = 0  # not a request this port serves
    dropped_bad_authenticator: int = 0  # wrong Message-Authenticator / Request Authenticator
    dropped_missing_message_authenticator: int = 0
    dropped_backend_error: int = 0  # the backend raised looking up a NAS or a subscriber
    dropped_internal_error: int = 0  # a bug or an input nobody foresaw (logged)
    acct_batches: int = 0
    acct_write_failures: int = 0  # batches the backend failed to store (not answered)

    @property
    def dropped(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self) if f.name.startswith("dropped_"))

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "dropped": self.dropped}


class _Drop(Exception):
    """A packet we will not answer; ``counter`` names the RadiusStats field to count it in,
    ``nas`` the router it came from when known."""

    def __init__(self, counter: str, detail: str = "", nas: NasClient | None = None) -> None:
        super().__init__(detail or counter)
        self.counter = counter
        self.nas = nas


#: drops that are almost always a router misconfigured, not an attack: a person must see them
_LOUD_DROPS = {
    "dropped_bad_authenticator": (
        "radius.bad_secret",
        "the router's RADIUS secret differs from the one the agent has for it; set the same "
        "on both (`jasiyo router update NAME --radius-secret ...`)",
    ),
    "dropped_missing_message_authenticator": (
        "radius.missing_message_authenticator",
        "enable require-message-auth on the router (RouterOS 7: /radius set "
        "require-message-auth=yes), or, for a router that cannot, "
        "`jasiyo router update NAME --no-require-message-authenticator`",
    ),
}
#: at most one such warning per NAS and reason in this many seconds
LOUD_DROP_INTERVAL = 60.0


#: Datagrams read per wake-up at most, so one busy port cannot starve the other.
_DRAIN = 64


class _Protocol(DatagramProtocolServer):
    """pyrad's transport, with reception routed through :meth:`RadiusServer.datagram`.

    asyncio reads one datagram per selector wake-up. Under load that is a poll per packet,
    so after each datagram we read whatever else is already queued on the socket (``raw``,
    the non-blocking socket the transport wraps) before returning to the loop.
    """

    server: RadiusServer
    raw: socket.socket | None = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        handle = self.server.datagram
        handle(self, data, addr)
        raw = self.raw
        if raw is None:
            return
        for _ in range(_DRAIN):
            try:
                data, addr = raw.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP port unreachable reported on the socket
                self.error_received(exc)
                return
            handle(self, data, addr)


@dataclass(slots=True)
class _AcctContext:
    protocol: _Protocol
    reply: bytes  # the Accounting-Response, sent once the record is stored
    addr: tuple[str, int]
    key: DedupKey
    entry: DedupEntry
    received: float = 0.0  # perf_counter() on arrival, for the latency histogram


class RadiusServer(FastDecisions, ServerAsync):
    """Authentication and accounting for the routers the backend knows.

    ``auth_port``/``acct_port`` 0 picks free ports; after :meth:`start` the attributes hold
    the ports actually bound. ``auth_in_workers=True``: the auth socket is bound (and kept
    in :attr:`auth_socket`) but not read here; worker processes read it
    (:mod:`jasiyo.radius.workers`), each answering with a RadiusServer of its own that is
    never started.
    """

    def __init__(
        self,
        backend: RadiusBackend,
        address: str = "127.0.0.1",
        auth_port: int = 1812,
        acct_port: int = 1813,
        *,
        dedup_ttl: float = 30.0,
        dedup_max_entries: int = 65536,
        fast_pap: bool = True,
        auth_in_workers: bool = False,
    ) -> None:
        self.auth_port: int  # set by pyrad's __init__ (untyped), then to the bound ports
        self.acct_port: int
        super().__init__(
            auth_port=auth_port,
            acct_port=acct_port,
            hosts={},
            dictionary=load_dictionary(),
            logger_name="jasiyo.radius.pyrad",
            enforce_ma=True,
        )
        self.backend = backend
        self.address = address
        self.stats = RadiusStats()
        self.dedup = DedupCache(dedup_ttl, dedup_max_entries)
        self.guard = GuessGuard()
        self._writer: GroupCommitWriter | None = None
        self._warned_no_ma: set[str] = set()
        self._warned_unknown: set[str] = set()
        self._warned_drop: dict[tuple[str, str], float] = {}
        self.encoder = replies.AttributeEncoder(self.dict)
        #: plain PAP Access-Requests skip pyrad (:mod:`jasiyo.radius.fastpap`); False sends
        #: everything through pyrad (tests compare the two)
        self.fast_pap = fast_pap
        self._fast_attrs: dict[tuple[Any, ...], bytes | None] = {}
        #: id(subject) -> the answer to its right password when nothing else decides it
        self._fixed: dict[int, Fixed] = {}
        #: the backend reads usage (open sessions, data used): not every backend does
        self._has_usage = hasattr(backend, "usage")
        self.auth_in_workers = auth_in_workers
        #: the bound auth socket when ``auth_in_workers`` (non-blocking, shared with them)
        self.auth_socket: socket.socket | None = None
        #: for :mod:`jasiyo.radius.metrics`
        self.drops = DropCounter()
        self.auth_latency = Buckets()
        self.acct_latency = Buckets()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind both ports and start the accounting writer. RadiusError if a port is taken."""
        if self._writer is not None:
            raise RadiusError("the RADIUS server is already running")
        loop = asyncio.get_running_loop()
        self.loop = loop
        for kind in (ServerType.Auth, ServerType.Acct):
            port = self.auth_port if kind is ServerType.Auth else self.acct_port
            proto = _Protocol(self.address, port, self.logger, self, kind, {}, None)
            family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            shared = kind is ServerType.Auth and self.auth_in_workers
            try:
                sock.setblocking(False)
                sock.bind((self.address, port))
                _enlarge_buffers(sock)
                if not shared:
                    # a lambda with a default: mypy cannot type it; the default binds this proto
                    await loop.create_datagram_endpoint(lambda p=proto: p, sock=sock)  # type: ignore[misc]
            except OSError as exc:
                sock.close()
                await self.stop()
                raise RadiusError(
                    f"cannot listen for RADIUS on udp {self.address}:{port}: {exc.strerror or exc}"
                ) from exc
            if shared:
                self.auth_socket = sock
                self.auth_port = sock.getsockname()[1]
                continue
            proto.raw = sock
            proto.port = sock.getsockname()[1]
            if kind is ServerType.Auth:
                self.auth_port = proto.port
                self.auth_protocols.append(proto)
            else:
                self.acct_port = proto.port
                self.acct_protocols.append(proto)
        self._writer = GroupCommitWriter(self.backend, loop, self._acct_committed, self._acct_failed)
        self._writer.start()
        event(log, "radius.started", address=self.address, auth_port=self.auth_port,
              acct_port=self.acct_port)  # fmt: skip

    async def stop(self) -> None:
        """Stop listening, then store whatever accounting is still queued."""
        for proto in (*self.auth_protocols, *self.acct_protocols):
            proto.raw = None
        await self.deinitialize_transports()
        if self.auth_socket is not None:
            self.auth_socket.close()
            self.auth_socket = None
        if self._writer is not None:
            await self._writer.stop()
            self._writer = None
        event(log, "radius.stopped", **self.stats.as_dict())

    async def __aenter__(self) -> RadiusServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------ reception

    def datagram(
        self,
        protocol: _Protocol,
        data: bytes,
        addr: tuple[str, int],
        nas: NasClient | None = None,
    ) -> None:
        """Handle one datagram (or one RadSec record, ``nas`` then being the router its
        certificate names); never raises. Unanswered packets are counted by reason."""
        self.stats.received += 1
        started = time.perf_counter()
        try:
            self._receive(protocol, data, addr, nas)
            if data[0] == AccessRequest:
                self.auth_latency.observe(time.perf_counter() - started)
        except _Drop as drop:
            setattr(self.stats, drop.counter, getattr(self.stats, drop.counter) + 1)
            self.drops.add(drop.counter, drop.nas.name if drop.nas is not None else None)
            if drop.nas is not None and drop.counter in _LOUD_DROPS:
                self._warn_drop(drop, drop.nas, addr[0])
            else:
                event(log, "radius.drop", logging.DEBUG, reason=drop.counter,
                      detail=str(drop), src=addr[0], port=protocol.port)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - a path nobody foresaw: drop this packet, keep serving
            self.stats.dropped_internal_error += 1
            self.drops.add("dropped_internal_error", nas.name if nas is not None else None)
            # loud, but only for the first few: a packet that triggers it could be repeated
            if self.stats.dropped_internal_error <= 20:
                event(log, "radius.internal_error", logging.WARNING, src=addr[0],
                      error=f"{type(exc).__name__}: {exc}")  # fmt: skip

    def _warn_drop(self, drop: _Drop, nas: NasClient, source: str) -> None:
        """A WARNING naming the NAS, at most once a minute per NAS and reason: a router
        with the wrong secret retries every few seconds and must not flood the log."""
        now = time.monotonic()
        key = (nas.name, drop.counter)
        last = self._warned_drop.get(key)
        if last is not None and now - last < LOUD_DROP_INTERVAL:
            return
        if len(self._warned_drop) >= 4096:
            self._warned_drop.clear()
        self._warned_drop[key] = now
        name, hint = _LOUD_DROPS[drop.counter]
        event(log, name, logging.WARNING, nas=nas.name, src=source, detail=str(drop),
              dropped=getattr(self.stats, drop.counter), hint=hint)  # fmt: skip

    def _receive(
        self, protocol: _Protocol, data: bytes, addr: tuple[str, int], nas: NasClient | None
    ) -> None:
        size = len(data)
        if size > MAX_PACKET:
            raise _Drop("dropped_oversized", f"{size} bytes")
        if size < 20:
            raise _Drop("dropped_truncated", f"{size} bytes")
        length = (data[2] << 8) | data[3]
        if length > MAX_PACKET:
            raise _Drop("dropped_oversized", f"Length field {length}")
        if length < 20 or length > size:
            raise _Drop("dropped_truncated", f"Length field {length}, {size} bytes received")
        code = data[0]
        is_auth = protocol.server_type is ServerType.Auth
        if code not in (_AUTH_CODES if is_auth else _ACCT_CODES):
            raise _Drop("dropped_bad_code", f"code {code}")
        source = addr[0]
        if source.startswith("::ffff:") and "." in source:  # IPv4 client of a dual-stack socket
            source = source[7:]
        if nas is None:
            nas = self._lookup(self.backend.nas, source)
            if nas is None:
                self._unknown_nas(source)
                raise _Drop("dropped_unknown_nas")
        try:
            self._receive_from(protocol, data, addr, nas, source, code, is_auth, length)
        except _Drop as drop:
            if drop.nas is None:
                drop.nas = nas
            raise

    def _receive_from(
        self,
        protocol: _Protocol,
        data: bytes,
        addr: tuple[str, int],
        nas: NasClient,
        source: str,
        code: int,
        is_auth: bool,
        length: int,
    ) -> None:
        fields: fastpap.Fields | str | None = None
        acct: fastacct.Scanned | str | None = None
        if code == AccessRequest and self.fast_pap:
            fields = fastpap.scan(data, length)  # the attribute-count rules too, in one pass
            if type(fields) is str:
                raise _Drop("dropped_duplicate_attribute", fields)
        elif code == AccountingRequest:
            acct = fastacct.scan(data, length)  # the same rules, and the attributes
            if type(acct) is str:
                raise _Drop("dropped_duplicate_attribute", acct)
        if fields is None and acct is None:
            broken = strict.violation(data, length)
            if broken is not None:
                raise _Drop("dropped_duplicate_attribute", broken)

        key: DedupKey = (source, addr[1], code, data[1], data[4:20])
        if code != StatusServer:  # RFC 5997 section 3: Status-Server is never cached
            seen = self.dedup.get(key, data)
            if seen is not None:
                self._duplicate(protocol, seen, addr)
                return
            if fields is not None and self._fast_pap(protocol, data, addr, nas, key, fields, length):  # type: ignore[arg-type]
                return
            if acct is not None:  # without pyrad (fastacct): the same checks, in the same order
                wrong = fastacct.authentic(data, length, acct, nas.secret)  # type: ignore[arg-type]
                if wrong is not None:
                    raise _Drop("dropped_bad_authenticator", wrong)
                reply = fastacct.reply(data, acct, nas.secret)  # type: ignore[arg-type]
                entry = self.dedup.add(key, data)
                try:
                    ctx = _AcctContext(protocol, reply, addr, key, entry, time.perf_counter())
                    self._queue_acct(acct.attrs, nas, ctx)  # type: ignore[union-attr]
                except BaseException:
                    self.dedup.forget(key, entry)  # unanswered: a retransmission gets another try
                    raise
                return

        pkt: Packet
        try:
            pkt = (FastAuthPacket if is_auth else FastAcctPacket)(
                secret=nas.secret, dict=self.dict, packet=data
            )
        except Exception as exc:  # noqa: BLE001 - pyrad's PacketError, or worse on hostile bytes
            raise _Drop("dropped_malformed", str(exc)) from None
        self._verify(pkt, nas)

        if code == StatusServer:
            self.stats.status_server += 1
            self._send(protocol, pkt.CreateReply().ReplyPacket(), addr)
            return
        entry = self.dedup.add(key, data)
        try:
            if is_auth:
                self.handle_auth_packet(protocol, pkt, addr, nas=nas, entry=entry)
            else:
                self.handle_acct_packet(protocol, pkt, addr, nas=nas, key=key, entry=entry)
        except BaseException:
            self.dedup.forget(key, entry)  # unanswered: a retransmission gets another try
            raise

    def _verify(self, pkt: Packet, nas: NasClient) -> None:
        """pyrad's checks, with per-NAS policy on a missing Message-Authenticator."""
        if pkt.code == AccountingRequest:
            if not pkt.VerifyAcctRequest():
                raise _Drop("dropped_bad_authenticator", "Request Authenticator")
            if pkt.message_authenticator and not pkt.verify_message_authenticator():
                raise _Drop("dropped_bad_authenticator", "Message-Authenticator")
            return
        if pkt.message_authenticator:
            if not pkt.verify_message_authenticator():
                raise _Drop("dropped_bad_authenticator", "Message-Authenticator")
            return
        if pkt.code == StatusServer or nas.require_message_authenticator:
            raise _Drop("dropped_missing_message_authenticator", nas.name)
        self._warn_no_ma(nas)

    def _warn_no_ma(self, nas: NasClient) -> None:
        """Log, once per NAS, that it was served without a Message-Authenticator."""
        if nas.name not in self._warned_no_ma:
            self._warned_no_ma.add(nas.name)
            event(log, "radius.no_message_authenticator", logging.WARNING, nas=nas.name,
                  address=nas.address,
                  hint="this router is exposed to BlastRADIUS (CVE-2024-3596); enable "
                       "require-message-auth on it and remove the opt-out")  # fmt: skip

    @classmethod
    def _lookup(cls, fn: Any, arg: Any) -> Any:
        """A backend read; its failure drops the packet (the NAS retries) and is logged."""
        try:
            return fn(arg)
        except Exception as exc:
            raise cls._backend_failed(fn, exc) from exc

    @staticmethod
    def _backend_failed(fn: Any, exc: Exception) -> _Drop:
        """The drop for a backend read ``fn`` that raised ``exc`` (logged)."""
        event(log, "radius.backend_error", logging.ERROR, call=fn.__name__,
              error=f"{type(exc).__name__}: {exc}")  # fmt: skip
        return _Drop("dropped_backend_error", str(exc))

    def _unknown_nas(self, address: str) -> None:
        # warn once per address (bounded): a scan must not flood the log
        if address not in self._warned_unknown and len(self._warned_unknown) < 1024:
            self._warned_unknown.add(address)
            event(log, "radius.unknown_nas", logging.WARNING, src=address,
                  hint="add it with `jasiyo router add` if it is yours")  # fmt: skip

    def _duplicate(self, protocol: _Protocol, entry: DedupEntry, addr: tuple[str, int]) -> None:
        if entry.reply is None:
            self.stats.duplicates_in_flight += 1
        else:
            self.stats.duplicates_resent += 1
            self._send(protocol, entry.reply, addr)

    @staticmethod
    def _send(protocol: _Protocol, raw: bytes, addr: tuple[str, int]) -> None:
        transport = protocol.transport
        if transport is not None and not transport.is_closing():
            transport.sendto(raw, addr)

    # ------------------------------------------------------------ authentication

    def handle_auth_packet(
        self,
        protocol: _Protocol,
        pkt: AuthPacket,
        addr: tuple[str, int],
        *,
        nas: NasClient,
        entry: DedupEntry,
    ) -> None:
        """Answer a verified Access-Request: decide, build, sign, send, cache."""
        self.stats.access_requests += 1
        try:
            request = replies.auth_request(pkt)
        except PacketError as exc:  # e.g. a User-Password that is not whole 16-byte blocks
            raise _Drop("dropped_malformed", str(exc)) from None
        decision = self._decide(request, nas)
        raw, decision = self._auth_reply(pkt, decision, request.username)
        if decision.accept:
            self.stats.access_accepts += 1
        else:
            self.stats.access_rejects += 1
        entry.reply = raw
        self._send(protocol, raw, addr)
        self._log_auth(request.username, nas, request.method, decision)

    def _fast_pap(
        self,
        protocol: _Protocol,
        data: bytes,
        addr: tuple[str, int],
        nas: NasClient,
        key: DedupKey,
        fields: fastpap.Fields,
        length: int,
    ) -> bool:
        """Answer ``data`` (not a duplicate; ``fields`` what :func:`fastpap.scan` found) as
        :meth:`handle_auth_packet` would; False, with nothing done, to leave it to pyrad."""
        secret = nas.secret
        if not secret or type(secret) is not bytes:
            return False
        request = fastpap.verify(data, length, fields, secret, nas.require_message_authenticator)
        if request is None:
            return False
        if not request.signed:
            self._warn_no_ma(nas)
        username = request.username
        entry = self.dedup.add(key, data)
        stats = self.stats
        try:
            stats.access_requests += 1
            decision, attrs = self._fast_decide(request, nas)
            if attrs is None:  # a reply the fixed layout cannot express: pyrad builds it
                raw, decision = self._auth_reply(self._decode_auth(data, nas), decision, username)
            else:
                raw = fastpap.reply(data, request, secret, decision.accept, attrs)
        except BaseException:
            self.dedup.forget(key, entry)  # unanswered: a retransmission gets another try
            raise
        if decision.accept:
            stats.access_accepts += 1
        else:
            stats.access_rejects += 1
        entry.reply = raw
        self._send(protocol, raw, addr)
        self._log_auth(username, nas, AuthMethod.PAP, decision)
        return True

    def _decide(self, request: AuthRequest, nas: NasClient) -> Decision:
        """Look the subscriber up (and, if it has session limits, its open sessions and
        data used) and decide. A device guessing names is refused (:mod:`.guard`)."""
        now = time.time()
        if self.guard.blocked_device(nas.address, request.calling_station_id, now):
            return GUARD_REJECT
        subject = self._lookup(self.backend.subject, request.username)
        if subject is None:
            self.guard.unknown(self.guard.key(nas.address, request.calling_station_id), now)
        usage = None
        if subject is not None and self._has_usage and needs_usage(subject.state):
            usage = self._lookup(self._usage_of, subject)
        return authorize(request, subject, usage=usage, now=now, nas=nas)

    def _usage_of(self, subject: AuthSubject) -> Usage:
        return self.backend.usage(subject.username, subject.state.data_since)

    def _auth_reply(self, pkt: AuthPacket, decision: Decision, username: str) -> tuple[bytes, Decision]:
        """The signed reply to ``pkt`` and the decision it carries (an accept whose
        attributes cannot be encoded becomes a reject)."""
        reply = pkt.CreateReply()
        if decision.accept:
            try:
                replies.fill_accept(reply, pkt, decision, self.encoder.attributes(decision.reply))
            except (ValueError, TypeError, KeyError) as exc:  # a state pyrad cannot encode
                self._log_unencodable(username, exc)
                reply = pkt.CreateReply()
                decision = Decision(False, reason="reply attributes unencodable")
        if not decision.accept:
            reply.code = AccessReject
            replies.put(reply, replies.REPLY_MESSAGE, (decision.message or REJECT_MESSAGE).encode()[:253])
            if decision.mschap_error:
                replies.put(reply, replies.MS_CHAP_ERROR, decision.mschap_error)
        return reply.ReplyPacket(), decision

    def _decode_auth(self, data: bytes, nas: NasClient) -> FastAuthPacket:
        """``data`` as a pyrad packet (for the fast path's rare replies pyrad must build)."""
        return FastAuthPacket(secret=nas.secret, dict=self.dict, packet=data)

    @staticmethod
    def _log_unencodable(username: str, exc: Exception) -> None:
        event(log, "radius.reply_unencodable", logging.ERROR, user=username, error=str(exc))

    @staticmethod
    def _log_auth(username: str, nas: NasClient, method: AuthMethod, decision: Decision) -> None:
        # rejects at INFO (someone will ask why they cannot log in); accepts at DEBUG, since
        # a line per accept would cost more CPU than answering it. Checked before building
        # the arguments: even a disabled call cost ~5% of a request.
        level = logging.DEBUG if decision.accept else logging.INFO
        if log.isEnabledFor(level):
            event(log, "radius.auth", level, user=username, nas=nas.name, method=method.value,
                  result="accept" if decision.accept else "reject",
                  reason=decision.reason or None)  # fmt: skip

    # ------------------------------------------------------------ accounting

    def handle_acct_packet(
        self,
        protocol: _Protocol,
        pkt: AcctPacket,
        addr: tuple[str, int],
        *,
        nas: NasClient,
        key: DedupKey,
        entry: DedupEntry,
    ) -> None:
        """Queue a verified Accounting-Request decoded by pyrad; it is answered once stored."""
        ctx = _AcctContext(protocol, pkt.CreateReply().ReplyPacket(), addr, key, entry, time.perf_counter())
        self._queue_acct({k: v[0] for k, v in dict.items(pkt) if type(k) is int and v}, nas, ctx)

    def _queue_acct(self, attrs: Mapping[int, bytes], nas: NasClient, ctx: _AcctContext) -> None:
        self.stats.accounting_requests += 1
        try:
            record = decode_attrs(attrs, nas.address, time.time(), key_by_port=nas.vendor == "generic")
        except UnsupportedStatus as exc:
            self.stats.accounting_ignored += 1
            event(log, "radius.acct_ignored", nas=nas.name, status=str(exc))
            self._answer_acct(ctx)
            return
        except ValueError as exc:
            raise _Drop("dropped_malformed", str(exc)) from None
        if self._writer is None:
            raise _Drop("dropped_malformed", "server is stopping")  # pragma: no cover
        self._writer.submit(PendingAcct(record, ctx))

    def _answer_acct(self, ctx: _AcctContext) -> None:
        ctx.entry.reply = ctx.reply
        self.stats.accounting_responses += 1
        self._send(ctx.protocol, ctx.reply, ctx.addr)
        if ctx.received:
            self.acct_latency.observe(time.perf_counter() - ctx.received)

    def _acct_committed(self, batch: Sequence[PendingAcct]) -> None:
        self.stats.acct_batches += 1
        for item in batch:
            self._answer_acct(item.context)

    def _acct_failed(self, batch: Sequence[PendingAcct], exc: BaseException) -> None:
        self.stats.acct_write_failures += 1
        for item in batch:
            ctx: _AcctContext = item.context
            self.dedup.forget(ctx.key, ctx.entry)

    # ------------------------------------------------------------ CoA port: not served here

    def handle_coa_packet(self, protocol: Any, pkt: Any, addr: Any) -> None:
        """Not used: we send CoA (see :mod:`jasiyo.radius.coa`), we do not receive it."""

    def handle_disconnect_packet(self, protocol: Any, pkt: Any, addr: Any) -> None:
        """Not used: we send Disconnect-Requests, we do not receive them."""


def _enlarge_buffers(sock: socket.socket) -> None:
    """Ask for 4 MiB socket buffers: a burst of NAS requests should queue, not drop."""
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
        except OSError:  # capped by the kernel (net.core.rmem_max); the default still works
            pass


__all__ = ["MAX_PACKET", "RadiusServer", "RadiusStats"]
