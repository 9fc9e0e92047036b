"""The cloud's Prometheus metrics, served on ``GET /metrics`` to an operator token.

:func:`instrument` wraps the ASGI app (``jasiyo.cloud.server`` does it for ``cloud serve``
and :class:`~jasiyo.cloud.server.ThreadedServer`), so the handlers know nothing of it:

- requests by route template (never a tenant id or a webhook token), method and status,
  and their latency; requests in flight and long-polls waiting;
- provider webhooks by status;
- connections open, refused over a cap and closed for slowness (:mod:`jasiyo.cloud.guard`);
- each tenant's backlog, the events its furthest-behind agent (POP; dashboards are not
  counted) had still to pull after its last pull, as a distribution over tenants: no
  tenant is named in a label;
- agents (POPs) and dashboards (browsers) that made a signed request in the last hour, by
  kind only.

``/metrics`` wants ``Authorization: Bearer <operator token>`` (Prometheus:
``authorization: {credentials: ...}``) and has its own small rate limit per address.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match

from jasiyo.ratelimit import Buckets

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

PATH = "/metrics"
#: seconds: health answers in a few ms, pushes in tens, long-polls wait up to 30 s
BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
          30.0, 60.0)  # fmt: skip
#: upper bounds of the tenant backlog distribution, in events
BACKLOG_BOUNDS = (0, 10, 100, 1000, 10000, 100000)
#: A tenant's backlog counts while one of its agents pulled within this many seconds.
BACKLOG_FRESH = 3600.0
_POLL_ROUTES = ("/v1/tenants/{tenant}/events", "/v1/tenants/{tenant}/hooks")
_PULL_TAIL = re.compile(rb'"cursor":(\d{1,19}),"head":(\d{1,19}),"now":[-+.0-9eE]+\}\s*$')
_WAIT = re.compile(r"(?:^|&)wait=([0-9.]{1,12})(?:&|$)")


class CloudMetrics:
    """The registry and the numbers behind it, for one server process."""

    def __init__(self, storage: Any, guard: Any = None) -> None:
        self.storage = storage
        self.guard = guard
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.requests = Counter(
            "jasiyo_cloud_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "jasiyo_cloud_request_duration_seconds",
            "Time to answer a request, by route template (long-polls include their wait).",
            ["route"],
            buckets=BOUNDS,
            registry=r,
        )
        self.in_flight = Gauge(
            "jasiyo_cloud_requests_in_flight",
            "Requests being answered now (long-polls included).",
            registry=r,
        )
        self.long_polls = Gauge(
            "jasiyo_cloud_long_polls_waiting",
            "Agents' long-polls (events or webhooks, wait > 0) waiting now.",
            registry=r,
        )
        self.webhooks = Counter(
            "jasiyo_cloud_webhooks",
            "Provider callbacks received, by "
            "HTTP status answered (200 kept; 404 unknown endpoint; 413 too "
            "large; 429 rate limited).",
            ["status"],
            registry=r,
        )
        r.register(_Collector(self))
        #: (tenant, agent) -> (events left after its last pull, when)
        self.lag: dict[tuple[str, str], tuple[int, float]] = {}
        self._scrapes = Buckets(rate=2.0, burst=20)
        #: jasiyo.cloud.dashboard_api.Presence of the app (set by :func:`instrument`)
        self.presence: Any = None

    def note_pull(self, tenant: str, agent: str, body_tail: bytes) -> None:
        m = _PULL_TAIL.search(body_tail)
        if m is None:
            return
        now = time.time()
        self.lag[(tenant, agent)] = (max(0, int(m.group(2)) - int(m.group(1))), now)
        if len(self.lag) > 100_000:  # forget agents that stopped pulling
            self.lag = {k: v for k, v in self.lag.items() if now - v[1] < BACKLOG_FRESH}

    def tenant_backlogs(self) -> list[int]:
        """The backlog of each tenant with an agent that pulled lately (no names)."""
        now, worst = time.time(), dict[str, int]()
        for (tenant, _agent), (lag, at) in list(self.lag.items()):
            if now - at < BACKLOG_FRESH:
                worst[tenant] = max(lag, worst.get(tenant, 0))
        return list(worst.values())

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    async def authorised(self, scope: Scope) -> bool:
        from jasiyo.cloud.app import token_hash

        who = (scope.get("client") or ("-",))[0]
        if not self._scrapes.take(who, time.monotonic()):
            return False
        auth = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        if not auth.startswith("Bearer ") or len(auth) > 300:
            return False
        return bool(await run_in_threadpool(self.storage.is_operator, token_hash(auth[7:].strip())))


class _Collector:
    """What is read when scraped: the connection guard, the tenant backlogs."""

    def __init__(self, m: CloudMetrics) -> None:
        self.m = m

    def collect(self) -> Any:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeHistogramMetricFamily,
            GaugeMetricFamily,
        )

        g = self.m.guard
        open_ = GaugeMetricFamily("jasiyo_cloud_connections_open", "Client connections open.")
        open_.add_metric([], len(g.watched) if g is not None else 0)
        yield open_
        cap = GaugeMetricFamily(
            "jasiyo_cloud_connections_cap", "Most connections the cloud holds at once (below ulimit -n)."
        )
        cap.add_metric([], g.max_connections if g is not None else 0)
        yield cap
        lim = CounterMetricFamily(
            "jasiyo_cloud_connections_limited",
            "Connections refused over a cap or closed for sending too slowly.",
            labels=["reason"],
        )
        lim.add_metric(["over_cap"], g.refused if g is not None else 0)
        lim.add_metric(["slow"], g.closed_slow if g is not None else 0)
        yield lim
        backlogs = self.m.tenant_backlogs()
        dist = GaugeHistogramMetricFamily(
            "jasiyo_cloud_tenant_backlog_events",
            "Tenants by backlog: events the tenant's "
            "furthest-behind agent had still to pull after its last pull (tenants whose "
            "agents pulled in the last hour).",
        )
        buckets = [(str(b), sum(1 for x in backlogs if x <= b)) for b in BACKLOG_BOUNDS]
        dist.add_metric([], [*buckets, ("+Inf", len(backlogs))], gsum_value=sum(backlogs))
        yield dist
        worst = GaugeMetricFamily(
            "jasiyo_cloud_tenant_backlog_max_events", "The largest tenant backlog (events)."
        )
        worst.add_metric([], max(backlogs, default=0))
        yield worst
        active = GaugeMetricFamily(
            "jasiyo_cloud_clients_active",
            "Agents (POPs) and dashboards (browsers) that made a signed request to this cloud "
            "process in the last hour.",
            labels=["kind"],
        )
        presence = self.m.presence
        for kind, count in (presence.active(time.time()) if presence is not None else {}).items():
            active.add_metric([kind], count)
        yield active


def _route_of(app: Any, scope: Scope) -> str:
    for route in getattr(app, "routes", ()):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(route.path)
    return "other"


def instrument(app: Any, metrics: CloudMetrics) -> App:
    """``app`` counted by ``metrics``, with ``GET /metrics`` answered by them."""
    metrics.presence = getattr(getattr(app, "state", None), "presence", None)

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        if scope["path"] == PATH:
            await _serve(metrics, scope, send)
            return
        route = _route_of(app, scope)
        method = scope["method"] if scope["method"] in _METHODS else "other"
        polling = route in _POLL_ROUTES and method == "GET" and _waits(scope)
        pulling = route == _POLL_ROUTES[0] and method == "GET"
        status, tail = [500], [b""]

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif pulling and message["type"] == "http.response.body":
                tail[0] = (tail[0] + message.get("body", b""))[-160:]
            await send(message)

        began = time.perf_counter()
        metrics.in_flight.inc()
        if polling:
            metrics.long_polls.inc()
        try:
            await app(scope, receive, counted)
        finally:
            metrics.in_flight.dec()
            if polling:
                metrics.long_polls.dec()
            metrics.latency.labels(route).observe(time.perf_counter() - began)
            metrics.requests.labels(route, method, str(status[0])).inc()
            if route == "/v1/hooks/{tenant}/{token}":
                metrics.webhooks.labels(str(status[0])).inc()
            if pulling and status[0] == 200:
                headers = dict(scope.get("headers") or [])
                tenant = headers.get(b"x-jasiyo-tenant", b"").decode("latin-1")[:64]
                agent = headers.get(b"x-jasiyo-agent", b"").decode("latin-1")[:64]
                # A POP's backlog, not a browser's: a dashboard reading a large log page by
                # page, or closed half way, is no sync problem.
                presence = metrics.presence
                if presence is None or presence.kind_of(tenant, agent) != "dashboard":
                    metrics.note_pull(tenant, agent, tail[0])

    return asgi


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def _waits(scope: Scope) -> bool:
    m = _WAIT.search((scope.get("query_string") or b"").decode("latin-1"))
    try:
        return m is not None and float(m.group(1)) > 0
    except ValueError:
        return False


async def _serve(metrics: CloudMetrics, scope: Scope, send: Send) -> None:
    if scope["method"] != "GET":
        status, ctype, body = 405, b"application/json", b'{"error":"method_not_allowed"}'
    elif not await metrics.authorised(scope):
        status, ctype, body = 401, b"application/json", b'{"error":"unauthorized"}'
    else:
        data, content_type = await run_in_threadpool(metrics.render)
        status, ctype, body = 200, content_type.encode(), data
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
    if status == 405:
        headers.append((b"allow", b"GET"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["CloudMetrics", "PATH", "instrument"]
