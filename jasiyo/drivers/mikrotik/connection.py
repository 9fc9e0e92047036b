"""One API connection to a RouterOS router, on librouteros, with every error mapped to ours.

This is the only module that touches librouteros, sockets or ssl (httpx's
``map_httpcore_exceptions`` habit): above it there are only ``ConnectError``, ``AuthError``
and ``CommandError``.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import librouteros
from librouteros.api import Api
from librouteros.exceptions import (
    ConnectionClosed,
    FatalError,
    LibRouterosError,
    MultiTrapError,
    ProtocolError,
    TrapError,
)

from jasiyo.drivers.routerstate import RouterConfig
from jasiyo.errors import AuthError, CommandError, ConnectError

#: Sentences written before reading replies, when pipelining a batch (``.tag`` per command).
PIPELINE_WINDOW = 256


class BufferedTransport:
    """Replaces librouteros's socket transport after login: it reads each word with three
    ``recv`` calls, which makes a 10,000-row print cost 300,000 system calls. Here replies are
    received in large chunks and sentences are cut out of a buffer."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.pos = 0

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, need: int) -> None:
        while len(self.buf) - self.pos < need:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionClosed("Connection unexpectedly closed.")
            if self.pos:
                del self.buf[: self.pos]
                self.pos = 0
            self.buf += chunk

    def read(self, length: int) -> bytes:
        self._fill(length)
        data = bytes(self.buf[self.pos : self.pos + length])
        self.pos += length
        return data

    def read_sentence(self, encoding: str) -> list[str]:
        """The words of one sentence (RouterOS length prefixes, 1 to 5 bytes)."""
        words: list[str] = []
        while True:
            # Fast path: words shorter than 128 bytes already in the buffer (nearly all).
            buf, pos, end = self.buf, self.pos, len(self.buf)
            while pos < end and buf[pos] < 0x80:
                n = buf[pos]
                if n == 0:
                    self.pos = pos + 1
                    return words
                if pos + 1 + n > end:
                    break
                words.append(buf[pos + 1 : pos + 1 + n].decode(encoding, errors="replace"))
                pos += 1 + n
            self.pos = pos
            self._fill(1)
            buf = self.buf
            first = buf[self.pos]
            if first < 0x80:
                size, n = 1, first
            elif first < 0xC0:
                self._fill(2)
                size, n = 2, int.from_bytes(self.buf[self.pos : self.pos + 2]) & 0x3FFF
            elif first < 0xE0:
                self._fill(3)
                size, n = 3, int.from_bytes(self.buf[self.pos : self.pos + 3]) & 0x1FFFFF
            elif first < 0xF0:
                self._fill(4)
                size, n = 4, int.from_bytes(self.buf[self.pos : self.pos + 4]) & 0xFFFFFFF
            elif first == 0xF0:
                self._fill(5)
                size, n = 5, int.from_bytes(self.buf[self.pos + 1 : self.pos + 5])
            else:
                raise ProtocolError(f"reserved control byte {first:#x} in a reply")
            if n == 0:
                self.pos += 1
                return words
            self._fill(size + n)
            start = self.pos + size
            words.append(self.buf[start : start + n].decode(encoding, errors="replace"))
            self.pos = start + n

    def close(self) -> None:
        self.sock.close()


def _raw_word(word: str) -> tuple[str, str]:
    # librouteros casts "yes"->True and "12"->12; a password "007" or "12" must stay a str.
    if word.startswith("="):
        key, _, value = word[1:].partition("=")
    else:  # API attributes such as .tag=3
        key, _, value = word.partition("=")
    return key, value


class RawApi(Api):
    """librouteros ``Api`` that keeps every value as the string the router sent."""

    def readSentence(self) -> tuple[str, dict[str, str]]:  # noqa: N802 - librouteros name
        transport = self.protocol.transport
        if isinstance(transport, BufferedTransport):
            sentence = transport.read_sentence(self.protocol.encoding)
            reply_word, words = sentence[0], sentence[1:]
            if reply_word == "!fatal":
                transport.close()
                raise FatalError(words[0] if words else "")
        else:
            reply_word, words = self.protocol.readSentence()
        return reply_word, dict(_raw_word(w) for w in words)


@dataclass(slots=True)
class Reply:
    """The outcome of one command: its ``!re`` rows, ``!done`` attributes, or a trap."""

    rows: list[dict[str, str]] = field(default_factory=list)
    done: dict[str, str] = field(default_factory=dict)
    trap: str | None = None


def normalise_fingerprint(text: str) -> str:
    return text.replace(":", "").replace(" ", "").strip().lower()


def _ssl_wrapper(config: RouterConfig) -> Callable[[socket.socket], socket.socket]:
    """How to wrap the TCP socket: CA-verified, or pinned by certificate fingerprint."""
    check_hostname = config.options.get("tls_check_hostname", "yes") != "no"
    if config.fingerprint:
        pin = normalise_fingerprint(config.fingerprint)
        # A pin replaces the CA chain: router certificates are usually self-signed.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE

        def wrap_pinned(sock: socket.socket) -> socket.socket:
            tls = ctx.wrap_socket(sock, server_hostname=config.host)
            der = tls.getpeercert(binary_form=True) or b""
            got = hashlib.sha256(der).hexdigest()
            if not hmac.compare_digest(got, pin):
                tls.close()
                raise ConnectError(
                    f"router {config.label()} presented a certificate with SHA-256 fingerprint "
                    f"{got}, not the pinned {pin}; check the router or update the pin"
                )
            return tls

        return wrap_pinned
    ctx = ssl.create_default_context(cafile=config.ca_file)
    ctx.check_hostname = check_hostname

    def wrap_verified(sock: socket.socket) -> socket.socket:
        return ctx.wrap_socket(sock, server_hostname=config.host)

    return wrap_verified


