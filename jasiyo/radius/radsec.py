"""RADIUS over TLS (RadSec, RFC 6614): the same server, reached over TCP port 2083.

What TLS changes, and nothing more: the router is known by its client certificate instead of
its source address, the shared secret is the fixed "radsec" (RFC 6614 section 2.3), both
Access- and Accounting-Requests arrive on one connection, and the packets are framed by their
own Length field. Every record then goes through :meth:`RadiusServer.datagram` (size and
attribute checks, Message-Authenticator policy, dedup, policy, group-committed accounting),
so UDP and RadSec cannot answer differently.

Identification: the certificate must chain to ``ca`` (refused in the TLS handshake
otherwise). Then the backend's :meth:`radsec_nas` picks the router: one whose pinned
fingerprint is the certificate's, else one whose name is the certificate's CN or a DNS
subjectAltName (and that has no other certificate pinned). A verified certificate that names
no router is refused right after the handshake, before any RADIUS is read.

Limits, because the port faces the ISP's network: the TLS handshake must finish within
``handshake_timeout``; a connection that sends nothing for ``idle_timeout`` is closed; a
record started must be complete within ``record_timeout`` (slowloris); a Length field
outside 20..4096 loses the framing, so the connection is closed (RFC 6614 section 2.5);
``max_connections`` in all and ``max_per_router`` per router; replies are written with
back-pressure, so a client that does not read stops being read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pyrad.server_async import ServerType

from jasiyo.errors import RadiusError
from jasiyo.log import event, get_logger
from jasiyo.radius.backend import NasClient
from jasiyo.radius.pki import fingerprint
from jasiyo.radius.server import MAX_PACKET, RadiusServer

log = get_logger(__name__)

#: RFC 6614 section 2.3: the shared secret over TLS
RADSEC_SECRET = b"radsec"
_ACCOUNTING_REQUEST = 4
#: reading stops while a connection has this much reply data unsent
_WRITE_HIGH_WATER = 256 * 1024


@dataclass(frozen=True)
class RadsecSettings:
    certificate: Path
    private_key: Path
    ca: Path
    address: str = "127.0.0.1"
    port: int = 2083
    idle_timeout: float = 300.0
    max_connections: int = 256
    max_per_router: int = 8
    handshake_timeout: float = 10.0
    record_timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """What a verified client certificate says: its SHA-256 and the names in it."""

    fingerprint: str
    names: tuple[str, ...]


def tls_context(settings: RadsecSettings) -> ssl.SSLContext:
    """TLS 1.2 or later, a client certificate required and verified against ``ca``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.options |= ssl.OP_NO_COMPRESSION
    try:
        ctx.load_cert_chain(settings.certificate, settings.private_key)
    except FileNotFoundError as exc:
        raise RadiusError(
            f"RadSec: no certificate or key at {exc.filename}; make them with "
            "`jasiyo radsec ca` or set [radsec] certificate/private_key"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise RadiusError(f"RadSec: cannot load {settings.certificate}: {exc}") from None
    try:
        ctx.load_verify_locations(cafile=str(settings.ca))
    except FileNotFoundError:
        raise RadiusError(
            f"RadSec: no CA at {settings.ca}; set [radsec] ca, or make one with `jasiyo radsec ca`"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise RadiusError(f"RadSec: cannot load the CA {settings.ca}: {exc}") from None
    return ctx


def peer_identity(sslobj: ssl.SSLObject | ssl.SSLSocket) -> PeerIdentity | None:
    der = sslobj.getpeercert(binary_form=True)
    if not der:
        return None
    cert: dict[str, Any] = sslobj.getpeercert() or {}
    names: list[str] = []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                names.append(value)
    for kind, value in cert.get("subjectAltName", ()):
        if kind == "DNS":
            names.append(value)
    return PeerIdentity(fingerprint(der), tuple(dict.fromkeys(names)))


class _StreamTransport:
    """What :meth:`RadiusServer._send` needs of a transport, over a TLS stream."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self.writer.write(data)

    def is_closing(self) -> bool:
        return self.writer.is_closing()


class _StreamProtocol:
    """Stands in for the UDP protocol object: a server type (which codes it accepts) and
    a transport replies are written to."""

    def __init__(self, transport: _StreamTransport, kind: ServerType, port: int) -> None:
        self.transport = transport
        self.server_type = kind
        self.port = port


class RadsecServer:
    """RadSec in front of a running :class:`RadiusServer` (same loop, same counters)."""

    def __init__(self, radius: RadiusServer, settings: RadsecSettings) -> None:
        self.radius = radius
        self.settings = settings
        self.port = settings.port
        self._server: asyncio.Server | None = None
        self._ctx: ssl.SSLContext | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._per_router: dict[str, int] = {}
        self._warned: dict[str, float] = {}
        self.stats: dict[str, int] = {
            "connections": 0,
            "refused_handshake": 0,
            "refused_unknown_certificate": 0,
            "refused_limit": 0,
            "closed_idle": 0,
            "closed_framing": 0,
            "closed_slow": 0,
            "records": 0,
        }

    async def start(self) -> None:
        self._ctx = tls_context(self.settings)
        try:
            # TLS is started per connection (not ssl= here) so that a failed handshake can
            # be told to a person, and limits apply before any handshake work
            self._server = await asyncio.start_server(
                self._accept,
                self.settings.address,
                self.settings.port,
                reuse_address=True,
                limit=MAX_PACKET * 2,
            )
        except OSError as exc:
            raise RadiusError(
                f"cannot listen for RadSec on tcp {self.settings.address}:"
                f"{self.settings.port}: {exc.strerror or exc}"
            ) from None
        self.port = self._server.sockets[0].getsockname()[1]
        event(log, "radsec.started", address=self.settings.address, port=self.port)

    async def stop(self) -> None:
        """Stop accepting, then close every connection (answers already written go out)."""
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            if self._connections:
                await asyncio.gather(*self._connections, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
        event(log, "radsec.stopped", **self.stats)

    def open_connections(self) -> int:
        return len(self._connections)

    # ------------------------------------------------------------ connections

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = writer.get_extra_info("peername") or ("?", 0)
        nas: NasClient | None = None
        try:
            if len(self._connections) > self.settings.max_connections:
                self.stats["refused_limit"] += 1
                return
            if not await self._handshake(writer, peer[0]):
                return
            sslobj = writer.get_extra_info("ssl_object")
            ident = peer_identity(sslobj) if sslobj is not None else None
            nas = self._identify(ident, peer[0])
            if nas is None:
                return
            count = self._per_router.get(nas.name, 0)
            if count >= self.settings.max_per_router:
                self.stats["refused_limit"] += 1
                self._warn("limit", nas.name, "radsec.too_many_connections", router=nas.name,
                           src=peer[0], limit=self.settings.max_per_router)  # fmt: skip
                nas = None
                return
            self._per_router[nas.name] = count + 1
            self.stats["connections"] += 1
            event(log, "radsec.connected", router=nas.name, src=peer[0])
            await self._serve(reader, writer, nas, peer)
        except (asyncio.CancelledError, ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            if nas is not None:
                self._per_router[nas.name] -= 1
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)

    async def _handshake(self, writer: asyncio.StreamWriter, source: str) -> bool:
        """TLS, the client certificate verified against the CA; False (logged) if it fails."""
        assert self._ctx is not None
        try:
            await writer.start_tls(self._ctx, ssl_handshake_timeout=self.settings.handshake_timeout)
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError) as exc:
            self.stats["refused_handshake"] += 1
            verify = getattr(exc, "verify_message", None)
            reason = f"certificate verify failed: {verify}" if verify else getattr(exc, "reason", None)
            self._warn("handshake", source, "radsec.handshake_failed", src=source,
                       error=reason or type(exc).__name__,
                       hint="the router's certificate must be signed by [radsec] ca "
                            "(`jasiyo radsec issue ROUTER`)")  # fmt: skip
            return False
        return True

    def _identify(self, ident: PeerIdentity | None, source: str) -> NasClient | None:
        finder = getattr(self.radius.backend, "radsec_nas", None)
        nas = None
        if ident is not None and finder is not None:
            try:
                nas = finder(ident.fingerprint, ident.names)
            except Exception as exc:  # noqa: BLE001 - the store failed: refuse; the router reconnects
                event(log, "radius.backend_error", logging.ERROR, call="radsec_nas",
                      error=f"{type(exc).__name__}: {exc}")  # fmt: skip
                return None
        if nas is None:
            self.stats["refused_unknown_certificate"] += 1
            self._warn(
                "unknown",
                ident.fingerprint if ident else source,
                "radsec.unknown_certificate",
                src=source,
                names=",".join(ident.names) if ident else "",
                fingerprint=ident.fingerprint if ident else "",
                hint="the certificate is signed by the CA but names no router: "
                "`jasiyo router update NAME --radsec-fingerprint FINGERPRINT`",
            )
            return None
        # RFC 6614 section 2.3: the secret is "radsec"; the router keeps its MA policy
        return replace(nas, secret=RADSEC_SECRET)

    def _warn(self, kind: str, key: str, name: str, **fields: Any) -> None:
        """Once a minute per peer: a misconfigured router reconnects every few seconds."""
        now = time.monotonic()
        k = f"{kind}:{key}"
        if now - self._warned.get(k, -1e9) < 60:
            return
        if len(self._warned) > 4096:
            self._warned.clear()
        self._warned[k] = now
        event(log, name, logging.WARNING, **fields)

    async def _serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        nas: NasClient,
        peer: tuple[str, int],
    ) -> None:
        """Read records until the router closes, the framing is lost, or a limit is hit.

        Reads whatever has arrived and takes every whole record from it (no timer per
        record: that cost more than answering); one watchdog enforces the idle and
        record timeouts by closing the connection."""
        transport = _StreamTransport(writer)
        auth = _StreamProtocol(transport, ServerType.Auth, self.port)
        acct = _StreamProtocol(transport, ServerType.Acct, self.port)
        addr = (peer[0], peer[1])
        handle = self.radius.datagram
        stats = self.stats
        clock = time.monotonic
        buf = bytearray()
        conn = _Conn(writer, clock())
        watchdog = asyncio.create_task(self._watchdog(conn))
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return  # closed by the router, or by the watchdog
                conn.last = clock()
                buf += chunk
                while len(buf) >= 4:
                    length = (buf[2] << 8) | buf[3]
                    if length < 20 or length > MAX_PACKET:
                        self._framing_error(nas, length)
                        return
                    if len(buf) < length:
                        break
                    data = bytes(buf[:length])
                    del buf[:length]
                    stats["records"] += 1
                    handle(acct if data[0] == _ACCOUNTING_REQUEST else auth, data, addr, nas)  # type: ignore[arg-type]
                conn.partial_since = (conn.partial_since or conn.last) if buf else 0.0
                if writer.transport.get_write_buffer_size() > _WRITE_HIGH_WATER:
                    await writer.drain()
        finally:
            watchdog.cancel()
            if conn.closed_by:
                stats[conn.closed_by] += 1

    def _framing_error(self, nas: NasClient, length: int) -> None:
        # the framing is lost: nothing after this can be trusted to start a packet
        self.stats["closed_framing"] += 1
        self.radius.stats.received += 1
        counter = "dropped_oversized" if length > MAX_PACKET else "dropped_truncated"
        setattr(self.radius.stats, counter, getattr(self.radius.stats, counter) + 1)
        self.radius.drops.add(counter, nas.name)
        event(log, "radsec.framing_error", logging.WARNING, router=nas.name, length=length)

    async def _watchdog(self, conn: _Conn) -> None:
        """Close ``conn`` when idle too long or a record stays incomplete too long."""
        idle, slow = self.settings.idle_timeout, self.settings.record_timeout
        tick = max(0.05, min(idle, slow) / 4)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if conn.partial_since and now - conn.partial_since > slow:
                conn.closed_by = "closed_slow"
            elif now - conn.last > idle:
                conn.closed_by = "closed_idle"
            else:
                continue
            conn.writer.transport.abort()
            return


@dataclass(slots=True)
class _Conn:
    writer: asyncio.StreamWriter
    last: float  # monotonic time data last arrived
    partial_since: float = 0.0  # when the incomplete record at the buffer's end began
    closed_by: str = ""  # the stats counter of the limit that closed it


def settings_from(cfg: Any) -> RadsecSettings:
    """:class:`RadsecSettings` from a :class:`jasiyo.config.Config`'s ``[radsec]``."""
    rs = cfg.radsec
    return RadsecSettings(
        certificate=Path(rs.certificate),
        private_key=Path(rs.private_key),
        ca=Path(rs.ca),
        address=rs.address,
        port=rs.port,
        idle_timeout=rs.idle_timeout,
        max_connections=rs.max_connections,
    )


def names_match(names: Iterable[str], router: str) -> bool:
    """Is ``router`` one of the certificate's names (case-insensitive, as DNS names)?"""
    r = router.lower()
    return any(n.lower() == r for n in names)


__all__ = [
    "RADSEC_SECRET",
    "PeerIdentity",
    "RadsecServer",
    "RadsecSettings",
    "names_match",
    "peer_identity",
    "settings_from",
    "tls_context",
]
