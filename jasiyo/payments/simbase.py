"""What the Daraja and Paystack simulators share: a threaded uvicorn server on a real socket,
a log of every request received, callback delivery after a delay, and fault injection.

    sim = DarajaSim(...).start()      # 127.0.0.1, an ephemeral port
    sim.faults.fail_next(2)           # the next two API calls answer 503
    sim.faults.duplicate_callbacks = 3
    ... provider = DarajaProvider({"base_url": sim.url, ...}) ...
    sim.requests                      # what the client sent, to assert on
    sim.stop()

Control endpoints under ``/sim/`` (``GET /sim/requests``, ``GET /sim/callbacks``,
``POST /sim/faults``, ``POST /sim/reset``) let a test in another process, or an engineer
with curl, drive a simulator started by ``jasiyo dev ...-sim``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jasiyo.payments.errors import PaymentError
from jasiyo.serving import ServerThread
from jasiyo.tls import client_context

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One request the simulator received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["body"] = self.body.decode("utf-8", errors="replace")
        return d


@dataclass(frozen=True, slots=True)
class SentCallback:
    """One callback the simulator POSTed (or tried to)."""

    url: str
    body: bytes
    headers: dict[str, str]
    status: int | None  # None: it could not be delivered
    answer: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "body": self.body.decode("utf-8", errors="replace"),
            "status": self.status,
            "answer": self.answer.decode("utf-8", errors="replace"),
            "at": self.at,
        }


@dataclass(slots=True)
class Faults:
    """Misbehaviour to inject. Counters count down as they fire."""

    fail_status: int = 503
    failing: int = 0  # answer the next N API requests with fail_status
    throttling: int = 0  # answer the next N API requests with 429
    latency_s: float = 0.0  # before every API answer
    duplicate_callbacks: int = 1  # copies of each callback (1: normal)
    losing: int = 0  # drop the next N callbacks (never sent)
    late_s: float = 0.0  # added to the callback delay
    wrong_amount_minor: int = 0  # added to the amount reported in callbacks
    bad_signature: bool = False  # Paystack: sign webhooks with the wrong key
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fail_next(self, n: int = 1, status: int = 503) -> None:
        with self._lock:
            self.failing, self.fail_status = n, status

    def throttle_next(self, n: int = 1) -> None:
        with self._lock:
            self.throttling = n

    def lose_next_callbacks(self, n: int = 1) -> None:
        with self._lock:
            self.losing = n

    def take_http_fault(self) -> int | None:
        """The status to answer the current API request with, or None to serve it."""
        with self._lock:
            if self.throttling > 0:
                self.throttling -= 1
                return 429
            if self.failing > 0:
                self.failing -= 1
                return self.fail_status
            return None

    def take_lost(self) -> bool:
        with self._lock:
            if self.losing > 0:
                self.losing -= 1
                return True
            return False

    def update(self, values: Mapping[str, Any]) -> None:
        """Set faults from a control request (``{"fail_next": 2, "late_s": 5, ...}``)."""
        for key, value in values.items():
            if key == "fail_next":
                self.fail_next(int(value), int(values.get("status", 503)))
            elif key == "throttle_next":
                self.throttle_next(int(value))
            elif key == "lose_next_callbacks":
                self.lose_next_callbacks(int(value))
            elif key in ("latency_s", "late_s"):
                setattr(self, key, float(value))
            elif key in ("duplicate_callbacks", "wrong_amount_minor"):
                setattr(self, key, int(value))
            elif key == "bad_signature":
                self.bad_signature = bool(value)
            elif key != "status":
                raise ValueError(f"unknown fault {key!r}")

    def clear(self) -> None:
        with self._lock:
            self.failing = self.throttling = self.losing = self.wrong_amount_minor = 0
            self.latency_s = self.late_s = 0.0
            self.duplicate_callbacks = 1
            self.fail_status = 503
            self.bad_signature = False

    def to_dict(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in (
                "fail_status",
                "failing",
                "throttling",
                "latency_s",
                "duplicate_callbacks",
                "losing",
                "late_s",
                "wrong_amount_minor",
                "bad_signature",
            )
        }


class CallbackSender:
    """Delivers callbacks at their due time from one thread, like a provider's queue."""

    def __init__(self, name: str, timeout: float = 8.0) -> None:
        self.sent: list[SentCallback] = []
        self._heap: list[tuple[float, int, str, bytes, dict[str, str], Callable[[], None] | None]]
        self._heap = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stop = False
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, verify=client_context())
        self._thread = threading.Thread(target=self._run, name=f"{name}-callbacks", daemon=True)
        self._thread.start()

    def schedule(
        self,
        delay: float,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        before: Callable[[], None] | None = None,
    ) -> None:
        """POST ``body`` to ``url`` after ``delay`` seconds; ``before`` runs just before."""
        with self._cond:
            heapq.heappush(
                self._heap, (time.monotonic() + delay, next(self._seq), url, body, dict(headers), before)
            )
            self._cond.notify()

    def post_now(self, url: str, body: bytes, headers: Mapping[str, str]) -> SentCallback:
        try:
            resp = self._client.post(url, content=body, headers=dict(headers))
            sent = SentCallback(url, body, dict(headers), resp.status_code, resp.content[:4096], time.time())
        except httpx.HTTPError as exc:
            log.info("callback to %s failed: %s", url, type(exc).__name__)
            sent = SentCallback(url, body, dict(headers), None, b"", time.time())
        with self._cond:
            self.sent.append(sent)
        return sent

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and (not self._heap or self._heap[0][0] > time.monotonic()):
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                if self._stop:
                    return
                _, _, url, body, headers, before = heapq.heappop(self._heap)
            if before is not None:
                before()
            if url:  # "" marks a lost callback: only its outcome happens
                self.post_now(url, body, headers)

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=5)
        self._client.close()


