"""Connection limits for the cloud's HTTP server: slow clients and connection floods.

uvicorn alone lets a client hold a connection open forever by sending a request's headers
one byte at a time (its keep-alive timer is cancelled by any data), and accepts connections
until the process runs out of file descriptors; asyncio then stops accepting for a second at
a time and ``/v1/health`` times out for everyone. :func:`guarded_protocol` wraps uvicorn's
h11 protocol with:

- a header timeout: a request's headers must be complete this long after the connection
  opened (or after the previous response, on a kept-alive connection);
- a body timeout: its body must be complete this long after its headers;
- a cap on open connections per client address, and a total cap kept below the process's
  open-file limit (``ulimit -n``), so ``accept()`` never fails for lack of descriptors.

A connection over a cap gets ``503`` and is closed at once, inside ``accept()``
(:class:`GuardedSocket`): no transport, task or HTTP parser is made for it, so a flood
that reconnects a thousand connections at once costs the event loop a few milliseconds,
not the ~150 ms that made a health probe behind it wait. A slow connection is closed. Both are
counted and logged once per ten seconds, not once per connection (a flood would flood the
log too). Long-polls are not slow clients: their request is complete, the app is waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from jasiyo.errors import CloudError
from jasiyo.log import event, get_logger

log = get_logger(__name__)

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"content-length: 25\r\nretry-after: 5\r\nconnection: close\r\n\r\n"
    b'{"error": "unavailable"}\n'
)
#: File descriptors kept back from the connection cap: the listening socket, log files, and
#: the database: SQLite opens its file, WAL and shared memory in each of the (up to 40)
#: worker threads, PostgreSQL a pool of connections. Below this the cloud answers 500s and
#: ``accept()`` fails with EMFILE, which pauses accepting for a second at a time.
FD_RESERVE = 256
#: The listen backlog asyncio is given, which it also uses as the most connections it
#: accepts in one go (each accepted one holds a descriptor until the guard closes it).
ACCEPT_BATCH = 64
#: The kernel's accept queue (:class:`GuardedSocket` listens with it; the kernel caps it at
#: net.core.somaxconn). A 64-deep queue overflows when a flood reconnects at once: Linux
#: then drops the handshake's last ACK and the first data of *every* connection arriving,
#: the health monitor's too, and that client waits out a TCP retransmission (200 ms, then
#: 400 ms, ...). Connections waiting in the queue cost no descriptor.
ACCEPT_QUEUE = 4096
#: Over-cap connections refused in one accept() call before asyncio gets a turn again.
REFUSE_BATCH = 256


def connection_cap(configured: int = 0) -> int:
    """The total connection cap: ``configured`` if set, never above ``ulimit -n`` less a reserve."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = max(16, soft - FD_RESERVE) if soft != resource.RLIM_INFINITY else 1 << 20
    return min(configured, limit) if configured > 0 else limit


@dataclass
class Guard:
    """State shared by every connection of one server (used from its event loop only)."""

    per_client: int = 64
    max_connections: int = 0
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    counts: dict[str, int] = field(default_factory=dict)
    watched: set[Any] = field(default_factory=set)
    refused: int = 0
    closed_slow: int = 0
    _sweeper: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.max_connections = connection_cap(self.max_connections)

    def over_cap(self, host: str) -> bool:
        """True when one more connection from ``host`` would be over a cap."""
        return self.counts.get(host, 0) >= self.per_client or len(self.watched) >= self.max_connections

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        tick = max(0.05, min(1.0, self.header_timeout / 4, self.body_timeout / 4))
        reported = (0, 0)
        last_report = loop.time()
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            for proto in list(self.watched):
                if proto.expired(now):
                    self.closed_slow += 1
                    proto.transport.close()
                    self.watched.discard(proto)
            if now - last_report >= 10 and (self.refused, self.closed_slow) != reported:
                event(
                    log,
                    "cloud.connections_limited",
                    30,
                    refused=self.refused - reported[0],
                    closed_slow=self.closed_slow - reported[1],
                    open=len(self.watched),
                    cap=self.max_connections,
                    per_client=self.per_client,
                )
                reported, last_report = (self.refused, self.closed_slow), now


class GuardedSocket(socket.socket):
    """A listening socket whose ``accept()`` refuses, there and then, connections over
    ``guard``'s caps (503 and close), and listens with :data:`ACCEPT_QUEUE`.

    asyncio calls ``accept()`` up to ``backlog`` times per wake-up; each call here may
    refuse up to :data:`REFUSE_BATCH` connections before it returns one (or raises
    BlockingIOError, as an empty queue does: asyncio then waits for the next wake-up).
    The protocol checks the caps again (connections accepted in one batch are counted
    only once their protocol starts).
    """

    guard: Guard

    def listen(self, backlog: int = ACCEPT_QUEUE) -> None:
        super().listen(max(backlog, ACCEPT_QUEUE))

    def accept(self) -> tuple[socket.socket, Any]:
        for _ in range(REFUSE_BATCH):
            fd, addr = self._accept()  # type: ignore[attr-defined]
            if not self.guard.over_cap(addr[0] if isinstance(addr, tuple) else "-"):
                conn = socket.socket(self.family, self.type, self.proto, fileno=fd)
                if socket.getdefaulttimeout() is None and self.gettimeout():
                    conn.setblocking(True)
                return conn, addr
            self.guard.refused += 1
            with contextlib.suppress(OSError), socket.socket(fileno=fd) as refused:
                refused.send(_BUSY, socket.MSG_DONTWAIT)
        raise BlockingIOError("refused a batch of connections over the cap")


def listening_socket(host: str, port: int, guard: Guard) -> GuardedSocket:
    """A bound :class:`GuardedSocket` for ``host``:``port`` (``port`` 0: any free one)."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise CloudError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says TCP; without it Nagle and delayed ACKs add 40 ms a request.
    sock = GuardedSocket(family, kind, proto)
    sock.guard = guard
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise CloudError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def guarded_protocol(guard: Guard) -> type[H11Protocol]:
    """uvicorn's h11 protocol under ``guard``'s limits (pass it as ``Config(http=...)``)."""

    class GuardedH11Protocol(H11Protocol):
        _host: str | None = None
        _state: tuple[str, int] = ("", 0)
        _since: float = 0.0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            host = self.client[0] if self.client else "-"
            held = guard.counts.get(host, 0)
            if held >= guard.per_client or len(self.connections) > guard.max_connections:
                guard.refused += 1
                transport.write(_BUSY)
                transport.close()
                return
            guard.counts[host] = held + 1
            self._host = host
            self._state, self._since = self._phase(), self.loop.time()
            guard.watched.add(self)
            guard.start(self.loop)

        def connection_lost(self, exc: Exception | None) -> None:
            host, self._host = self._host, None
            if host is not None:
                left = guard.counts.get(host, 1) - 1
                if left > 0:
                    guard.counts[host] = left
                else:
                    guard.counts.pop(host, None)
            guard.watched.discard(self)
            super().connection_lost(exc)

        def _phase(self) -> tuple[str, int]:
            cycle = self.cycle
            if cycle is None or cycle.response_complete:
                return "headers", id(cycle)
            return ("body" if cycle.more_body else "app"), id(cycle)

        def expired(self, now: float) -> bool:
            """True when the request has been too slow in arriving (the sweeper closes it)."""
            state = self._phase()
            if state != self._state:  # a new request, or the next step of this one
                self._state, self._since = state, now
                return False
            limit = {"headers": guard.header_timeout, "body": guard.body_timeout}.get(state[0])
            return limit is not None and now - self._since > limit

    return GuardedH11Protocol
