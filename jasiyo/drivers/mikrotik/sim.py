"""A RouterOS API simulator speaking the real wire protocol, for tests, the demo and engineers.

    sim = RouterOSSim(users={"admin": "secret"})
    sim.start()                     # background thread, 127.0.0.1, ephemeral port
    ... connect librouteros / MikrotikDriver to sim.port ...
    sim.state.remove_where("/queue/simple", name="alice")   # a hand edit
    sim.stop()

Wire protocol as in the MikroTik API manual: length-prefixed words (1 to 5 byte lengths),
sentences ended by an empty word, ``!re``/``!done``/``!trap``/``!fatal`` replies, ``.tag``
echoed on every reply only when the request carried one, ``?`` query words and
``.proplist``. Login is the post-6.43 plain form; bad credentials get a ``!trap``.

Fault hooks (:class:`Faults`) let tests cut connections, trap chosen commands and add
latency; :class:`Stats` counts the command sentences received (the API round trips).
"""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from jasiyo.drivers.mikrotik.simstate import RouterOSState, Stats, Trap

_MAX_SENTENCE_BEFORE_LOGIN = 64 * 1024


def encode_length(n: int) -> bytes:
    """RouterOS word length prefix, including the 5-byte form (0xF0 + 4 bytes)."""
    if n < 0x80:
        return n.to_bytes(1, "big")
    if n < 0x4000:
        return (n | 0x8000).to_bytes(2, "big")
    if n < 0x200000:
        return (n | 0xC00000).to_bytes(3, "big")
    if n < 0x10000000:
        return (n | 0xE0000000).to_bytes(4, "big")
    return b"\xf0" + n.to_bytes(4, "big")


def encode_sentence(words: list[str]) -> bytes:
    out = bytearray()
    for w in words:
        data = w.encode("utf-8")
        out += encode_length(len(data)) + data
    out += b"\x00"
    return bytes(out)


class _Closed(Exception):
    """The peer went away (or a fault cut the connection)."""


def _read_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise _Closed
        buf += chunk
    return bytes(buf)


def read_length(sock: socket.socket) -> int:
    """Decode one word length prefix from the socket."""
    first = _read_exact(sock, 1)[0]
    if first < 0x80:
        return first
    if first < 0xC0:
        return ((first & 0x3F) << 8) | _read_exact(sock, 1)[0]
    if first < 0xE0:
        return ((first & 0x1F) << 16) | int.from_bytes(_read_exact(sock, 2), "big")
    if first < 0xF0:
        return ((first & 0x0F) << 24) | int.from_bytes(_read_exact(sock, 3), "big")
    if first == 0xF0:
        return int.from_bytes(_read_exact(sock, 4), "big")
    raise _Closed  # 0xF8.. are reserved control bytes: RouterOS drops the connection


def read_sentence(sock: socket.socket, limit: int) -> list[str]:
    words: list[str] = []
    size = 0
    while True:
        n = read_length(sock)
        if n == 0:
            return words
        size += n
        if size > limit:
            raise _Closed
        words.append(_read_exact(sock, n).decode("utf-8", errors="replace"))


@dataclass(slots=True)
class CommandFault:
    command: str
    message: str
    match: Mapping[str, str]
    times: int
    category: int | None


