"""A small HTTP server on 127.0.0.1 standing in for our callback endpoint in tests."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names, as PaymentProvider.parse_callback wants
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records every POST; answers with ``answers[path]`` (JSON) or ``{"ResultCode": 0}``."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: dict[str, tuple[int, Any]] = {}
        self.delay_s = 0.0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                path = self.path.split("?", 1)[0]
                with receiver._lock:
                    receiver.received.append(
                        Received(path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                status, doc = receiver.answers.get(path, (200, {"ResultCode": 0, "ResultDesc": "Success"}))
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def wait(self, path: str, n: int = 1, timeout: float = 10.0) -> list[Received]:
        """Poll until ``n`` POSTs reached ``path`` (or the deadline); returns them."""
        deadline = time.monotonic() + timeout
        while len(self.at(path)) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.at(path)
