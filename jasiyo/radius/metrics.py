"""RADIUS metrics for Prometheus: what the server counts, exposed by ``prometheus_client``.

The hot path does not call ``prometheus_client`` (its ``Counter.inc`` takes a lock, and the
server answers tens of thousands of requests a second per core): the server keeps plain
integer counters (:class:`~jasiyo.radius.server.RadiusStats`, drops per reason and NAS,
:class:`Buckets` latency histograms), and :class:`RadiusCollector` turns snapshots of them
into metric families when Prometheus scrapes. With several authentication workers each
worker sends its snapshot to the agent's process (:mod:`jasiyo.radius.workers`), and the
collector sums them, so one scrape of the agent covers every process.

Cardinality is bounded: labels are request type, decision, drop reason and NAS name (routers
the store knows, at most :data:`MAX_NAS_LABELS`, the rest ``other``; an unknown source is
``unknown``). Never a username or an address.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client.core import HistogramMetricFamily

#: seconds; RADIUS answers in well under a millisecond, NASes give up after a few seconds
LATENCY_BOUNDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                  0.25, 0.5, 1.0, 2.5, 5.0)  # fmt: skip
MAX_NAS_LABELS = 1000
UNKNOWN_NAS = "unknown"


class Buckets:
    """A latency histogram: counts per bucket of :data:`LATENCY_BOUNDS` (not cumulative;
    the last is +Inf) and their sum. One writer; readers take :meth:`snapshot`."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BOUNDS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(LATENCY_BOUNDS, seconds)] += 1
        self.total += seconds

    def snapshot(self) -> dict[str, Any]:
        return {"counts": list(self.counts), "sum": self.total}


class DropCounter:
    """Drops per (reason, NAS name), with the NAS label set bounded."""

    __slots__ = ("counts", "_nases")

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self._nases: set[str] = set()

    def add(self, reason: str, nas: str | None) -> None:
        label = nas or UNKNOWN_NAS
        if label not in self._nases:
            if len(self._nases) >= MAX_NAS_LABELS:
                label = "other"
            else:
                self._nases.add(label)
        key = (reason, label)
        self.counts[key] = self.counts.get(key, 0) + 1


def snapshot(server: Any) -> dict[str, Any]:
    """Plain data (picklable) of one RadiusServer's counters, for :class:`RadiusCollector`."""
    writer = getattr(server, "_writer", None)
    return {
        "stats": server.stats.as_dict(),
        "drops": dict(server.drops.counts),
        "auth_latency": server.auth_latency.snapshot(),
        "acct_latency": server.acct_latency.snapshot(),
        "commit_latency": writer.commit_latency.snapshot() if writer else None,
        "acct_queue": writer.queue_depth() if writer else 0,
    }


def merge(snaps: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The sum of several processes' snapshots (queue depth summed too: one writer)."""
    out: dict[str, Any] = {"stats": {}, "drops": {}, "acct_queue": 0}
    for snap in snaps:
        for k, v in snap["stats"].items():
            out["stats"][k] = out["stats"].get(k, 0) + v
        for k, v in snap["drops"].items():
            out["drops"][k] = out["drops"].get(k, 0) + v
        out["acct_queue"] += snap.get("acct_queue") or 0
        for name in ("auth_latency", "acct_latency", "commit_latency"):
            h = snap.get(name)
            if not h:
                continue
            acc = out.setdefault(name, {"counts": [0] * len(h["counts"]), "sum": 0.0})
            acc["counts"] = [a + b for a, b in zip(acc["counts"], h["counts"], strict=True)]
            acc["sum"] += h["sum"]
    return out


def _histogram(
    name: str, doc: str, h: Mapping[str, Any] | None, labels: Mapping[str, str] | None = None
) -> HistogramMetricFamily:
    from prometheus_client.core import HistogramMetricFamily

    fam = HistogramMetricFamily(name, doc, labels=list(labels or {}))
    counts = h["counts"] if h else [0] * (len(LATENCY_BOUNDS) + 1)
    cumulative, running = [], 0
    for bound, n in zip((*(str(b) for b in LATENCY_BOUNDS), "+Inf"), counts, strict=True):
        running += n
        cumulative.append((bound, running))
    fam.add_metric(list((labels or {}).values()), cumulative, h["sum"] if h else 0.0)
    return fam


class RadiusCollector:
    """Metric families from the snapshots ``sources()`` returns (one per process): a
    ``prometheus_client`` custom collector (``registry.register(RadiusCollector(...))``).
    prometheus_client is imported only when scraped: the server and the CLI start without it.
    """

    def __init__(self, sources: Callable[[], Iterable[Mapping[str, Any]]]) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        m = merge(self._sources())
        s = m["stats"]
        req = CounterMetricFamily(
            "jasiyo_radius_requests",
            "RADIUS requests answered, by type and decision.",
            labels=["type", "decision"],
        )
        req.add_metric(["access", "accept"], s.get("access_accepts", 0))
        req.add_metric(["access", "reject"], s.get("access_rejects", 0))
        req.add_metric(
            ["accounting", "stored"], s.get("accounting_responses", 0) - s.get("accounting_ignored", 0)
        )
        req.add_metric(["accounting", "ignored"], s.get("accounting_ignored", 0))
        req.add_metric(["status_server", "answered"], s.get("status_server", 0))
        yield req
        rec = CounterMetricFamily(
            "jasiyo_radius_received", "RADIUS packets received (UDP datagrams and RadSec records)."
        )
        rec.add_metric([], s.get("received", 0))
        yield rec
        dup = CounterMetricFamily(
            "jasiyo_radius_duplicates", "Retransmissions, by outcome.", labels=["outcome"]
        )
        dup.add_metric(["resent"], s.get("duplicates_resent", 0))
        dup.add_metric(["in_flight"], s.get("duplicates_in_flight", 0))
        yield dup
        drops = CounterMetricFamily(
            "jasiyo_radius_dropped",
            "RADIUS packets dropped unanswered, by reason and NAS (router name).",
            labels=["reason", "nas"],
        )
        for (reason, nas), n in sorted(m["drops"].items()):
            drops.add_metric([reason.removeprefix("dropped_"), nas], n)
        yield drops
        yield _histogram(
            "jasiyo_radius_auth_latency_seconds",
            "Time to answer an Access-Request (decode to reply sent).",
            m.get("auth_latency"),
        )
        yield _histogram(
            "jasiyo_radius_accounting_latency_seconds",
            "Time from an Accounting-Request's arrival to its answer (after it is on disk).",
            m.get("acct_latency"),
        )
        yield _histogram(
            "jasiyo_radius_accounting_commit_seconds",
            "Duration of each group commit of accounting records.",
            m.get("commit_latency"),
        )
        depth = GaugeMetricFamily(
            "jasiyo_radius_accounting_queue", "Accounting records received and not yet on disk."
        )
        depth.add_metric([], m["acct_queue"])
        yield depth
        fail = CounterMetricFamily(
            "jasiyo_radius_accounting_write_failures",
            "Group commits the store refused (records unanswered, the NAS retransmits).",
        )
        fail.add_metric([], s.get("acct_write_failures", 0))
        yield fail


__all__ = ["Buckets", "DropCounter", "LATENCY_BOUNDS", "RadiusCollector", "merge", "snapshot"]
