"""The agent's periodic work on APScheduler 3.x (``AsyncIOScheduler``).

Jobs are defined here in code and sized from the config; their *state* lives in the
store (``billing_state``, ``enforce_jobs``, session timestamps), never in the scheduler.
So the scheduler uses the in-memory job store: a restart re-creates the same jobs, and
each job, being idempotent and catch-up safe, picks up exactly where the store says.
Every job runs once at start (catch-up after downtime), then on its interval, with
``coalesce=True`` (a backlog of missed runs is one run), ``max_instances=1`` (never two at
once) and ``misfire_grace_time=None`` (late is still run).

Jobs (:func:`agent_jobs`):

=================  ===========================================  ===========================
billing-tick       :func:`jasiyo.agent.billing.tick` (expiry,   ``[billing] tick_minutes``
                   renewals, invoices, grace, reminders, FUP)
enforce            :func:`jasiyo.agent.enforce.process_pending` ``[billing] enforce_interval``
session-reaper     :func:`jasiyo.agent.sessions.close_stale`    ``[radius] interim_interval``
router-reconcile   queue a driver reconcile of every router     ``[routers] reconcile_minutes``
retention          :func:`jasiyo.agent.retention.prune`         daily
usage-publish      :func:`jasiyo.agent.usage_sync.publish`      every minute
                   (per-cycle usage summaries for other POPs),
                   then :func:`jasiyo.agent.pops.publish` (the
                   POP's zone, currency, SMS counts, version:
                   at most every 5 minutes, if changed)
snapshot           :func:`jasiyo.agent.snapshot.periodic`       hourly (writes every
                                                                ``[privacy] snapshot_days``,
                                                                or after an erasure)
=================  ===========================================  ===========================

The agent runtime mounts it with :func:`attach` (one of ``runtime.Agent``'s parts).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from jasiyo.agent import billing, enforce, pops, retention, sessions, usage_sync
from jasiyo.agent.jobstats import JOBS
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.log import event, get_logger

log = get_logger(__name__)

JobFunc = Callable[[], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One periodic job: an async function and its interval in seconds."""

    func: JobFunc
    seconds: float


def build_scheduler(jobs: Mapping[str, JobSpec]) -> AsyncIOScheduler:
    """An ``AsyncIOScheduler`` (not started) with ``jobs``, each due at once on start.

    Call ``start()`` inside the running event loop; ``shutdown(wait=False)`` to stop.
    """
    scheduler = AsyncIOScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    # APScheduler logs every run at INFO; our jobs log what they did themselves.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    logging.getLogger("apscheduler.scheduler").setLevel(logging.WARNING)
    for name, spec in jobs.items():
        scheduler.add_job(
            _guarded(name, spec.func),
            "interval",
            seconds=spec.seconds,
            id=name,
            name=name,
            replace_existing=True,
            next_run_time=_now(),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )
    return scheduler


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


#: Jobs running now, so a shutdown can let them finish instead of cancelling them mid-write.
_RUNNING: set[asyncio.Task[Any]] = set()


def _guarded(name: str, func: JobFunc) -> JobFunc:
    """Log a failing run and keep the schedule (the next run retries from the store)."""

    async def run() -> None:
        task = asyncio.current_task()
        if task is not None:
            _RUNNING.add(task)
        began, ok = time.perf_counter(), False
        try:
            await func()
            ok = True
        except Exception as exc:  # noqa: BLE001 - one bad run must not stop the agent's clock
            event(log, "scheduler.job_failed", logging.ERROR, job=name, error=repr(exc))
        finally:
            _RUNNING.discard(task)
            JOBS.record(name, time.perf_counter() - began, ok)  # /metrics (agent.jobstats)

    run.__name__ = f"job_{name.replace('-', '_')}"
    return run


def agent_jobs(
    cfg: Config,
    open_store: Callable[[], Store],
    *,
    send: enforce.Sender | None = None,
    reconcile: enforce.Reconciler | None = None,
) -> tuple[dict[str, JobSpec], Callable[[], None]]:
    """The agent's jobs, and a function that closes what they opened (call after shutdown).

    ``open_store()`` makes a new Store (one per thread, as SQLite wants).

    Billing and the reaper run in worker threads (they write in batches); the enforcement
    queue runs on the event loop with its own store, since its waiting is network I/O.
    """
    loop_store: list[Store] = []

    def in_thread(fn: Callable[[Store], Any]) -> JobFunc:
        def work() -> Any:
            store = open_store()
            try:
                return fn(store)
            finally:
                store.close()

        async def job() -> Any:
            return await asyncio.to_thread(work)

        return job

    dispatcher: list[enforce.Dispatcher] = []

    async def enforce_job() -> None:
        # Starts one worker per NAS with due jobs and returns: a NAS that does not answer
        # holds up only its own queue, and this job never overruns its interval.
        if not dispatcher:
            loop_store.append(open_store())
            dispatcher.append(enforce.Dispatcher(loop_store[0], cfg, send, reconcile))
        for task in dispatcher[0].run_once():
            _RUNNING.add(task)
            task.add_done_callback(_RUNNING.discard)

    def reap(store: Store) -> int:
        n = sessions.close_stale(store, cfg)
        if n:
            event(log, "sessions.reaped", stale=n)
        return n

    def prune(store: Store) -> dict[str, int]:
        return retention.prune(store, cfg)  # logs retention.pruned itself

    def snapshot_job(store: Store) -> None:
        from jasiyo.agent import snapshot
        from jasiyo.errors import JasiyoError

        try:
            snapshot.periodic(store, cfg)
        except JasiyoError as exc:  # the cloud unreachable: tomorrow, or `jasiyo sync snapshot`
            event(log, "sync.snapshot_failed", level=30, error=str(exc))

    def publish(store: Store) -> None:
        usage_sync.publish(store)
        pops.publish(store, cfg)

    def close() -> None:
        while loop_store:
            loop_store.pop().close()

    jobs = {
        "billing-tick": JobSpec(in_thread(lambda s: billing.tick(s, cfg)), cfg.billing.tick_minutes * 60.0),
        "enforce": JobSpec(enforce_job, cfg.billing.enforce_interval),
        "session-reaper": JobSpec(in_thread(reap), float(cfg.radius.interim_interval)),
        "router-reconcile": JobSpec(
            in_thread(enforce.enqueue_reconcile_all), cfg.routers.reconcile_minutes * 60.0
        ),
        "retention": JobSpec(in_thread(prune), 86400.0),
        "usage-publish": JobSpec(in_thread(publish), usage_sync.PUBLISH_EVERY),
        "snapshot": JobSpec(in_thread(snapshot_job), 3600.0),
    }
    return jobs, close


async def attach(agent: Any) -> Callable[[], Awaitable[None]]:
    """A part of ``jasiyo.agent.runtime.Agent``: start the scheduler for a running Agent.

    Uses ``agent.cfg`` and ``agent.box``; returns the coroutine function that stops it.
    """
    cfg: Config = agent.cfg

    def open_store() -> Store:
        return Store(cfg.db_path, agent.box)

    jobs, close = agent_jobs(cfg, open_store)
    scheduler = build_scheduler(jobs)
    scheduler.start()
    event(log, "scheduler.start", jobs=",".join(jobs))

    async def stop() -> None:
        # No new runs; let the ones in flight finish (a billing tick mid-batch), then stop.
        scheduler.pause()
        running = [t for t in _RUNNING if not t.done()]
        if running:
            await asyncio.wait(running, timeout=30)
        scheduler.shutdown(wait=False)
        close()
        event(log, "scheduler.stop")

    return stop
