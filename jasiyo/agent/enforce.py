"""Enforcement: make live sessions and routers follow a change of desired state.

The queue is the ``enforce_jobs`` table. Store triggers (migration ``m002_billing``) add
jobs in the same transaction as the change, whoever makes it (CLI, billing tick, sync):

- access class changed (allowed / walled garden / rejected): a ``disconnect`` job per
  active RADIUS session: MikroTik cannot move a live session between address lists or
  pools by CoA, so the session is dropped and re-authenticates into its new state;
- speed changed on an allowed subscriber (plan change, plan edit, fair-usage throttle):
  a ``coa`` job per active session carrying the new ``Mikrotik-Rate-Limit``;
- either of those: one ``reconcile`` job per router that has driver credentials (at most
  one pending per router), which runs the router's driver over every desired state.

:func:`process_pending` works the queue: a job is done once the NAS ACKs, or NAKs with
Session-Context-Not-Found (the session is already gone), or the session has ended per
accounting. Timeouts are retried with exponential backoff; a NAKed CoA falls back to a
Disconnect-Request. A job whose NAS IP no router has (yet) waits with the same backoff, since
the router may be added again, and is given up after :data:`NO_ROUTER_GIVE_UP_S`. Jobs live
in the store, so a restart loses none and repeats none that finished.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jasiyo.agent import desired, pops, routers, sessions
from jasiyo.agent import subscribers as subs_mod
from jasiyo.agent.session_ips import BY_ADDRESS, with_session_addresses
from jasiyo.agent.store import Row, Store
from jasiyo.config import Config
from jasiyo.errors import DriverError, JasiyoError, NotFound, RadiusError, ValidationError
from jasiyo.log import event, get_logger
from jasiyo.network import Access, DesiredState
from jasiyo.radius import coa
from jasiyo.radius.backend import NasClient
from jasiyo.radius.vendors import rate_attributes

log = get_logger(__name__)

#: RFC 5176 Error-Cause 503: the NAS has no such session (nothing left to enforce).
SESSION_NOT_FOUND = 503
#: Backoff between attempts: base * 2**attempts seconds, capped.
BACKOFF_BASE = 2.0
BACKOFF_MAX = 300.0
#: A Disconnect the NAS keeps refusing (other than "no such session") is given up after this.
MAX_NAKS = 5
#: A job whose NAS IP belongs to no router waits (with backoff) this long from its creation
#: for the router to come back (removed and added again, NAS IP corrected), then gives up.
NO_ROUTER_GIVE_UP_S = 24 * 3600.0

Sender = Callable[[str, NasClient, dict[str, Any]], Awaitable[coa.CoAResult]]
"""``send(action, nas, attrs)``: ``action`` is ``"disconnect"`` or ``"coa"``."""

Reconciler = Callable[[Row, str | None, Sequence[DesiredState], Config], Any]
"""``reconcile(router_row, router_password, desired_states, cfg)``, blocking (run in a thread)."""


def radius_sender(cfg: Config) -> Sender:
    """The real sender: :mod:`jasiyo.radius.coa` with the ``[radius]`` timeout and retries."""

    async def send(action: str, nas: NasClient, attrs: dict[str, Any]) -> coa.CoAResult:
        fn = coa.disconnect if action == "disconnect" else coa.change
        return await fn(nas, attrs, timeout=cfg.radius.coa_timeout,
                        retries=cfg.radius.coa_retries + 1)

    return send


def driver_reconcile(
    router: Row, password: str | None, states: Sequence[DesiredState], cfg: Config,
) -> Any:
    """Run the router's driver (``jasiyo.drivers``) over every desired state; blocking."""
    from jasiyo.drivers import RouterConfig, get_driver

    options = json.loads(router["options"] or "{}")
    known = {"tls", "ca_file", "fingerprint", "mode", "pay_page", "pay_page_port",
             "adopt_existing"}
    rc = RouterConfig(
        host=router["host"], username=router["username"] or "", password=password or "",
        name=router["name"], port=router["port"], timeout=cfg.routers.timeout,
        address_list=cfg.radius.suspended_address_list,
        **{k: v for k, v in options.items() if k in known},
        options={k: str(v) for k, v in options.items() if k not in known},
    )
    driver = get_driver(router["driver"])(rc)
    try:
        return driver.reconcile(states)
    finally:
        driver.close()


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    username: str
    action: str
    nas_ip: str | None
    acct_session_id: str | None
    framed_ip: str | None
    router: str | None
    reason: str
    status: str
    attempts: int
    next_attempt_at: float
    created_at: float
    done_at: float | None
    result: str | None
    last_error: str | None