class SimServer(ABC):
    """Base for a provider simulator: a Starlette app on 127.0.0.1 in a thread."""

    name = "sim"
    #: Paths served without logging or API faults (the simulator's own pages).
    unlogged_prefixes: tuple[str, ...] = ()

    def __init__(self, host: str = "127.0.0.1", port: int = 0, callback_delay: float = 0.5) -> None:
        self.host = host
        self.port = port
        self.callback_delay = callback_delay
        self.faults = Faults()
        self.requests: list[LoggedRequest] = []
        self._lock = threading.RLock()
        self._server: ServerThread | None = None
        self._sender: CallbackSender | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def callbacks(self) -> list[SentCallback]:
        return list(self._sender.sent) if self._sender else []

    def start(self) -> SimServer:
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections only when the
        # listening socket says TCP; without it Nagle and delayed ACKs add 40 ms per request.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._sender = CallbackSender(self.name)
        config = uvicorn.Config(
            self.app(),
            ws="none",
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=1,
            access_log=False,
        )
        self._server = ServerThread(config, sock, self.name)
        if not self._server.start():
            raise PaymentError(f"the {self.name} simulator did not start")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        if self._sender is not None:
            self._sender.close()
        self._server = self._sender = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for subclasses ------------------------------------------------------------

    def send_callback(
        self,
        url: str,
        doc: Mapping[str, Any],
        *,
        delay: float | None = None,
        headers: Mapping[str, str] | None = None,
        encode: Callable[[bytes], Mapping[str, str]] | None = None,
        before: Callable[[], None] | None = None,
    ) -> None:
        """Queue ``doc`` for ``url`` after the callback delay, applying the callback faults
        (lost, late, duplicated). ``encode`` adds headers computed from the body bytes."""
        if self._sender is None:
            raise PaymentError(f"the {self.name} simulator is not running")
        wait = (self.callback_delay if delay is None else delay) + self.faults.late_s
        if self.faults.take_lost():
            log.info("%s: callback to %s lost (fault)", self.name, url)
            self._sender.schedule(wait, "", b"", {}, before)  # the outcome still happens
            return
        body = json.dumps(doc, separators=(",", ":")).encode()
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if encode is not None:
            all_headers.update(encode(body))
        for i in range(max(1, self.faults.duplicate_callbacks)):
            self._sender.schedule(wait + i * 0.01, url, body, all_headers, before if i == 0 else None)

    def post_now(self, url: str, doc: Mapping[str, Any]) -> SentCallback:
        if self._sender is None:
            raise PaymentError(f"the {self.name} simulator is not running")
        body = json.dumps(doc, separators=(",", ":")).encode()
        return self._sender.post_now(url, body, {"Content-Type": "application/json"})

    def wait_callbacks(self, n: int, timeout: float = 10.0) -> list[SentCallback]:
        """Block until at least ``n`` callbacks were sent (or the deadline)."""
        deadline = time.monotonic() + timeout
        while len(self.callbacks) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.callbacks

    def requests_to(self, path: str) -> list[LoggedRequest]:
        return [r for r in list(self.requests) if r.path == path]

    def reset(self) -> None:
        self.faults.clear()
        with self._lock:
            self.requests.clear()

    # -- the app ---------------------------------------------------------------------------

    @abstractmethod
    def routes(self) -> list[Route]:
        """The provider's own API routes (each simulator defines them)."""

    def error_response(self, status: int) -> Response:
        return JSONResponse({"error": "simulated fault"}, status_code=status)

    def app(self) -> Starlette:
        sim = self

        async def requests_view(_: Request) -> Response:
            return JSONResponse([r.to_dict() for r in list(sim.requests)])

        async def callbacks_view(_: Request) -> Response:
            return JSONResponse([c.to_dict() for c in sim.callbacks])

        async def faults_view(request: Request) -> Response:
            if request.method == "POST":
                try:
                    values = json.loads(await request.body() or b"{}")
                    if not isinstance(values, dict):
                        raise ValueError("a JSON object of faults")
                    sim.faults.update(values)
                except (ValueError, TypeError) as exc:
                    return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(sim.faults.to_dict())

        async def reset_view(_: Request) -> Response:
            sim.reset()
            return JSONResponse({"ok": True})

        routes = [
            Route("/sim/requests", requests_view),
            Route("/sim/callbacks", callbacks_view),
            Route("/sim/faults", faults_view, methods=["GET", "POST"]),
            Route("/sim/reset", reset_view, methods=["POST"]),
            *self.routes(),
        ]
        app = Starlette(routes=routes)

        async def middleware(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            path: str = scope["path"]
            if path.startswith(("/sim/", *sim.unlogged_prefixes)):
                await app(scope, receive, send)
                return
            chunks = []
            more = True
            while more:
                message = await receive()
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            body = b"".join(chunks)
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            with sim._lock:
                sim.requests.append(LoggedRequest(scope["method"], path, headers, body, time.time()))
            if sim.faults.latency_s:
                await asyncio.sleep(sim.faults.latency_s)
            status = sim.faults.take_http_fault()
            if status is not None:
                await sim.error_response(status)(scope, receive, send)
                return
            sent = False

            async def replay() -> dict[str, Any]:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await app(scope, replay, send)

        return middleware  # type: ignore[return-value]