class RouterOSConnection:
    """A logged-in API session. Not thread-safe: the driver holds a lock around it.

    ``calls`` counts command sentences sent since login (the API round trips).
    """

    def __init__(self, config: RouterConfig) -> None:
        self.config = config
        self.port = config.port or (8729 if config.tls else 8728)
        self.api: Api | None = None
        self.calls = 0
        self.last_sent = 0

    def where(self) -> str:
        return f"router {self.config.label()} ({self.config.host}:{self.port})"

    def open(self) -> None:
        """Connect and log in; raises ConnectError or AuthError."""
        cfg = self.config
        try:
            self.api = librouteros.connect(
                cfg.host,
                cfg.username,
                cfg.password,
                port=self.port,
                timeout=cfg.timeout,
                subclass=RawApi,
                encoding="utf-8",
                ssl_wrapper=_ssl_wrapper(cfg) if cfg.tls else None,
            )
        except (TrapError, MultiTrapError) as exc:
            raise AuthError(
                f"{self.where()} refused the login for user {cfg.username!r}: {exc}; "
                "check the API user name and password"
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise ConnectError(
                f"{self.where()}: TLS certificate not trusted ({exc.verify_message}); "
                "give the router's CA file or pin its certificate fingerprint"
            ) from exc
        except TimeoutError as exc:
            raise ConnectError(
                f"{self.where()} did not answer within {cfg.timeout:g} s; is it up and is the "
                f"API service enabled on port {self.port}?"
            ) from exc
        except (OSError, LibRouterosError) as exc:
            raise ConnectError(f"{self.where()} is unreachable: {exc}") from exc
        transport = self.api.protocol.transport
        self.api.protocol.transport = BufferedTransport(transport.sock)

    def close(self) -> None:
        api, self.api = self.api, None
        if api is not None:
            try:
                api.close()
            except (OSError, LibRouterosError):
                pass  # closing a dead socket: nothing left to do

    def _lost(self, command: str, exc: BaseException) -> ConnectError:
        self.close()
        if isinstance(exc, TimeoutError):
            why = f"no reply within {self.config.timeout:g} s"
        elif isinstance(exc, FatalError):
            why = f"the router closed the session: {exc}"
        elif isinstance(exc, ConnectionClosed | ProtocolError):
            why = f"the connection was cut ({exc})"
        else:
            why = str(exc) or type(exc).__name__
        return ConnectError(f"{self.where()}: connection lost during {command}: {why}")

    def call(self, command: str, *words: str) -> list[dict[str, str]]:
        """Send one command, return its ``!re`` rows (and ``!done`` attributes appended).

        Raises CommandError on ``!trap``, ConnectError if the connection is lost (then closed).
        """
        reply = self.pipeline([(command, list(words))])[0]
        if reply.trap is not None:
            raise CommandError(f"{self.where()} refused {command}: {reply.trap}", command)
        return reply.rows + ([reply.done] if reply.done else [])

    def pipeline(
        self,
        sentences: Sequence[tuple[str, Sequence[str]]],
        on_reply: Callable[[int, Reply], None] | None = None,
    ) -> list[Reply]:
        """Send many commands tagged ``.tag=N``, a window at a time; one Reply per command.

        Commands in one window may run in any order on a real router, so only batch commands
        that do not depend on each other. If the connection is lost, raises ConnectError; the
        replies already received were passed to ``on_reply`` before that.
        """
        if self.api is None:
            raise ConnectError(f"{self.where()}: not connected")
        replies: list[Reply] = [Reply() for _ in sentences]
        command = ""
        self.last_sent = 0  # how many of ``sentences`` were written, for the caller's report
        try:
            for start in range(0, len(sentences), PIPELINE_WINDOW):
                window = range(start, min(start + PIPELINE_WINDOW, len(sentences)))
                for i in window:
                    command, words = sentences[i]
                    self.api.protocol.writeSentence(command, *words, f".tag={i}")
                    self.calls += 1
                    self.last_sent = i + 1
                pending = set(window)
                while pending:
                    word, attrs = self.api.readSentence()
                    tag = attrs.pop(".tag", None)
                    if tag is None or not tag.isdigit() or int(tag) not in pending:
                        continue  # a stray reply (e.g. to a cancelled command)
                    i = int(tag)
                    command = sentences[i][0]
                    if word == "!re":
                        replies[i].rows.append(attrs)
                    elif word == "!trap" and replies[i].trap is None:
                        replies[i].trap = attrs.get("message", "unknown error")
                    elif word == "!done":
                        replies[i].done = attrs
                        pending.discard(i)
                        if on_reply:
                            on_reply(i, replies[i])
        except (OSError, LibRouterosError, ValueError, IndexError) as exc:
            raise self._lost(command or "a command", exc) from exc
        return replies