@dataclass(slots=True)
class Faults:
    """Misbehaviour to inject. Set the fields directly or use the helper methods."""

    latency_s: float = 0.0  # slept before answering each command
    cut_after: int | None = None  # close the connection after this many more commands
    cut_mid_reply: set[str] = field(default_factory=set)  # send half the reply, then close
    traps: list[CommandFault] = field(default_factory=list)

    def trap(
        self,
        command: str,
        message: str = "failure: simulated fault",
        *,
        match: Mapping[str, str] | None = None,
        times: int = 1,
        category: int | None = None,
    ) -> None:
        """Answer the next ``times`` runs of ``command`` whose attributes include ``match``
        with a ``!trap`` carrying ``message`` (the command is not executed)."""
        self.traps.append(CommandFault(command, message, dict(match or {}), times, category))

    def take_trap(self, command: str, attrs: Mapping[str, str]) -> CommandFault | None:
        for f in self.traps:
            if f.command == command and f.times > 0 and all(attrs.get(k) == v for k, v in f.match.items()):
                f.times -= 1
                return f
        return None

    def clear(self) -> None:
        self.latency_s = 0.0
        self.cut_after = None
        self.cut_mid_reply.clear()
        self.traps.clear()


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sim = self.server.sim
        sock: socket.socket = self.request
        try:
            if sim.tls_context is not None:
                sock.settimeout(10)
                sock = sim.tls_context.wrap_socket(sock, server_side=True)
                sock.settimeout(None)
            with sim._conn_lock:
                sim._conns.add(sock)
            self._serve(sim, sock)
        except (_Closed, OSError, ssl.SSLError):
            pass
        finally:
            with sim._conn_lock:
                sim._conns.discard(sock)
            try:
                sock.close()
            except OSError:
                pass

    def _serve(self, sim: RouterOSSim, sock: socket.socket) -> None:
        logged_in = False
        while True:
            words = read_sentence(sock, 1 << 30 if logged_in else _MAX_SENTENCE_BEFORE_LOGIN)
            if not words:
                continue  # empty sentences are ignored
            sim._count(words[0])
            faults = sim.faults
            if faults.cut_after is not None:
                if faults.cut_after <= 0:
                    faults.cut_after = None
                    raise _Closed
                faults.cut_after -= 1
            if faults.latency_s:
                time.sleep(faults.latency_s)
            command, attrs, query, tag = _split(words)
            tagged = [f".tag={tag}"] if tag is not None else []
            replies: list[list[str]]
            if command == "/login":
                logged_in = sim._login(attrs)
                replies = (
                    [["!done"]]
                    if logged_in
                    else [["!trap", "=message=invalid user name or password (6)"], ["!done"]]
                )
            elif command == "/cancel":
                replies = [["!done"]]
            elif not logged_in:
                replies = [["!fatal", "not logged in"]]
            else:
                replies = sim._run(command, attrs, query)
            if command in faults.cut_mid_reply:
                faults.cut_mid_reply.discard(command)
                half = replies[: max(1, len(replies) // 2)]
                sock.sendall(b"".join(encode_sentence(r + tagged) for r in half) + b"\x85=na")
                raise _Closed
            sock.sendall(b"".join(encode_sentence(r + tagged) for r in replies))
            if replies and replies[0][0] == "!fatal":
                raise _Closed


def _split(words: list[str]) -> tuple[str, dict[str, str], list[str], str | None]:
    command, attrs, query, tag = words[0], {}, [], None
    for w in words[1:]:
        if w.startswith("="):
            key, _, value = w[1:].partition("=")
            attrs[key] = value
        elif w.startswith("?"):
            query.append(w)
        elif w.startswith(".tag="):
            tag = w[5:]
        elif w.startswith("."):  # API attributes like .proplist given without '='
            key, _, value = w.partition("=")
            attrs[key] = value
    return command, attrs, query, tag


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], sim: RouterOSSim) -> None:
        self.sim = sim
        super().__init__(addr, _Handler)


class RouterOSSim:
    """A simulated RouterOS 7 router reachable over the API (plain or api-ssl).

    ``users`` maps API user names to passwords. Pass ``certfile``/``keyfile`` for TLS.
    ``state`` is the configuration (see :class:`RouterOSState`), ``stats`` what was asked,
    ``faults`` what to break.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        users: Mapping[str, str] | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        state: RouterOSState | None = None,
        on_command: Callable[[str], None] | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.state = state or RouterOSState()
        if users is not None:
            self.state.users = dict(users)
        self.stats = Stats()
        self.faults = Faults()
        self.on_command = on_command
        self.tls_context: ssl.SSLContext | None = None
        if certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            self.tls_context = ctx
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        self._stats_lock = threading.Lock()

    @property
    def port(self) -> int:
        """The bound port (meaningful after :meth:`start`)."""
        return self._server.server_address[1] if self._server else self.requested_port

    def start(self) -> RouterOSSim:
        """Listen and serve in a daemon thread; returns self. Port 0 picks a free port."""
        if self._server is None:
            self._server = _Server((self.host, self.requested_port), self)
            self.requested_port = self.port  # a restart after stop() reuses the same port
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="routeros-sim", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection (the router goes down)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self.drop_connections()
        self._server = None
        if self._thread:
            self._thread.join(5)

    def drop_connections(self) -> None:
        """Cut every open API connection now (a reboot, a cable pulled)."""
        with self._conn_lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (for ``jasiyo dev routeros-sim``)."""
        self._server = _Server((self.host, self.requested_port), self)
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def __enter__(self) -> RouterOSSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals

    def _count(self, command: str) -> None:
        with self._stats_lock:
            self.stats.sentences += 1
            self.stats.commands[command] += 1
            if command == "/login":
                self.stats.logins += 1
        if self.on_command:
            self.on_command(command)

    def _login(self, attrs: Mapping[str, str]) -> bool:
        with self.state.lock:
            expected = self.state.users.get(attrs.get("name", ""))
        return expected is not None and expected == attrs.get("password")

    def _run(self, command: str, attrs: dict[str, str], query: list[str]) -> list[list[str]]:
        fault = self.faults.take_trap(command, attrs)
        try:
            if fault:
                raise Trap(fault.message, fault.category)
            rows, done = self.state.execute(command, attrs, query)
        except Trap as trap:
            words = ["!trap", f"=message={trap.message}"]
            if trap.category is not None:
                words.insert(1, f"=category={trap.category}")
            return [words, ["!done"]]
        replies = [["!re", *(f"={k}={v}" for k, v in row.items())] for row in rows]
        if not rows and command.endswith(("/print", "/getall")) and self.state.sends_empty():
            replies.append(["!empty"])
        replies.append(["!done", *(f"={k}={v}" for k, v in done.items())])
        return replies