def list_jobs(store: Store, *, pending_only: bool = False, limit: int = 1000) -> list[Job]:
    where = "WHERE status = 'pending' " if pending_only else ""
    rows = store.all(f"SELECT * FROM enforce_jobs {where}ORDER BY id DESC LIMIT ?", (limit,))
    return [Job(**r) for r in rows]


def enqueue_reconcile_all(store: Store, reason: str = "scheduled") -> int:
    """Queue a reconcile of every router of this POP that has driver credentials (skips
    ones queued; another POP's routers are that POP's to drive)."""
    from jasiyo.agent.schema import _LOCAL_ROUTERS

    now = store.now()
    with store.transaction():
        cur = store.execute(
            "INSERT OR IGNORE INTO enforce_jobs (username, action, router, reason, "
            "next_attempt_at, created_at) SELECT '*', 'reconcile', name, ?, ?, ? FROM routers "
            "WHERE username IS NOT NULL AND password_enc IS NOT NULL AND "
            f"{_LOCAL_ROUTERS}", (reason, now, now),
        )
    return cur.rowcount


def _finish(store: Store, job: Row, status: str, result: str, error: str | None = None) -> None:
    store.execute(
        "UPDATE enforce_jobs SET status = ?, result = ?, last_error = ?, done_at = ?, "
        "attempts = attempts + 1 WHERE id = ?", (status, result, error, store.now(), job["id"]),
    )
    event(log, "enforce.done", job=job["id"], user=job["username"], action=job["action"],
          nas=job["nas_ip"] or job["router"], status=status, result=result, error=error)


def _retry(store: Store, job: Row, error: str) -> None:
    attempts = job["attempts"] + 1
    delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** min(attempts - 1, 20))
    store.execute(
        "UPDATE enforce_jobs SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
        (attempts, store.now() + delay, error, job["id"]),
    )
    event(log, "enforce.retry", job=job["id"], user=job["username"], action=job["action"],
          attempts=attempts, wait=f"{delay:.0f}s", error=error)


def _close_session(store: Store, job: Row, cause: str) -> None:
    store.execute(
        "UPDATE radius_sessions SET status = 'closed', stopped_at = ?, "
        "terminate_cause = COALESCE(terminate_cause, ?) "
        "WHERE nas_ip = ? AND acct_session_id = ? AND status IN ('active', 'stale')",
        (store.now(), cause, job["nas_ip"], job["acct_session_id"]),
    )


@dataclass(frozen=True, slots=True)
class _Prepared:
    job: Row
    nas: NasClient | None = None
    attrs: dict[str, Any] | None = None
    router_password: str | None = None
    skip: str | None = None  # finish without sending, with this result
    skip_status: str = "done"
    skip_error: str | None = None
    wait: str | None = None  # not sendable yet: retry later with backoff, this as last_error


