"""The agent's Prometheus metrics: one registry, rendered by ``prometheus_client``.

``AgentMetrics(agent).render()`` returns ``(body, content_type)`` for ``GET /metrics`` on
the agent's web listener. RADIUS counters come from every process (the agent's and its
authentication workers, :mod:`jasiyo.radius.workers`), summed at scrape time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from jasiyo.radius.metrics import RadiusCollector, snapshot

if TYPE_CHECKING:
    from jasiyo.agent.runtime import Agent


class AgentMetrics:
    """A registry over one running :class:`~jasiyo.agent.runtime.Agent`."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(RadiusCollector(self._radius_snapshots))
        if getattr(agent, "radsec", None) is not None:
            self.registry.register(RadsecCollector(lambda: agent.radsec))
        self.registry.register(PaymentsCollector(agent.cfg))
        from jasiyo.agent.opsmetrics import AgentCollector, JobsCollector, StoreCollector

        for extra in (AgentCollector(agent), JobsCollector(), StoreCollector(agent.cfg)):
            self.registry.register(extra)

    def _radius_snapshots(self) -> list[dict[str, Any]]:
        snaps = [snapshot(self.agent.radius)]
        workers = getattr(self.agent, "auth_workers", None)
        if workers is not None:
            snaps += workers.snapshots()
        return snaps

    def render(self) -> tuple[bytes, str]:
        """The whole registry in the Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class RadsecCollector:
    """RadSec connections: open now, accepted, refused and closed by reason."""

    def __init__(self, server: Any) -> None:
        self._server = server

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        rs = self._server()
        stats = dict(rs.stats)
        open_ = GaugeMetricFamily("jasiyo_radsec_connections_open", "RadSec connections open.")
        open_.add_metric([], rs.open_connections())
        yield open_
        acc = CounterMetricFamily(
            "jasiyo_radsec_connections", "RadSec connections of known routers accepted."
        )
        acc.add_metric([], stats.get("connections", 0))
        yield acc
        ended = CounterMetricFamily(
            "jasiyo_radsec_refused_or_closed",
            "RadSec connections refused or closed by the agent, by reason.",
            labels=["reason"],
        )
        for key in (
            "refused_handshake",
            "refused_unknown_certificate",
            "refused_limit",
            "closed_idle",
            "closed_framing",
            "closed_slow",
        ):
            ended.add_metric([key], stats.get(key, 0))
        yield ended


class PaymentsCollector:
    """Money in, read from the store at scrape time: callbacks by what became of them,
    payment requests by status, the suspense list. Labels are statuses, never people."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        from jasiyo.agent.store import Store

        store = Store.open(self.cfg)
        try:
            inbox = store.all("SELECT status, count(*) AS n FROM payment_inbox GROUP BY status")
            reqs = store.all("SELECT status, count(*) AS n FROM payment_requests GROUP BY status")
            open_ = store.scalar("SELECT count(*) FROM payment_suspense WHERE status = 'open'")
        finally:
            store.close()
        cb = GaugeMetricFamily(
            "jasiyo_payment_callbacks",
            "Provider callbacks received, by what became of them (applied, duplicate, refused, ...).",
            labels=["status"],
        )
        for r in inbox:
            cb.add_metric([r["status"]], r["n"])
        yield cb
        rq = GaugeMetricFamily(
            "jasiyo_payment_requests", "STK prompts and checkout links, by status.", labels=["status"]
        )
        for r in reqs:
            rq.add_metric([r["status"]], r["n"])
        yield rq
        un = GaugeMetricFamily("jasiyo_payments_unmatched", "Money in the suspense list.")
        un.add_metric([], open_ or 0)
        yield un


def radius_registry(*servers: Any) -> CollectorRegistry:
    """A registry over RadiusServers directly (tests, the benchmarks)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RadiusCollector(lambda: [snapshot(s) for s in servers]))
    return registry


__all__ = ["AgentMetrics", "RadsecCollector", "radius_registry"]
