"""The agent's operational metrics beside RADIUS: enforcement, billing and the other
scheduled jobs, sync with the cloud, the SMS outbox, and the agent process itself.

Queues are read from the store at scrape time (one connection per scrape, indexed counts),
so the numbers are the durable truth whichever process or thread changed them; job
durations come from :data:`jasiyo.agent.jobstats.JOBS`. Labels are job names, statuses,
actions and router names (at most :data:`~jasiyo.radius.metrics.MAX_NAS_LABELS`), never a
username or a phone number.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jasiyo.agent.jobstats import JOB_BOUNDS, JOBS, JobStats
from jasiyo.radius.metrics import MAX_NAS_LABELS


def histogram(
    name: str,
    doc: str,
    bounds: tuple[float, ...],
    h: Mapping[str, Any] | None,
    labels: Mapping[str, str] | None = None,
    fam: Any = None,
) -> Any:
    """A ``HistogramMetricFamily`` from non-cumulative bucket counts (``Buckets.snapshot``)."""
    from prometheus_client.core import HistogramMetricFamily

    fam = fam or HistogramMetricFamily(name, doc, labels=list(labels or {}))
    counts = h["counts"] if h else [0] * (len(bounds) + 1)
    cumulative, running = [], 0
    for bound, n in zip((*(str(b) for b in bounds), "+Inf"), counts, strict=True):
        running += n
        cumulative.append((bound, running))
    fam.add_metric(list((labels or {}).values()), cumulative, h["sum"] if h else 0.0)
    return fam


class JobsCollector:
    """Duration histograms, failures and last success of every scheduled job."""

    def __init__(self, stats: JobStats = JOBS) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        snap = self.stats.snapshot()
        dur = HistogramMetricFamily(
            "jasiyo_job_duration_seconds",
            "Duration of each run of "
            "a scheduled job (billing-tick, enforce, router-reconcile, "
            "session-reaper, retention).",
            labels=["job"],
        )
        fails = CounterMetricFamily(
            "jasiyo_job_failures",
            "Runs of a scheduled job that raised (logged as scheduler.job_failed).",
            labels=["job"],
        )
        last = GaugeMetricFamily(
            "jasiyo_job_last_success_timestamp_seconds",
            "When the job last finished without an error (Unix time).",
            labels=["job"],
        )
        for name, s in sorted(snap.items()):
            histogram("", "", JOB_BOUNDS, s["duration"], {"job": name}, fam=dur)
            fails.add_metric([name], s["failures"])
            if s["last_success"] is not None:
                last.add_metric([name], s["last_success"])
        yield dur
        yield fails
        yield last


class AgentCollector:
    """The agent process: when it started, its authentication workers."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.started = time.time()

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from jasiyo import __version__

        info = GaugeMetricFamily("jasiyo_agent_info", "The running agent (always 1).", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        start = GaugeMetricFamily(
            "jasiyo_agent_start_time_seconds", "When the agent process started (Unix time)."
        )
        start.add_metric([], self.started)
        yield start
        workers = getattr(self.agent, "auth_workers", None)
        procs = GaugeMetricFamily(
            "jasiyo_radius_processes",
            "Processes answering Access-Requests on UDP (the live workers, else the agent's).",
        )
        procs.add_metric([], len(workers.pids()) if workers is not None else 1)
        yield procs
        restarts = CounterMetricFamily(
            "jasiyo_radius_worker_restarts", "Authentication workers restarted after they died."
        )
        restarts.add_metric([], workers.restarts if workers is not None else 0)
        yield restarts


class StoreCollector:
    """Queues and backlogs read from the store: enforcement per NAS, router reconciles,
    sync with the cloud, the SMS outbox."""

    def __init__(self, cfg: Any, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.clock = clock

    def collect(self) -> Iterator[Any]:
        from jasiyo.agent.store import Store

        store = Store.open(self.cfg)
        try:
            yield from self._enforcement(store)
            yield from self._sync(store)
            yield from self._sms(store)
        finally:
            store.close()

    def _enforcement(self, store: Any) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        names = {r["nas_ip"]: r["name"] for r in store.all("SELECT nas_ip, name FROM routers")}
        rows = store.all(
            "SELECT action, status, COALESCE(router, nas_ip, '') AS nas, count(*) AS n, "
            "min(created_at) AS oldest FROM enforce_jobs WHERE status IN ('pending', 'failed') "
            "GROUP BY action, status, nas"
        )
        queue = GaugeMetricFamily(
            "jasiyo_enforce_queue",
            "Enforcement jobs waiting (Disconnect, CoA, router reconcile), by action and NAS (router name).",
            labels=["action", "nas"],
        )
        failed = GaugeMetricFamily(
            "jasiyo_enforce_failed",
            "Enforcement jobs that gave up "
            "(NAK, error, cancelled; `jasiyo enforce list`), by action "
            "and NAS.",
            labels=["action", "nas"],
        )
        oldest = GaugeMetricFamily(
            "jasiyo_enforce_oldest_pending_age_seconds",
            "Age of the oldest enforcement job still waiting (0: none).",
        )
        seen: set[str] = set()
        now, first = self.clock(), None
        for r in rows:
            nas = names.get(r["nas"], r["nas"] or "unknown")
            if nas not in seen and len(seen) >= MAX_NAS_LABELS:
                nas = "other"
            seen.add(nas)
            (queue if r["status"] == "pending" else failed).add_metric([r["action"], nas], r["n"])
            if r["status"] == "pending" and (first is None or r["oldest"] < first):
                first = r["oldest"]
        oldest.add_metric([], max(0.0, now - first) if first is not None else 0.0)
        yield queue
        yield failed
        yield oldest
        rec = GaugeMetricFamily(
            "jasiyo_router_reconciles",
            "Router reconciles finished, by outcome (done, failed).",
            labels=["router", "outcome"],
        )
        last = GaugeMetricFamily(
            "jasiyo_router_last_reconcile_timestamp_seconds",
            "When a router was last reconciled successfully (Unix time).",
            labels=["router"],
        )
        for r in store.all(
            "SELECT router, status, count(*) AS n, max(done_at) AS at FROM enforce_jobs "
            "WHERE action = 'reconcile' AND status IN ('done', 'failed') "
            "GROUP BY router, status LIMIT ?",
            (MAX_NAS_LABELS * 2,),
        ):
            rec.add_metric([r["router"] or "unknown", r["status"]], r["n"])
            if r["status"] == "done" and r["at"] is not None:
                last.add_metric([r["router"] or "unknown"], r["at"])
        yield rec
        yield last

    def _sync(self, store: Any) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from jasiyo.agent.synclog import AgentLog
        from jasiyo.sync.client import status_of

        st = status_of(AgentLog(store), "", "")
        enrolled = bool(store.meta("sync.tenant_id"))
        g = GaugeMetricFamily(
            "jasiyo_sync_enrolled",
            "1 when this agent is enrolled with a cloud (sync runs), 0 when it runs stand-alone.",
        )
        g.add_metric([], 1 if enrolled else 0)
        yield g
        g = GaugeMetricFamily("jasiyo_sync_backlog_events", "Local events not yet pushed to the cloud.")
        g.add_metric([], st.backlog)
        yield g
        g = GaugeMetricFamily(
            "jasiyo_sync_oldest_unpushed_age_seconds", "Age of the oldest event not yet pushed (0: none)."
        )
        g.add_metric([], st.oldest_unpushed_age or 0.0)
        yield g
        g = GaugeMetricFamily(
            "jasiyo_sync_lag_events",
            "Events in the tenant's cloud log this agent has not pulled yet (as of its last pull).",
        )
        g.add_metric([], st.lag_events)
        yield g
        g = GaugeMetricFamily(
            "jasiyo_sync_last_success_timestamp_seconds",
            "When sync last reached the cloud without an error (Unix time; 0: never).",
        )
        g.add_metric([], st.last_ok_at or 0.0)
        yield g
        g = GaugeMetricFamily(
            "jasiyo_sync_quarantined_events",
            "Pulled events that would not open, set aside (`jasiyo sync quarantine list`).",
        )
        g.add_metric([], st.quarantined)
        yield g
        g = GaugeMetricFamily(
            "jasiyo_sync_clock_offset_seconds", "The cloud's clock minus this POP's at the last pull."
        )
        g.add_metric([], st.clock_offset or 0.0)
        yield g

    def _sms(self, store: Any) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        by = GaugeMetricFamily(
            "jasiyo_sms_messages",
            "SMS in the outbox, by status (queued, sending, sent, delivered, failed, dropped).",
            labels=["status"],
        )
        for r in store.all("SELECT status, count(*) AS n FROM notifications GROUP BY status"):
            by.add_metric([r["status"]], r["n"])
        yield by
        first = store.scalar("SELECT min(created_at) FROM notifications WHERE status = 'queued'")
        g = GaugeMetricFamily(
            "jasiyo_sms_oldest_queued_age_seconds",
            "Age of the oldest SMS waiting to be sent (0: none; quiet hours hold some).",
        )
        g.add_metric([], max(0.0, self.clock() - first) if first is not None else 0.0)
        yield g
        cost = GaugeMetricFamily(
            "jasiyo_sms_cost_minor",
            "What the gateway charged for messages sent, in minor units, by currency.",
            labels=["currency"],
        )
        for r in store.all(
            "SELECT cost_currency AS c, sum(cost_minor) AS n FROM notifications "
            "WHERE cost_minor IS NOT NULL GROUP BY cost_currency LIMIT 20"
        ):
            cost.add_metric([r["c"] or ""], r["n"] or 0)
        yield cost


__all__ = ["AgentCollector", "JobsCollector", "StoreCollector", "histogram"]