def _prepare(store: Store, cfg: Config, job: Row) -> _Prepared:
    """Everything a job needs from the store, read before any network I/O."""
    if job["action"] == "reconcile":
        row = store.one("SELECT * FROM routers WHERE name = ?", (job["router"],))
        if row is None or row["password_enc"] is None:
            return _Prepared(job, skip="router removed or has no driver credentials",
                             skip_status="failed")
        _, password = routers.credentials(store, row["name"])
        return _Prepared(job, router_password=password, attrs={"router": row})
    session = store.one(
        "SELECT status FROM radius_sessions WHERE nas_ip = ? AND acct_session_id = ?",
        (job["nas_ip"], job["acct_session_id"]),
    )
    # A stale session only missed its interims (often: the agent was down); it may be up.
    if session is None or session["status"] not in ("active", "stale"):
        return _Prepared(job, skip="session ended")
    nas = sessions.nas_for(store, cfg, job["nas_ip"])
    if nas is None:
        # The router may come back (remove + add, a corrected NAS IP): wait, but not forever.
        waited = store.now() - job["created_at"]
        if waited >= NO_ROUTER_GIVE_UP_S:
            return _Prepared(
                job, skip="no-router", skip_status="failed",
                skip_error=f"no router had NAS IP {job['nas_ip']} for {waited / 3600:.0f} h; "
                           "gave up (add the router with that --nas-ip, then `jasiyo session disconnect "
                           f"{job['username']}` if the session is still up)")
        return _Prepared(job, wait=f"no router has NAS IP {job['nas_ip']} (waiting for one)")
    attrs: dict[str, Any] = coa.session_attributes(
        job["username"], job["acct_session_id"], job["framed_ip"]
    )
    if job["action"] == "coa":
        state = desired.for_subscriber(store, job["username"], cfg.radius)
        if state is None or state.access is not Access.ALLOW:
            return _Prepared(job, skip="superseded: no longer allowed")
        rate = rate_attributes(state.rate_limit, nas.vendor)
        if not rate:
            return _Prepared(job, skip=f"no rate attribute for a {nas.vendor} NAS")
        attrs.update(rate)
    return _Prepared(job, nas=nas, attrs=attrs)


def _reconcile_in_thread(store: Store, p: _Prepared, cfg: Config,
                         reconcile: Reconciler) -> Any:
    """Read every desired state with a connection of this worker thread, then reconcile.

    Reading tens of thousands of states takes a noticeable time: doing it here keeps the
    event loop (and RADIUS on it) free.
    """
    from dataclasses import replace

    assert p.attrs is not None
    router = p.attrs["router"]
    own = Store(store.path, store.box, now=store.now)
    try:
        states = desired.all_states(own, cfg.radius)
        away = pops.homed_elsewhere(own, router["name"])  # another router's to configure
        if away:
            states = [s for s in states if s.username not in away]
        if router["driver"] in BY_ADDRESS:
            states = with_session_addresses(own, states, router["nas_ip"])
        if json.loads(router["options"] or "{}").get("mode") == "api":
            states = [replace(s, password=subs_mod.password_of(own, s.username))
                      for s in states]
    finally:
        own.close()
    return reconcile(router, p.router_password, states, cfg)


async def _run(store: Store, p: _Prepared, cfg: Config, send: Sender,
               reconcile: Reconciler) -> Any:
    """The network part of one job. Returns the result or the exception it raised."""
    try:
        if p.job["action"] == "reconcile":
            return await asyncio.to_thread(_reconcile_in_thread, store, p, cfg, reconcile)
        assert p.nas is not None and p.attrs is not None
        return await send(p.job["action"], p.nas, p.attrs)
    except (JasiyoError, OSError) as exc:
        return exc


def _record(store: Store, p: _Prepared, outcome: Any) -> bool:
    """Write what happened to one job. True when the job is finished (done or failed)."""
    job = p.job
    if job["action"] == "reconcile":
        if isinstance(outcome, DriverError | OSError):
            _retry(store, job, str(outcome) or type(outcome).__name__)
            return False
        if isinstance(outcome, JasiyoError):
            _finish(store, job, "failed", "error", str(outcome))
            return True
        failed = len(getattr(outcome, "failed", ()) or ())
        _finish(store, job, "done", f"applied {len(getattr(outcome, 'applied', ()) or ())}, "
                f"failed {failed}")
        return True
    if isinstance(outcome, RadiusError):
        _finish(store, job, "failed", "error", str(outcome))
        return True
    if isinstance(outcome, Exception):
        _retry(store, job, str(outcome) or type(outcome).__name__)
        return False
    if outcome.status is coa.CoAStatus.ACK:
        if job["action"] == "disconnect":
            _close_session(store, job, "Admin-Reset")
        _finish(store, job, "done", "ack")
        return True
    if outcome.status is coa.CoAStatus.NAK:
        if outcome.error_cause == SESSION_NOT_FOUND:
            _close_session(store, job, "Lost-Service")
            _finish(store, job, "done", "no-session")
            return True
        if job["action"] == "coa":
            # The NAS would not change the live session: drop it, login applies the rate.
            store.execute(
                "UPDATE enforce_jobs SET action = 'disconnect', next_attempt_at = ?, "
                "last_error = ? WHERE id = ?",
                (store.now(), f"CoA NAK {outcome.error_cause_name}", job["id"]),
            )
            return False
        if job["attempts"] + 1 >= MAX_NAKS:
            _finish(store, job, "failed", "nak", outcome.error_cause_name)
            return True
        _retry(store, job, f"NAK {outcome.error_cause_name}")
        return False
    _retry(store, job, "no answer from the NAS")
    return False


