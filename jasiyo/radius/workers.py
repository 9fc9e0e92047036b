"""Authentication on every core: worker processes reading the auth port's one socket.

The agent's process binds the auth port and keeps everything that writes (accounting
through the group-commit writer, billing, enforcement, RadSec); it answers no UDP
authentication itself. Each worker is a separate process (spawned) answering
Access-Requests and Status-Server from that same socket, reading the store through its own
WAL connection and its own cache (refreshed from ``auth_rev`` as the agent's is).

One socket, one queue: whichever worker is free takes the next datagram (the socket is
registered with EPOLLEXCLUSIVE, so a datagram wakes one idle worker, not all), so a busy or
stalled worker holds nothing up and no NAS is tied to a process. (SO_REUSEPORT gave each
process its own queue, filled by a hash of the NAS's address and port: a few NASes landed
unevenly and the busiest process set the pace.) RFC 5080 duplicates: each worker keeps its
own cache, so a retransmission that reaches the worker that answered is answered from its
cache, and one that reaches another worker is answered afresh, with the same bytes (the
reply depends only on the request and the subscriber; an MS-CHAPv2 accept carries freshly
salted keys, equally valid). Authentication has no side effect to do twice, except that a
retransmitted unknown username counts twice against the name-guessing guard.

A worker runs no event loop: it reads until the socket is empty (non-blocking
``recvfrom``), answering each datagram synchronously (authentication is CPU-only), holds
the replies while more requests are queued and sends them back to back, then waits in
``epoll``. Under load that is two system calls a request and one wait per batch.

A worker that dies is started again (after a pause that grows while it keeps dying); SIGTERM
to the agent stops the workers first (each stops reading, sends what it holds and exits;
nothing is left half done), then the agent itself. A worker whose agent is gone (its pipe
closed) exits too.

Each worker sends a snapshot of its counters to the agent once a second over a pipe
(:func:`jasiyo.radius.metrics.snapshot`), so ``/metrics`` sums every process. Counters of a
worker that died are kept (up to its last snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from jasiyo.errors import RadiusError
from jasiyo.log import current_format, event, get_logger
from jasiyo.radius.backend import RadiusBackend
from jasiyo.radius.metrics import merge, snapshot

log = get_logger(__name__)

#: how often a worker reports its counters
SNAPSHOT_INTERVAL = 1.0
_CTX = multiprocessing.get_context("spawn")  # no fork of a process with threads and sockets
#: datagrams answered between two looks at the clock (snapshot due?) while some are queued
_BATCH = 256
#: replies held at most before they are sent (see :class:`_SocketTransport`)
_FLUSH_AT = 32
#: one byte over the RFC's maximum, so an oversized datagram is seen as such and dropped
_RECV_SIZE = 4097


def resolve_count(configured: int) -> int:
    """``[radius] workers``: 0 means one process per CPU core available to us but one (the
    agent's process keeps a core for accounting, billing and the portal), at least one."""
    if configured > 0:
        return configured
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def _worker_main(
    factory: Callable[[], RadiusBackend],
    sock: socket.socket,
    conn: Connection,
    log_level: str,
    fast_pap: bool,
    log_format: str = "text",
) -> None:
    from jasiyo import log as log_mod

    log_mod.setup(log_level, fmt=log_format)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the agent, which stops us
    try:
        _worker(factory, sock, conn, fast_pap)
    except RadiusError as exc:
        event(log, "radius.worker_failed", logging.ERROR, error=str(exc))
        raise SystemExit(2) from None


class _SocketTransport:
    """What :meth:`RadiusServer._send` needs of a transport, on the shared socket.

    Replies are held until :meth:`flush` (after a few requests, or once none is queued):
    sent back to back, a NAS (or a load generator) waiting for them is woken once for
    several instead of once each, which costs both sides more than the sending itself.
    """

    __slots__ = ("pending", "sendto_raw")

    def __init__(self, sock: socket.socket) -> None:
        self.sendto_raw = sock.sendto
        self.pending: list[tuple[bytes, tuple[str, int]]] = []

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.pending.append((data, addr))

    def flush(self) -> None:
        send = self.sendto_raw
        for data, addr in self.pending:
            try:
                send(data, addr)
            except OSError:  # send buffer full, or the NAS's address unreachable: it retransmits
                pass
        self.pending.clear()

    @staticmethod
    def is_closing() -> bool:
        return False


def _worker(
    factory: Callable[[], RadiusBackend], sock: socket.socket, conn: Connection, fast_pap: bool
) -> None:
    from pyrad.server_async import ServerType

    from jasiyo.radius.server import RadiusServer, _Protocol

    backend = factory()
    warm = getattr(backend, "warm", None)
    if warm is not None:
        warm()
    address, port = sock.getsockname()[:2]
    server = RadiusServer(backend, address, port, 0, fast_pap=fast_pap)
    proto = _Protocol(address, port, server.logger, server, ServerType.Auth, {}, None)
    transport = proto.transport = _SocketTransport(sock)
    pending, flush = transport.pending, transport.flush
    stopping = False
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    poller = select.epoll()
    # EPOLLEXCLUSIVE: a datagram wakes one idle worker, not all of them
    poller.register(sock.fileno(), select.EPOLLIN | select.EPOLLEXCLUSIVE)
    poller.register(wake_r, select.EPOLLIN)
    event(log, "radius.worker_started", address=address, auth_port=port, pid=os.getpid())
    conn.send(("ready", os.getpid()))
    recvfrom, handle = sock.recvfrom, server.datagram
    next_snapshot = time.monotonic() + SNAPSHOT_INTERVAL
    try:
        while not stopping:
            # answer whatever is queued, then wait: no poll per datagram under load
            for _ in range(_BATCH):
                try:
                    data, addr = recvfrom(_RECV_SIZE)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:  # an ICMP error reported on the socket: nothing to read
                    break
                handle(proto, data, addr)
                if len(pending) >= _FLUSH_AT:
                    flush()
            else:
                if time.monotonic() < next_snapshot:
                    continue  # more queued: keep reading
            flush()
            now = time.monotonic()
            if now >= next_snapshot:
                conn.send(("stats", snapshot(server)))
                next_snapshot = now + SNAPSHOT_INTERVAL
                continue
            poller.poll(next_snapshot - now)
    except (BrokenPipeError, EOFError, ConnectionResetError):
        pass  # the agent is gone: stop serving
    finally:
        flush()
        event(log, "radius.stopped", **server.stats.as_dict())
        signal.set_wakeup_fd(-1)
        poller.close()
        for fd in (wake_r, wake_w):
            os.close(fd)
        sock.close()
        with contextlib.suppress(Exception):
            conn.send(("stats", snapshot(server)))
        conn.close()
        close = getattr(backend, "close", None)
        if close is not None:
            close()


@dataclass
class _Worker:
    index: int
    process: Any  # multiprocessing.Process (spawn context)
    conn: Connection
    pid: int = 0
    latest: dict[str, Any] | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None


class AuthWorkers:
    """``count`` worker processes answering authentication on ``address``:``port``."""

    def __init__(
        self,
        factory: Callable[[], RadiusBackend],
        count: int,
        *,
        log_level: str = "info",
        fast_pap: bool = True,
        start_timeout: float = 120.0,
    ) -> None:
        self.factory = factory
        self.count = count
        self.sock: socket.socket | None = None
        self.log_level = log_level
        self.fast_pap = fast_pap
        self.start_timeout = start_timeout
        self.restarts = 0
        self._workers: list[_Worker] = []
        self._retired: list[dict[str, Any]] = []  # counters of workers that ended
        self._lock = threading.Lock()
        self._stopping = False
        self._monitor: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self, sock: socket.socket) -> None:
        """Start the workers reading ``sock`` (bound by the agent, non-blocking; it stays
        the agent's to close) and wait until each is serving. RadiusError if one cannot."""
        self.sock = sock
        self._stopping = False
        workers = [self._spawn(i) for i in range(self.count)]
        self._workers = workers
        for w in workers:
            if not await asyncio.to_thread(w.ready.wait, self.start_timeout):
                await self.stop()
                raise RadiusError(f"RADIUS worker {w.index} did not start (see its log lines)")
        event(log, "radius.workers_started", workers=self.count, port=sock.getsockname()[1],
              pids=",".join(str(w.pid) for w in workers))  # fmt: skip
        self._monitor = asyncio.create_task(self._watch())

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every worker and wait for it (killed after ``timeout``)."""
        self._stopping = True
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
            self._monitor = None
        for w in self._workers:
            if w.process.is_alive():
                w.process.terminate()  # SIGTERM: the worker drains and exits
        for w in self._workers:
            await asyncio.to_thread(w.process.join, timeout)
            if w.process.is_alive():
                w.process.kill()
                await asyncio.to_thread(w.process.join, 5)
            if w.reader is not None:
                await asyncio.to_thread(w.reader.join, 5)
            self._retire(w)
        self._workers = []

    # ------------------------------------------------------------ workers

    def _spawn(self, index: int) -> _Worker:
        parent, child = _CTX.Pipe(duplex=False)
        proc = _CTX.Process(
            target=_worker_main, name=f"jasiyo-radius-{index}", daemon=True,
            args=(self.factory, self.sock, child, self.log_level, self.fast_pap, current_format()),
        )  # fmt: skip
        proc.start()
        child.close()
        w = _Worker(index, proc, parent)
        w.reader = threading.Thread(target=self._read, args=(w,), daemon=True,
                                    name=f"jasiyo-radius-{index}-stats")  # fmt: skip
        w.reader.start()
        return w

    def _read(self, w: _Worker) -> None:
        """The worker's messages, until it closes the pipe (exits)."""
        while True:
            try:
                kind, value = w.conn.recv()
            except (EOFError, OSError):
                break
            if kind == "ready":
                w.pid = value
                w.ready.set()
            elif kind == "stats":
                with self._lock:
                    w.latest = value
        w.conn.close()

    def _retire(self, w: _Worker) -> None:
        with self._lock:
            if w.latest is not None:
                self._retired = [merge([*self._retired, w.latest])]
                w.latest = None

    async def _watch(self) -> None:
        """Start again any worker that died; the pause doubles (to 30 s) while it keeps dying."""
        delay: dict[int, float] = {}
        while not self._stopping:
            await asyncio.sleep(0.5)
            for i, w in enumerate(self._workers):
                if w.process.is_alive() or self._stopping:
                    continue
                code = w.process.exitcode
                if w.reader is not None:
                    await asyncio.to_thread(w.reader.join, 5)
                self._retire(w)
                pause = delay.get(w.index, 0.0)
                event(log, "radius.worker_died", logging.WARNING, worker=w.index, pid=w.pid,
                      exitcode=code, restart_in=pause)  # fmt: skip
                if pause:
                    await asyncio.sleep(pause)
                if self._stopping:
                    return
                started = time.monotonic()
                self._workers[i] = self._spawn(w.index)
                self.restarts += 1
                ok = await asyncio.to_thread(self._workers[i].ready.wait, self.start_timeout)
                if ok and time.monotonic() - started < self.start_timeout:
                    event(log, "radius.worker_restarted", worker=w.index,
                          pid=self._workers[i].pid)  # fmt: skip
                delay[w.index] = min(30.0, max(1.0, pause * 2))

    # ------------------------------------------------------------ reading

    def pids(self) -> list[int]:
        return [w.pid for w in self._workers if w.process.is_alive()]

    def snapshots(self) -> list[dict[str, Any]]:
        """The latest counters of every worker, and those of workers that ended."""
        with self._lock:
            return [*self._retired, *(w.latest for w in self._workers if w.latest)]


__all__ = ["AuthWorkers", "resolve_count"]
