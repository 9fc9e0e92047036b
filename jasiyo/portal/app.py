"""The agent's web listener (Starlette, served by uvicorn inside `agent run`).

LAN-facing and working while the WAN or the cloud is down. It serves:

* ``GET /healthz``: the agent is up and its store answers;
* the customer's pages (``jasiyo.portal.pages``): the hotspot portal, vouchers and the pay
  page, when the backend offers them (``Backend.portal``);
* ``POST /hooks/{token}/{endpoint}``: provider callbacks for an agent without a cloud
  (``[web] public_url`` is how the provider reaches it). ``token`` is a per-agent secret
  (compared in constant time); ``endpoint`` is ``stk``, ``c2b``, ``c2b-validation`` or
  ``paystack`` (Daraja refuses URLs containing "mpesa"). The body is kept in the inbox
  first and answered at once; verification happens in the payments worker. Rate limited
  per client address; bodies bounded.

The access log never shows the token: uvicorn's access log is off and our own line names
only the endpoint.

The app knows nothing of the store: the agent hands it a :class:`Backend` (see
``jasiyo.agent.web``), so the portal does not import the agent that serves it.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import time
from collections.abc import Callable
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from jasiyo.log import event, get_logger
from jasiyo.portal.models import PortalBackend
from jasiyo.portal.pages import Pages
from jasiyo.portal.paths import CALLBACK_PATHS
from jasiyo.portal.security import Limits
from jasiyo.ratelimit import Buckets

log = get_logger(__name__)
MAX_BODY = 64 * 1024
_SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


class Backend(Protocol):
    """What the web listener needs from the agent. Every method may block (it is called
    from the thread pool)."""

    def healthy(self) -> bool: ...

    def hook_token(self) -> str: ...

    def keep_callback(self, endpoint: str, headers: dict[str, str], body: bytes, remote: str) -> None: ...

    def c2b_account_known(self, account: str) -> bool: ...

    def portal(self) -> PortalBackend | None:
        """What the customer's pages need, or None for a listener without them."""
        ...

    def close(self) -> None: ...


def _json(doc: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(doc, status, headers=_SECURITY_HEADERS)


def create_app(
    backend: Backend,
    *,
    wake: Callable[[], None] | None = None,
    metrics: Callable[[], tuple[bytes, str]] | None = None,
    limits: Limits | None = None,
    login_hosts: tuple[str, ...] = (),
    metrics_from: tuple[str, ...] = ("127.0.0.0/8", "::1/128"),
    brand: tuple[str, str] = ("", ""),
) -> Starlette:
    """The listener's ASGI app. ``wake`` is called after a callback is kept (the payments
    worker then processes it at once); ``metrics`` renders ``/metrics`` when given;
    ``limits`` and ``login_hosts`` are the portal's (``[portal]``); only clients in
    ``metrics_from`` (``[web] metrics_from``) may read ``/metrics``; ``brand`` is the ISP's
    name and support phone the pages show."""
    readers = [ipaddress.ip_network(n, strict=False) for n in metrics_from]
    buckets = Buckets(rate=20.0, burst=60)
    portal = backend.portal()
    pages = Pages(portal, limits, login_hosts, brand) if portal is not None else None

    async def healthz(request: Request) -> Response:
        try:
            ok = await run_in_threadpool(backend.healthy)
        except Exception:  # noqa: BLE001 - the store is the agent: if it does not answer, we are not healthy
            ok = False
        return _json({"ok": ok}, 200 if ok else 503)

    async def hook(request: Request) -> Response:
        who = request.client.host if request.client else "?"
        endpoint = CALLBACK_PATHS.get(request.path_params["endpoint"], "")
        if not buckets.take(who, time.monotonic()):
            return _json({"error": "rate_limited"}, 429)
        given = request.path_params["token"].encode()
        expected = (await run_in_threadpool(backend.hook_token)).encode()
        if not hmac.compare_digest(given, expected) or not endpoint:
            event(log, "web.hook_refused", remote=who, reason="unknown callback URL")
            return _json({"error": "not_found"}, 404)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            return _json({"error": "payload_too_large"}, 413)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return _json({"error": "payload_too_large"}, 413)
        headers = dict(request.headers.items())
        await run_in_threadpool(backend.keep_callback, endpoint, headers, body, who)
        if wake:
            wake()
        if endpoint == "mpesa-val":
            return _json(await run_in_threadpool(_validate, backend, body))
        if endpoint.startswith("mpesa"):
            return _json({"ResultCode": 0, "ResultDesc": "Accepted"})
        return _json({"ok": True})

    async def metrics_page(request: Request) -> Response:
        assert metrics is not None
        if not _client_in(request, readers):
            event(log, "web.metrics_refused", remote=request.client.host if request.client else "?")
            return PlainTextResponse("forbidden", 403, headers=_SECURITY_HEADERS)
        body, ctype = await run_in_threadpool(metrics)
        return Response(body, headers={"content-type": ctype})

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        if (
            pages is not None
            and status == 404
            and request.method == "GET"
            and not request.url.path.startswith(("/hooks/", "/static/"))
        ):
            # The walled garden sends a suspended customer's HTTP here whatever they asked
            # for (a NAT redirect keeps the path and Host): show them the pay page.
            return RedirectResponse("/pay", 303, headers=_SECURITY_HEADERS)
        return PlainTextResponse(
            "not found" if status == 404 else "method not allowed", status, headers=_SECURITY_HEADERS
        )

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/hooks/{token}/{endpoint}", hook, methods=["POST"]),
    ]
    if metrics is not None:
        routes.append(Route("/metrics", metrics_page, methods=["GET"]))
    if pages is not None:
        routes.extend(pages.routes())
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    app.state.close = backend.close
    return app


def _client_in(request: Request, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Whether the connecting address (never a forwarded-for header) is in ``networks``."""
    try:
        addr = ipaddress.ip_address(request.client.host if request.client else "")
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in networks)


def _validate(backend: Backend, body: bytes) -> dict[str, str]:
    """Daraja C2B validation (only sent if Safaricom enabled it): refuse unknown accounts,
    so the customer's money is not taken for nobody. The cloud cannot do this: it cannot
    read the subscriber list, so through the cloud every validation is accepted and an
    unknown account lands in the suspense list instead."""
    try:
        doc = json.loads(body)
        account = str(doc.get("BillRefNumber", ""))
    except (ValueError, AttributeError):
        return {"ResultCode": "C2B00016", "ResultDesc": "Rejected"}
    if not backend.c2b_account_known(account):
        return {"ResultCode": "C2B00012", "ResultDesc": "Rejected"}
    return {"ResultCode": "0", "ResultDesc": "Accepted"}
