"""The cloud registry's HTTP API (Starlette, served by uvicorn): ``/v1``, JSON.

Three kinds of caller: the operator (bearer token, creates tenants), a tenant admin (bearer
token, issues one-time enrolment tokens) and agents (Ed25519-signed requests, push and pull
the tenant's sealed event log). A dashboard is a browser enrolled and signing as an agent of
kind "dashboard" (:mod:`jasiyo.cloud.dashboard_api`); its static files are at ``/app/``
(:mod:`jasiyo.cloud.appfiles`). Refusals carry only a status and a short code, never a
reason: the reason goes to the cloud's log.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jasiyo.cloud import dashboard_api, hooks_api
from jasiyo.cloud.appfiles import WEBAPP, AppFiles, AppRoute, app_handler
from jasiyo.cloud.notify import Notifier
from jasiyo.cloud.openapi import OPENAPI
from jasiyo.cloud.storage import KINDS, AgentRecord, Storage
from jasiyo.errors import SyncError
from jasiyo.log import event, get_logger
from jasiyo.sync import signing
from jasiyo.sync.envelope import MAX_ENVELOPE, envelope_kid
from jasiyo.sync.ids import uuid7

log = get_logger(__name__)

_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_PROVIDER_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
#: Request headers a payment webhook keeps (the agent verifies signatures from them).
_HOOK_HEADERS = ("content-type", "x-paystack-signature", "user-agent")
_LENGTH_RE = re.compile(r"^[0-9]{1,15}$")
#: JSON bodies nested deeper than this are refused before they are parsed (the parser
#: recurses; 100,000 levels would end in RecursionError, a 500).
MAX_JSON_DEPTH = 32
#: Integers in a request body longer than this are refused before int() sees them (ids and
#: counts fit in 19 digits; an unknown field may carry a longer one, harmlessly).
MAX_JSON_DIGITS = 100
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_HOOK_PATH = re.compile(r"^(/v1/hooks/[^/]*/)[^/]+")
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}


@dataclass(frozen=True)
class CloudSettings:
    max_body: int = 4 * 1024 * 1024
    max_batch: int = 1000
    max_pull: int = 1000
    max_wait: float = 30.0
    #: Token bucket per client address: sustained requests per second, and burst.
    rate: float = 50.0
    burst: int = 200
    #: Provider callbacks (/v1/hooks/...) have their own, larger bucket per address: they
    #: come from a few provider addresses in month-end bursts, and a refused M-Pesa C2B
    #: confirmation is not sent again. Bodies are bounded and unknown tokens are 404s.
    hook_rate: float = 500.0
    hook_burst: int = 3000
    enrolment_ttl: float = 24 * 3600
    #: A waiting pull re-reads the database at least this often, in case a wake-up from
    #: another cloud process (PostgreSQL NOTIFY) was lost.
    recheck: float = 5.0
    max_hook_body: int = 64 * 1024
    #: Connection limits (jasiyo.cloud.guard): a request's headers must arrive within
    #: header_timeout, its body within body_timeout after them; at most
    #: max_conns_per_client connections per client address, and max_connections in all
    #: (0: the open-file limit, ``ulimit -n``, less a reserve).
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_conns_per_client: int = 64
    max_connections: int = 0
    #: The dashboard's files, served at /app/ (None: the ones shipped in the package).
    webapp: Path | None = None


def redact_path(path: str) -> str:
    """A request path fit for a log line: the webhook token (a bearer secret) is masked."""
    return _HOOK_PATH.sub(r"\1***", path)


def json_depth(body: bytes) -> int:
    """How deeply ``body`` nests arrays and objects (brackets inside strings do not count).

    A regular-expression scan, so it costs no recursion and stays fast on large bodies.
    """
    depth = deepest = 0
    for m in _JSON_TOKENS.finditer(body):
        c = m.group()
        if c in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    return deepest
        elif c in (b"]", b"}"):
            depth -= 1
    return deepest


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_DIGITS:
        raise ValueError("number too long")
    return int(text)


def _short_int(text: str) -> int:
    if len(text) > 20:  # a query parameter: 2**63 has 19 digits
        raise ValueError("number too long")
    return int(text)


def _no_constant(text: str) -> float:
    raise ValueError(f"{text} is not JSON")


class Refused(Exception):
    """End the request with ``status``; ``reason`` is logged, never sent."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def token_hash(token: str) -> str:
    # Tokens are 256-bit random: a plain hash is enough (no dictionary to attack).
    return hashlib.sha256(token.encode()).hexdigest()