def _due(store: Store, limit: int) -> list[Row]:
    return store.all(
        "SELECT * FROM enforce_jobs WHERE status = 'pending' AND next_attempt_at <= ? "
        "ORDER BY next_attempt_at, id LIMIT ?", (store.now(), limit),
    )


def _queue_of(job: Row) -> str:
    """Jobs are worked one queue per NAS (or router, for reconciles)."""
    return f"nas:{job['nas_ip']}" if job["action"] != "reconcile" else f"router:{job['router']}"


def _by_queue(rows: Sequence[Row]) -> dict[str, list[Row]]:
    queues: dict[str, list[Row]] = {}
    for row in rows:
        queues.setdefault(_queue_of(row), []).append(row)
    return queues


async def _work_queue(store: Store, cfg: Config, rows: Sequence[Row], send: Sender,
                      reconcile: Reconciler) -> int:
    """Send one NAS's due jobs (in parallel) and record what happened. Returns finished."""
    # Re-read: a job superseded or cancelled since it was picked is not sent.
    ids = [r["id"] for r in rows]
    rows = store.all(f"SELECT * FROM enforce_jobs WHERE status = 'pending' AND id IN "
                     f"({', '.join('?' * len(ids))}) ORDER BY id", tuple(ids))
    prepared = [_prepare(store, cfg, r) for r in rows]
    to_send = [p for p in prepared if p.skip is None and p.wait is None]
    outcomes = await asyncio.gather(*(_run(store, p, cfg, send, reconcile) for p in to_send))
    finished = 0
    with store.transaction():
        for p in prepared:
            if p.skip is not None:
                _finish(store, p.job, p.skip_status, p.skip, p.skip_error)
                finished += 1
            elif p.wait is not None:
                _retry(store, p.job, p.wait)
        for p, outcome in zip(to_send, outcomes, strict=True):
            current = store.scalar("SELECT status FROM enforce_jobs WHERE id = ?", (p.job["id"],))
            if current != "pending":
                continue  # superseded or cancelled while it was in flight: keep that
            finished += _record(store, p, outcome)
    return finished


async def process_pending(
    store: Store, cfg: Config, send: Sender | None = None, *,
    reconcile: Reconciler | None = None, limit: int = 200,
) -> int:
    """Work every due job once and wait for all of them. Returns how many jobs finished.

    Each NAS is its own queue: its results are recorded as soon as that NAS has answered
    (or timed out), whatever the others do. ``send`` defaults to :func:`radius_sender`,
    ``reconcile`` to :func:`driver_reconcile`; both are injectable for tests and for the
    runtime. Store access happens on the calling thread only, never during network I/O.
    """
    send = send or radius_sender(cfg)
    reconcile = reconcile or driver_reconcile
    queues = _by_queue(_due(store, limit))
    done = await asyncio.gather(*(_work_queue(store, cfg, rows, send, reconcile)
                                  for rows in queues.values()))
    return sum(done)


class Dispatcher:
    """The agent's enforcement loop: one worker per NAS, so a NAS that does not answer
    delays only its own jobs. :meth:`run_once` starts a worker for every NAS that has due
    jobs and none running, and returns at once (a scheduler job never runs long, so
    APScheduler never skips it for "maximum number of running instances")."""

    def __init__(self, store: Store, cfg: Config, send: Sender | None = None,
                 reconcile: Reconciler | None = None, limit: int = 200) -> None:
        self.store, self.cfg, self.limit = store, cfg, limit
        self.send = send or radius_sender(cfg)
        self.reconcile = reconcile or driver_reconcile
        self.busy: dict[str, asyncio.Task[int]] = {}

    def run_once(self) -> list[asyncio.Task[int]]:
        """Start workers for idle queues with due jobs; return the tasks started."""
        self.busy = {k: t for k, t in self.busy.items() if not t.done()}
        started = []
        for queue, rows in _by_queue(_due(self.store, self.limit)).items():
            if queue in self.busy:
                continue
            task = asyncio.get_running_loop().create_task(
                self._guarded(queue, rows), name=f"enforce-{queue}")
            self.busy[queue] = task
            started.append(task)
        return started

    async def _guarded(self, queue: str, rows: Sequence[Row]) -> int:
        try:
            return await _work_queue(self.store, self.cfg, rows, self.send, self.reconcile)
        except Exception as exc:  # noqa: BLE001 - one queue's failure must not stop the others
            event(log, "enforce.queue_failed", logging.ERROR, queue=queue, error=repr(exc))
            return 0

    async def drain(self, timeout: float = 30.0) -> None:
        """Let running workers finish (agent shutdown)."""
        running = [t for t in self.busy.values() if not t.done()]
        if running:
            await asyncio.wait(running, timeout=timeout)


