"""The tenant dashboard's static files, served by the cloud at ``/app/``.

The cloud only serves these files (``jasiyo/cloud/webapp/``, shipped in the package); it
never renders tenant data into them, and the browser decrypts everything itself. So the
headers lock the page down: a Content Security Policy allowing only the app's own scripts,
styles and API (no inline script, no other origin, no framing), no MIME sniffing, no
referrer. ``Cache-Control: no-cache`` with an ETag: a browser revalidates every file on
each open (a 304 costs a round trip, not a download), so an upgraded cloud never runs a
stale mix of old and new modules.

Paths are checked segment by segment (letters, digits, ``._-``; no dot files, no ``..``),
then resolved and required to stay inside the directory (a symlink out of it is refused);
only regular files of a known type are served. A directory is never listed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

#: Where the app's files are (``pyproject.toml`` ships the folder with the package).
WEBAPP = Path(__file__).with_name("webapp")
PREFIX = "/app"
CSP = (
    "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
MAX_DEPTH = 8
#: Larger files are not served (the app is a few hundred KiB in all).
MAX_FILE = 8 * 1024 * 1024


@dataclass(frozen=True)
class _File:
    stamp: tuple[int, int]  # (mtime_ns, size): re-read when it changes
    body: bytes
    etag: str


class AppFiles:
    """The files under ``root``, read once and re-read when they change on disk."""

    def __init__(self, root: Path = WEBAPP) -> None:
        self.root = root
        self._cache: dict[Path, _File] = {}

    def find(self, rel: str) -> Path | None:
        """The file ``rel`` (a path below ``/app/``) names, or None if it names none."""
        parts = rel.split("/")
        if len(parts) > MAX_DEPTH or not all(_SEGMENT.match(p) for p in parts):
            return None
        if not any(parts[-1].endswith(ext) for ext in TYPES):
            return None
        try:
            root = self.root.resolve(strict=True)
            path = root.joinpath(*parts).resolve(strict=True)
        except (OSError, RuntimeError):  # missing, or a symlink loop
            return None
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return path

    def read(self, path: Path) -> _File | None:
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            cached = self._cache.get(path)
            if cached is not None and cached.stamp == stamp:
                return cached
            if st.st_size > MAX_FILE:
                return None
            body = path.read_bytes()
        except OSError:
            return None
        found = _File(stamp, body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
        if len(self._cache) > 2000:
            self._cache.clear()
        self._cache[path] = found
        return found

    def load(self, rel: str) -> tuple[str, _File] | None:
        """(content type, file) for ``rel``, or None: a blocking call (disk)."""
        path = self.find(rel)
        found = self.read(path) if path is not None else None
        if path is None or found is None:
            return None
        return TYPES[path.suffix], found


def _etag_matches(header: str, etag: str) -> bool:
    return header.strip() == "*" or etag in (t.strip().removeprefix("W/") for t in header.split(","))


def app_handler(files: AppFiles) -> Callable[[Request], Awaitable[Response]]:
    """The handler for ``/app`` and everything below it (wrap it in the API's endpoint)."""
    from jasiyo.cloud.app import Refused

    async def handle(request: Request) -> Response:
        path = request.url.path
        if request.method not in ("GET", "HEAD"):
            return JSONResponse({"error": "method_not_allowed"}, 405, headers={"allow": "GET, HEAD"})
        if path == PREFIX:
            query = request.url.query
            return RedirectResponse(PREFIX + "/" + ("?" + query if query else ""), 308)
        rel = path[len(PREFIX) + 1 :] or "index.html"
        found = await run_in_threadpool(files.load, rel)
        if found is None:
            raise Refused(404, "no such app file")
        ctype, f = found
        headers = {**HEADERS, "etag": f.etag}
        if _etag_matches(request.headers.get("if-none-match", ""), f.etag):
            return Response(status_code=304, headers=headers)
        return Response(f.body, 200, headers=headers, media_type=ctype)

    return handle


class AppRoute(BaseRoute):
    """Routes ``/app`` and ``/app/...`` to one handler. Not a ``Route``: the static app is
    not part of the ``/v1`` API, so the OpenAPI document does not list it."""

    path = PREFIX

    def __init__(self, endpoint: Callable[[Request], Awaitable[Response]]) -> None:
        self.endpoint = endpoint

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http":
            path = scope["path"]
            if path == PREFIX or path.startswith(PREFIX + "/"):
                return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.endpoint(Request(scope, receive))
        await response(scope, receive, send)