def make_token(kind: str, tenant: str | None = None) -> str:
    secret = secrets.token_urlsafe(32)
    return f"j{kind}_{tenant}_{secret}" if tenant else f"j{kind}_{secret}"


def split_token(token: str, kind: str) -> str | None:
    """The tenant id embedded in an admin or enrolment token, or None if malformed."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != f"j{kind}" or not _ID_RE.match(parts[1]):
        return None
    return parts[1]


class _Buckets:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._state: dict[str, tuple[float, float]] = {}

    def take(self, who: str, now: float) -> bool:
        tokens, last = self._state.get(who, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1:
            self._state[who] = (tokens, now)
            return False
        self._state[who] = (tokens - 1, now)
        if len(self._state) > 10000:  # forget idle clients rather than grow without bound
            self._state = {k: v for k, v in self._state.items() if now - v[1] < 60}
        return True


def _found(result: Any) -> bool:
    # A pull returns (events, head); a webhook list returns rows.
    return bool(result[0]) if isinstance(result, tuple) else bool(result)


class Api:
    """The handlers, over what they share: storage, settings, the long-poll notifier and
    the rate-limit buckets. Each handler is a method; :meth:`app` routes to them."""

    def __init__(self, storage: Storage, cfg: CloudSettings) -> None:
        self.storage = storage
        self.cfg = cfg
        self.notifier = Notifier()
        self.buckets = _Buckets(cfg.rate, cfg.burst)
        self.hook_buckets = _Buckets(cfg.hook_rate, cfg.hook_burst)
        self.presence = dashboard_api.Presence()
        self.files = AppFiles(cfg.webapp or WEBAPP)

    async def db(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await run_in_threadpool(fn, *args)

    async def body_of(
        self, request: Request, limit: int | None = None, too_large: str = "body too large"
    ) -> bytes:
        """The body, refused (413, ``too_large``) past ``limit`` bytes (at most ``cfg.max_body``):
        on the declared length before reading, else as soon as the stream passes it."""
        limit = self.cfg.max_body if limit is None else min(limit, self.cfg.max_body)
        length = request.headers.get("content-length")
        if length and not _LENGTH_RE.match(length):
            raise Refused(413, "body too large")
        if length and int(length) > limit:
            raise Refused(413, too_large)
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise Refused(413, too_large)
                chunks.append(chunk)
        except ClientDisconnect:  # gone, or closed by the body timeout: nobody to answer
            raise Refused(400, "client disconnected before the body arrived") from None
        return b"".join(chunks)

    def json_of(self, body: bytes) -> dict[str, Any]:
        if json_depth(body) > MAX_JSON_DEPTH:
            raise Refused(400, "body nests too deeply")
        try:
            doc = json.loads(body or b"{}", parse_int=_bounded_int, parse_constant=_no_constant)
        except ValueError:
            raise Refused(400, "body is not JSON") from None
        if not isinstance(doc, dict):
            raise Refused(400, "body is not a JSON object")
        return doc

    def bearer(self, request: Request) -> str:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or len(auth) > 300:
            raise Refused(401, "no bearer token")
        return auth[7:].strip()

    async def agent_auth(self, request: Request, body: bytes, *, note: bool = True) -> AgentRecord:
        """The enrolled, unrevoked agent (or dashboard) that signed this request.

        ``note``: record its contact (a pull records it with its cursor instead)."""
        h = request.headers
        tenant, agent_id = h.get(signing.H_TENANT, ""), h.get(signing.H_AGENT, "")
        if not (_ID_RE.match(tenant) and _ID_RE.match(agent_id)):
            raise Refused(401, "unsigned request")
        agent = await self.db(self.storage.get_agent, tenant, agent_id)
        if agent is None or agent.revoked_at is not None:
            raise Refused(401, "unknown or revoked agent")
        query = request.url.query
        target = request.url.path + ("?" + query if query else "")
        now = time.time()
        try:
            signing.verify(
                signing.load_public_key(agent.public_key), request.method, target, body, dict(h), now=now
            )
        except SyncError as exc:
            raise Refused(401, str(exc)) from None
        if not await self.db(self.storage.use_nonce, tenant, agent_id, h[signing.H_NONCE], now):
            raise Refused(401, "replayed nonce")
        if request.path_params.get("tenant") != tenant:
            raise Refused(403, "agent asked for another tenant")
        if agent.kind == "dashboard" and not dashboard_api.dashboard_may(request.method, request.url.path):
            raise Refused(403, "a dashboard may not do this")
        if note:
            await dashboard_api.note_seen(self, agent)
        return agent

    def endpoint(self, fn: Callable[[Request], Awaitable[Response]]) -> Callable:
        async def wrapped(request: Request) -> Response:
            who = request.client.host if request.client else "-"
            try:
                hook = request.url.path.startswith("/v1/hooks/")
                buckets = self.hook_buckets if hook else self.buckets
                if not buckets.take(who, time.monotonic()):
                    raise Refused(429, "rate limit")
                return await fn(request)
            except Refused as exc:
                event(
                    log,
                    "cloud.refused",
                    status=exc.status,
                    reason=exc.reason,
                    path=redact_path(request.url.path),
                    client=who,
                )
                headers = {"Retry-After": "1"} if exc.status == 429 else None
                return JSONResponse({"error": _CODES[exc.status]}, exc.status, headers=headers)
            except Exception as exc:  # noqa: BLE001 - the one place every failure is answered
                event(
                    log,
                    "cloud.error",
                    40,
                    path=redact_path(request.url.path),
                    error=type(exc).__name__,
                    detail=str(exc)[:200],
                )
                return JSONResponse({"error": "internal"}, 500)

        return wrapped

    # ------------------------------------------------------------ handlers

    async def health(self, request: Request) -> Response:
        try:
            await self.db(self.storage.health)
        except Exception:  # noqa: BLE001 - health reports, it does not raise
            return JSONResponse({"status": "unavailable"}, 503)
        return JSONResponse({"status": "ok", "api": "v1", "backend": self.storage.backend})

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(OPENAPI)

    async def create_tenant(self, request: Request) -> Response:
        token = self.bearer(request)
        doc = self.json_of(await self.body_of(request))
        if not await self.db(self.storage.is_operator, token_hash(token)):
            raise Refused(401, "not an operator token")
        name = doc.get("name")
        if not isinstance(name, str) or not 0 < len(name) <= 200:
            raise Refused(422, "tenant name missing or too long")
        tenant = uuid7()
        admin = make_token("ad", tenant)
        await self.db(self.storage.create_tenant, tenant, name, token_hash(admin), time.time())
        event(log, "cloud.tenant_created", tenant=tenant)
        return JSONResponse({"tenant_id": tenant, "admin_token": admin}, 201)

    async def create_enrolment(self, request: Request) -> Response:
        tenant = await self.admin_of(request)
        doc = self.json_of(await self.body_of(request))
        ttl = doc.get("ttl_seconds", self.cfg.enrolment_ttl)
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl <= 30 * 86400:
            raise Refused(422, "ttl_seconds out of range")
        enrol = make_token("en", tenant)
        expires = time.time() + float(ttl)
        await self.db(self.storage.add_enrolment, tenant, token_hash(enrol), expires, time.time())
        return JSONResponse({"token": enrol, "expires_at": expires}, 201)

    async def admin_of(self, request: Request) -> str:
        """The tenant whose admin token authorises this request (must match the path)."""
        token = self.bearer(request)
        owner = split_token(token, "ad")
        if owner is None or not await self.db(self.storage.is_admin, owner, token_hash(token)):
            raise Refused(401, "not a tenant admin token")
        if owner != request.path_params["tenant"]:
            raise Refused(403, "admin of another tenant")
        return owner

    async def revoke_agent(self, request: Request) -> Response:
        tenant = await self.admin_of(request)
        agent_id = request.path_params["agent"]
        if not _ID_RE.match(agent_id):
            raise Refused(404, "malformed agent id")
        if not await self.db(self.storage.revoke_agent, tenant, agent_id, time.time()):
            raise Refused(404, "no such active agent")
        self.notifier.notify(tenant)  # waiting long-polls wake, re-check the agent, get 401
        event(log, "cloud.agent_revoked", tenant=tenant, agent=agent_id)
        return JSONResponse({"agent_id": agent_id, "revoked": True})

    async def enroll(self, request: Request) -> Response:
        doc = self.json_of(await self.body_of(request))
        token, agent_id = doc.get("token"), doc.get("agent_id")
        name, public_key = doc.get("name", ""), doc.get("public_key")
        kind = doc.get("kind", "agent")
        if not (
            isinstance(token, str)
            and isinstance(agent_id, str)
            and _ID_RE.match(agent_id)
            and isinstance(name, str)
            and len(name) <= 200
            and isinstance(public_key, str)
            and kind in KINDS
        ):
            raise Refused(422, "enrolment fields missing or malformed")
        try:
            signing.load_public_key(public_key)
        except SyncError:
            raise Refused(422, "public key malformed") from None
        tenant = split_token(token, "en")
        if tenant is None:
            raise Refused(401, "not an enrolment token")
        agent = AgentRecord(agent_id, tenant, name or agent_id, public_key, None, kind=kind)
        result = await self.db(self.storage.enroll, tenant, token_hash(token), agent, time.time())
        if result == "invalid":
            raise Refused(401, "enrolment token unknown, used or expired")
        if result == "conflict":
            raise Refused(409, "agent id already enrolled")
        event(log, "cloud.agent_enrolled", tenant=tenant, agent=agent_id, kind=kind)
        return JSONResponse({"tenant_id": tenant, "agent_id": agent_id, "kind": kind}, 201)

    async def register_key(self, request: Request) -> Response:
        body = await self.body_of(request)
        agent = await self.agent_auth(request, body)
        kid = self.json_of(body).get("kid")
        try:
            if not isinstance(kid, str) or envelope_kid(f"v1.{kid}.x") != kid:
                raise SyncError("bad kid")
        except SyncError:
            raise Refused(422, "key id malformed") from None
        await self.db(self.storage.add_kid, agent.tenant_id, kid, time.time())
        return JSONResponse({"kid": kid}, 200)

    async def push(self, request: Request) -> Response:
        body = await self.body_of(request)
        agent = await self.agent_auth(request, body)
        events = self.json_of(body).get("events")
        if not isinstance(events, list) or not 0 < len(events) <= self.cfg.max_batch:
            raise Refused(422, "events missing or batch too large")
        kids = await self.db(self.storage.kids, agent.tenant_id)
        rows = []
        for ev in events:
            if not isinstance(ev, dict):
                raise Refused(422, "event is not an object")
            ev_id, origin, env = ev.get("id"), ev.get("origin"), ev.get("envelope")
            if not (isinstance(ev_id, str) and _ID_RE.match(ev_id)):
                raise Refused(422, "event id malformed")
            if origin != agent.id:
                raise Refused(403, "event origin is not the signing agent")
            if not isinstance(env, str) or len(env) > MAX_ENVELOPE:
                raise Refused(422, "envelope missing or too large")
            try:
                kid = envelope_kid(env)
            except SyncError:
                raise Refused(422, "envelope malformed") from None
            if kid not in kids:
                raise Refused(409, "envelope names an unregistered key id")
            rows.append((ev_id, origin, env))
        result = await self.db(self.storage.push, agent.tenant_id, rows, time.time())
        if result.accepted:
            self.notifier.notify(agent.tenant_id)
        return JSONResponse(
            {"accepted": result.accepted, "duplicates": result.duplicates, "head": result.head}
        )

    def cursor_query(self, request: Request, default_limit: int) -> tuple[int, int, float]:
        """``after``, ``limit`` and ``wait`` of a pull; 400 unless each is in range."""
        q = request.query_params
        try:
            after = _short_int(q.get("after", "0"))
            limit = _short_int(q.get("limit", str(default_limit)))
            wait_text = q.get("wait", "0")
            if len(wait_text) > 32:
                raise ValueError("wait too long")
            wait = float(wait_text)
        except ValueError:
            raise Refused(400, "bad query parameters") from None
        if not (0 <= after < 2**63) or not 1 <= limit or not 0 <= wait < float("inf"):
            raise Refused(400, "bad query parameters")  # also NaN: it never ends a wait
        return after, min(limit, self.cfg.max_pull), min(wait, self.cfg.max_wait)

    async def long_poll(self, agent: AgentRecord, wait: float, read: Callable[[], Awaitable[Any]]) -> Any:
        """``read()`` until it finds something or ``wait`` seconds pass.

        Woken by the tenant's notifier (a push, a webhook, a revocation); the agent is
        checked again after every wait, so a revocation ends a poll already waiting.
        """
        tenant = agent.tenant_id
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            version = self.notifier.version(tenant)
            found = await read()
            left = deadline - loop.time()
            if _found(found) or left <= 0:
                return found
            await self.notifier.wait(tenant, version, min(left, self.cfg.recheck))
            now = await self.db(self.storage.get_agent, tenant, agent.id)
            if now is None or now.revoked_at is not None:
                raise Refused(401, "agent revoked while waiting")

    async def pull(self, request: Request) -> Response:
        agent = await self.agent_auth(request, b"", note=False)
        after, limit, wait = self.cursor_query(request, self.cfg.max_pull)
        await dashboard_api.note_seen(self, agent, after)
        tenant = agent.tenant_id
        found, head = await self.long_poll(
            agent, wait, lambda: self.db(self.storage.pull, tenant, after, limit)
        )
        floor = await self.db(self.storage.floor, tenant)  # compacted below: see the snapshot
        if found:  # what it has been sent counts as pulled (the agents list's backlog)
            self.presence.note(agent, time.time(), found[-1].seq)
        return JSONResponse(
            {
                "floor": floor,
                "events": [
                    {
                        "seq": e.seq,
                        "id": e.id,
                        "origin": e.origin,
                        "envelope": e.envelope,
                        "received_at": e.received_at,
                    }
                    for e in found
                ],
                "cursor": found[-1].seq if found else after,
                "head": head,
                "now": time.time(),
            }
        )

    async def redact(self, request: Request) -> Response:
        from jasiyo.cloud.privacy_api import redact

        return await redact(self, request)

    def snapshot(self, what: str) -> Callable[[Request], Awaitable[Response]]:
        from jasiyo.cloud import snapshot_api

        async def handle(request: Request) -> Response:
            if what == "latest":
                return await snapshot_api.latest(self, request)
            if what == "commit":
                return await snapshot_api.commit(self, request)
            fn = snapshot_api.put_part if request.method == "POST" else snapshot_api.get_part
            return await fn(self, request)

        return handle

    async def events(self, request: Request) -> Response:
        return await (self.push(request) if request.method == "POST" else self.pull(request))

    # ------------------------------------------------------------ webhooks

    async def add_hook_endpoint(self, request: Request) -> Response:
        return await hooks_api.add_endpoint(self, request)

    async def receive_hook(self, request: Request) -> Response:
        return await hooks_api.receive(self, request)

    async def list_hooks(self, request: Request) -> Response:
        return await hooks_api.list_(self, request)

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        start = getattr(self.storage, "start_listener", None)
        if start is not None:
            start(lambda tenant: loop.call_soon_threadsafe(self.notifier.notify, tenant))
        yield

    def app(self) -> Starlette:
        e = self.endpoint
        routes = [
            Route("/v1/health", e(self.health), methods=["GET"]),
            Route("/v1/openapi.json", e(self.openapi), methods=["GET"]),
            Route("/v1/tenants", e(self.create_tenant), methods=["POST"]),
            Route("/v1/tenants/{tenant}/enrolments", e(self.create_enrolment), methods=["POST"]),
            Route("/v1/agents/enroll", e(self.enroll), methods=["POST"]),
            Route(
                "/v1/tenants/{tenant}/agents", e(partial(dashboard_api.list_agents, self)), methods=["GET"]
            ),
            Route("/v1/tenants/{tenant}/agents/{agent}/revoke", e(self.revoke_agent), methods=["POST"]),
            Route(
                "/v1/tenants/{tenant}/wrapped-key",
                e(partial(dashboard_api.wrapped_key, self)),
                methods=["GET", "PUT"],
            ),
            Route("/v1/tenants/{tenant}/keys", e(self.register_key), methods=["POST"]),
            # One route for both methods, so a 405 lists both in Allow.
            Route("/v1/tenants/{tenant}/events", e(self.events), methods=["GET", "POST"]),
            Route("/v1/tenants/{tenant}/events/redact", e(self.redact), methods=["POST"]),
            Route("/v1/tenants/{tenant}/snapshot", e(self.snapshot("latest")), methods=["GET"]),
            Route(
                "/v1/tenants/{tenant}/snapshots/{snap}/parts/{part}",
                e(self.snapshot("part")),
                methods=["GET", "POST"],
            ),
            Route(
                "/v1/tenants/{tenant}/snapshots/{snap}/commit", e(self.snapshot("commit")), methods=["POST"]
            ),
            Route("/v1/tenants/{tenant}/hook-endpoints", e(self.add_hook_endpoint), methods=["POST"]),
            Route("/v1/tenants/{tenant}/hooks", e(self.list_hooks), methods=["GET"]),
            Route("/v1/hooks/{tenant}/{token}", e(self.receive_hook), methods=["POST"]),
            AppRoute(e(app_handler(self.files))),  # the dashboard's static files, /app/
        ]
        app = Starlette(
            routes=routes, lifespan=self.lifespan, exception_handlers={404: _not_found, 405: _not_found}
        )
        app.state.notifier = self.notifier
        app.state.presence = self.presence  # read by jasiyo.cloud.metrics
        return app


async def _not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    # A 405 names the methods the path has (RFC 9110 requires Allow).
    return JSONResponse(
        {"error": _CODES.get(status, "not_found")}, status, headers=getattr(exc, "headers", None)
    )


def create_app(storage: Storage, settings: CloudSettings | None = None) -> Starlette:
    """The ASGI app over ``storage``. The caller owns (and closes) the storage."""
    return Api(storage, settings or CloudSettings()).app()
