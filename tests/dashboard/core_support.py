"""Serving the web app to a test browser before (or without) the cloud's own /app/ route:
the files of jasiyo/cloud/webapp/ under /app/ with the headers the cloud sends, and, when
given a cloud, its /v1/ API on the same origin (module scripts need http, and the app's
CSP allows connections to its own origin only)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from jasiyo.sync.vectors import WEBAPP

#: The policy the cloud serves the app with (the issue 16 contract): no inline script.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HOP = {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "accept-encoding"}


class _AppFiles(SimpleHTTPRequestHandler):
    cloud_url: str | None = None

    def translate_path(self, path: str) -> str:
        path = path.split("?", 1)[0]
        if not path.startswith("/app/"):
            return str(WEBAPP / "missing")
        return super().translate_path(path.removeprefix("/app"))

    def end_headers(self) -> None:
        if not self.path.startswith("/v1/"):
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def list_directory(self, path: Any) -> None:
        self.send_error(404)
        return None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _proxy(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        with httpx.Client(base_url=str(self.cloud_url), timeout=60) as http:
            r = http.request(self.command, self.path, content=body, headers=headers)
        self.send_response(r.status_code)
        for k, v in r.headers.items():
            if k.lower() not in _HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(r.content)))
        self.end_headers()
        self.wfile.write(r.content)

    def do_GET(self) -> None:
        if self.cloud_url and self.path.startswith("/v1/"):
            return self._proxy()
        return super().do_GET()

    def do_POST(self) -> None:
        if self.cloud_url and self.path.startswith("/v1/"):
            return self._proxy()
        self.send_error(405)

    def do_PUT(self) -> None:
        self.do_POST()


@contextmanager
def serve_app(cloud_url: str | None = None) -> Iterator[str]:
    """The app's base URL (``http://127.0.0.1:PORT/app/``) while the server runs."""
    handler = type("AppFiles", (_AppFiles,), {"cloud_url": cloud_url})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(WEBAPP)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/app/"
    finally:
        server.shutdown()
        server.server_close()