# ------------------------------------------------------------------ the queue by hand


def list_filtered(store: Store, *, status: str | None = None, username: str | None = None,
                  router: str | None = None, limit: int = 100) -> list[Job]:
    """Jobs newest first, optionally only one status / subscriber / router (by name)."""
    where, params = [], []
    if status:
        if status not in ("pending", "done", "failed"):
            raise ValidationError(f"bad status {status!r}: use pending, done or failed")
        where.append("j.status = ?")
        params.append(status)
    if username:
        where.append("j.username = ?")
        params.append(username)
    if router:
        routers.get(store, router)  # NotFound for an unknown name
        where.append("(j.router = ? OR j.nas_ip = (SELECT nas_ip FROM routers WHERE name = ?))")
        params += [router, router]
    sql = "SELECT j.* FROM enforce_jobs j" + (" WHERE " + " AND ".join(where) if where else "")
    rows = store.all(sql + " ORDER BY j.id DESC LIMIT ?", (*params, limit))
    return [Job(**r) for r in rows]


def _select_ids(store: Store, ids: Sequence[int], status: str, username: str | None) -> list[int]:
    if ids:
        found = [r["id"] for r in store.all(
            f"SELECT id, status FROM enforce_jobs WHERE id IN ({', '.join('?' * len(ids))})",
            tuple(ids))]
        missing = sorted(set(ids) - set(found))
        if missing:
            raise NotFound(f"no enforcement job {', '.join(map(str, missing))} "
                           "(see `jasiyo enforce list`)")
        return [r["id"] for r in store.all(
            f"SELECT id FROM enforce_jobs WHERE status = ? AND id IN "
            f"({', '.join('?' * len(ids))})", (status, *ids))]
    if username:
        return [r["id"] for r in store.all(
            "SELECT id FROM enforce_jobs WHERE status = ? AND username = ?", (status, username))]
    raise ValidationError("give job ids, or --user USERNAME")


def retry(store: Store, ids: Sequence[int], actor: str, *, username: str | None = None) -> int:
    """Put failed jobs back in the queue, due now, with a fresh attempt count. Audited."""
    with store.transaction():
        chosen = _select_ids(store, ids, "failed", username)
        for job_id in chosen:
            store.execute(
                "UPDATE enforce_jobs SET status = 'pending', attempts = 0, next_attempt_at = ?, "
                "done_at = NULL, result = NULL, created_at = ? WHERE id = ?",
                (store.now(), store.now(), job_id))
        if chosen:
            store.audit(actor, "enforce.retry", "enforce", jobs=chosen)
    return len(chosen)


def cancel(store: Store, ids: Sequence[int], actor: str, *, username: str | None = None) -> int:
    """Take pending jobs off the queue (finished as failed/'cancelled'). Audited."""
    with store.transaction():
        chosen = _select_ids(store, ids, "pending", username)
        for job_id in chosen:
            store.execute(
                "UPDATE enforce_jobs SET status = 'failed', result = 'cancelled', done_at = ?, "
                "last_error = ? WHERE id = ?", (store.now(), f"cancelled by {actor}", job_id))
        if chosen:
            store.audit(actor, "enforce.cancel", "enforce", jobs=chosen)
    return len(chosen)


def pending_count(store: Store) -> int:
    return int(store.scalar("SELECT count(*) FROM enforce_jobs WHERE status = 'pending'"))
