"""`jasiyo agent status`: a live summary of one POP for a person (and ``--json``).

What runs comes from the runtime file ``agent run`` writes into the data directory when it
has started (pid, bound ports, worker pids, web listener) and removes when it stops; the
rest is read from the store, so the command works whether the agent runs or not, and never
needs the cloud. The listeners are checked too: RADIUS ports in ``/proc/net/udp``, the web
listener with ``GET /healthz``.

The report is a list of sections, each a function of a :class:`Context` returning a flat
dict; :data:`SECTIONS` is the order. A new area adds its own section with
:func:`section` (the POP name of the POPs issue goes in first, as ``pop``).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jasiyo.config import Config
from jasiyo.log import event, get_logger

log = get_logger(__name__)

RUNTIME_FILE = "agent.runtime.json"


# ---------------------------------------------------------------- written by `agent run`


def runtime_path(cfg: Config) -> Path:
    return cfg.data_dir / RUNTIME_FILE


def write_runtime(agent: Any) -> None:
    """Record what this agent process runs (called once it has started)."""
    cfg: Config = agent.cfg
    workers = getattr(agent, "auth_workers", None)
    radsec = getattr(agent, "radsec", None)
    web = getattr(agent, "web", None)
    doc = {
        "pid": os.getpid(),
        "started_at": time.time(),
        "radius": {
            "address": cfg.radius.address,
            "auth_port": agent.radius.auth_port,
            "acct_port": agent.radius.acct_port,
            "workers": workers.pids() if workers is not None else [],
        },
        "radsec": ({"address": radsec.settings.address, "port": radsec.port} if radsec is not None else None),
        "web": ({"address": cfg.web.address, "port": web.port} if web is not None else None),
        "payments_worker": getattr(agent, "payments", None) is not None,
        "sms_sender": getattr(agent, "sms", None) is not None,
    }
    path = runtime_path(cfg)
    tmp = path.with_suffix(".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh)
        os.replace(tmp, path)
    except OSError as exc:  # status is a convenience: never stop the agent for it
        event(log, "agent.runtime_file_failed", path=str(path), error=exc.strerror or str(exc))


def clear_runtime(cfg: Config) -> None:
    """Remove the runtime file if this process wrote it."""
    path = runtime_path(cfg)
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


# ---------------------------------------------------------------- read by `agent status`


@dataclass
class Context:
    """What the sections share: the config, an open store, the runtime file, the clock."""

    cfg: Config
    store: Any
    runtime: dict[str, Any] | None
    running: bool
    now: float = field(default_factory=time.time)

    def when(self, ts: float | None) -> str | None:
        """A time as a person reads it, in the tenant's time zone (``[billing] timezone``)."""
        if ts is None:
            return None
        tz = ZoneInfo(self.cfg.billing.timezone)
        return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S %Z")

    def age(self, ts: float | None) -> float | None:
        return None if ts is None else round(max(0.0, self.now - ts), 1)


Section = Callable[[Context], dict[str, Any]]
SECTIONS: list[tuple[str, Section]] = []


def section(name: str, *, first: bool = False) -> Callable[[Section], Section]:
    """Register a section of the report (``first``: before the others)."""

    def add(fn: Section) -> Section:
        entry = (name, fn)
        SECTIONS[:] = [s for s in SECTIONS if s[0] != name]
        SECTIONS.insert(0, entry) if first else SECTIONS.append(entry)
        return fn

    return add


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def read_runtime(cfg: Config) -> tuple[dict[str, Any] | None, bool]:
    """The runtime file (or None) and whether its process is alive."""
    try:
        doc = json.loads(runtime_path(cfg).read_text())
    except (OSError, ValueError):
        return None, False
    if not isinstance(doc, dict) or not isinstance(doc.get("pid"), int):
        return None, False
    return doc, _pid_alive(doc["pid"]) and _is_jasiyo(doc["pid"])


def _is_jasiyo(pid: int) -> bool:
    """False when ``pid`` now belongs to another program (the agent died, the pid was reused)."""
    try:
        return b"jasiyo" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc here: trust the pid


def collect(cfg: Config) -> dict[str, dict[str, Any]]:
    """Every section of the report, in order."""
    from jasiyo.agent.store import Store

    runtime, running = read_runtime(cfg)
    store = Store.open(cfg)
    try:
        ctx = Context(cfg, store, runtime, running)
        return {name: fn(ctx) for name, fn in SECTIONS}
    finally:
        store.close()


def _udp_listening(port: int) -> bool | None:
    """True if some socket is bound to UDP ``port`` (Linux /proc); None if unknown."""
    found = None
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        found = bool(found)
        for line in lines:
            local = line.split()[1]
            if int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return found


def _http_ok(address: str, port: int) -> bool:
    import httpx

    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(address, address)
    host = f"[{host}]" if ":" in host else host
    try:
        return httpx.get(f"http://{host}:{port}/healthz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@section("agent")
def _agent(ctx: Context) -> dict[str, Any]:
    rt = ctx.runtime or {}
    if not ctx.runtime:
        state = "not running"
    elif not ctx.running:
        state = "not running (stopped without cleaning up: crashed or killed?)"
    else:
        state = "running"
    workers = (rt.get("radius") or {}).get("workers") or []
    runs = ["radius", "scheduler"] if ctx.running else []
    if ctx.running:
        runs += [
            name
            for name, on in (
                ("radsec", rt.get("radsec")),
                ("web", rt.get("web")),
                ("payments", rt.get("payments_worker")),
                ("sms", rt.get("sms_sender")),
                ("sync", ctx.store.meta("sync.tenant_id")),
            )
            if on
        ]
    pop = ctx.store.meta("pop.name")
    enrolled = bool(ctx.store.meta("sync.tenant_id"))
    return {
        "state": state,
        # The POP this agent is (docs/pops.md); stand-alone, it bills every subscriber.
        "pop": (pop if enrolled else f"{pop} (stand-alone: bills every subscriber)") if pop else None,
        "homed_subscribers": ctx.store.scalar("SELECT count(*) FROM subscribers WHERE home_pop = ?", (pop,))
        if pop
        else 0,
        "pid": rt.get("pid") if ctx.running else None,
        "since": ctx.when(rt.get("started_at")) if ctx.running else None,
        "uptime_s": ctx.age(rt.get("started_at")) if ctx.running else None,
        "auth_processes": (sum(1 for p in workers if _pid_alive(p)) if workers else 1) if ctx.running else 0,
        "runs": ", ".join(runs) or None,
    }


@section("store")
def _store(ctx: Context) -> dict[str, Any]:
    db = Path(ctx.cfg.db_path)
    size = sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())
    subs = {
        r["status"]: r["n"]
        for r in ctx.store.all("SELECT status, count(*) AS n FROM subscribers GROUP BY status")
    }
    return {
        "path": str(db),
        "size_bytes": size,
        "subscribers": sum(subs.values()),
        "by_status": subs,
        "routers": ctx.store.scalar("SELECT count(*) FROM routers"),
        "online_sessions": ctx.store.scalar("SELECT count(*) FROM radius_sessions WHERE stopped_at IS NULL"),
    }


@section("radius")
def _radius(ctx: Context) -> dict[str, Any]:
    r = (ctx.runtime or {}).get("radius") or {}
    auth = r.get("auth_port", ctx.cfg.radius.auth_port)
    acct = r.get("acct_port", ctx.cfg.radius.acct_port)
    out: dict[str, Any] = {
        "address": r.get("address", ctx.cfg.radius.address),
        "auth_port": auth,
        "acct_port": acct,
    }
    if ctx.running:
        out["auth_listening"] = _udp_listening(auth)
        out["acct_listening"] = _udp_listening(acct)
    rs = (ctx.runtime or {}).get("radsec")
    out["radsec"] = (
        f"tcp {rs['address']}:{rs['port']}"
        if rs and ctx.running
        else ("enabled (not running)" if ctx.cfg.radsec.enabled else "off")
    )
    return out


@section("web")
def _web(ctx: Context) -> dict[str, Any]:
    w = (ctx.runtime or {}).get("web")
    if not ctx.cfg.web.enabled:
        return {"state": "disabled ([web] enabled = false)"}
    if not ctx.running or not w:
        return {"state": "not listening", "address": ctx.cfg.web.address, "port": ctx.cfg.web.port}
    ok = _http_ok(w["address"], w["port"])
    return {
        "state": "answering" if ok else "NOT answering /healthz",
        "address": w["address"],
        "port": w["port"],
        "metrics": "/metrics",
    }


@section("cloud")
def _cloud(ctx: Context) -> dict[str, Any]:
    from jasiyo.agent.synclog import AgentLog
    from jasiyo.sync.client import status_of

    st = status_of(AgentLog(ctx.store), "", "")
    url = ctx.cfg.sync.cloud_url or ctx.store.meta("sync.cloud_url") or ""
    if not ctx.store.meta("sync.tenant_id"):
        return {"link": "stand-alone (not enrolled)", "backlog": st.backlog}
    return {
        "link": "ok"
        if st.last_ok_at and not st.last_error
        else (f"failing: {st.last_error}" if st.last_error else "never reached"),
        "url": url,
        "last_contact": ctx.when(st.last_ok_at),
        "last_contact_age_s": ctx.age(st.last_ok_at),
        "backlog": st.backlog,
        "oldest_unpushed_age_s": (
            round(st.oldest_unpushed_age, 1) if st.oldest_unpushed_age is not None else None
        ),
        "lag_events": st.lag_events,
        "quarantined": st.quarantined,
        "clock_offset_s": round(st.clock_offset, 3) if st.clock_offset is not None else None,
    }


@section("enforcement")
def _enforcement(ctx: Context) -> dict[str, Any]:
    s = ctx.store
    row = s.one(
        "SELECT count(*) AS n, min(created_at) AS oldest, "
        "sum(next_attempt_at <= ?) AS due, sum(attempts > 0) AS retrying "
        "FROM enforce_jobs WHERE status = 'pending'",
        (ctx.now,),
    )
    names = {r["nas_ip"]: r["name"] for r in s.all("SELECT nas_ip, name FROM routers")}
    per = s.all(
        "SELECT COALESCE(router, nas_ip, '') AS nas, count(*) AS n FROM enforce_jobs "
        "WHERE status = 'pending' GROUP BY nas ORDER BY n DESC LIMIT 5"
    )
    return {
        "pending": (row["n"] if row else 0) or 0,
        "due_now": (row["due"] if row else 0) or 0,
        "retrying": (row["retrying"] if row else 0) or 0,
        "oldest_pending_age_s": ctx.age(row["oldest"] if row else None),
        "busiest_nas": {names.get(r["nas"], r["nas"]): r["n"] for r in per},
        "failed": s.scalar("SELECT count(*) FROM enforce_jobs WHERE status = 'failed'"),
    }


@section("sms")
def _sms(ctx: Context) -> dict[str, Any]:
    s = ctx.store
    by = {
        r["status"]: r["n"] for r in s.all("SELECT status, count(*) AS n FROM notifications GROUP BY status")
    }
    oldest = s.scalar("SELECT min(created_at) FROM notifications WHERE status = 'queued'")
    return {
        "provider": getattr(ctx.cfg.sms, "provider", None) or "none",
        "queued": by.get("queued", 0),
        "oldest_queued_age_s": ctx.age(oldest),
        "by_status": by,
    }


@section("payments")
def _payments(ctx: Context) -> dict[str, Any]:
    s = ctx.store
    inbox = {
        r["status"]: r["n"] for r in s.all("SELECT status, count(*) AS n FROM payment_inbox GROUP BY status")
    }
    return {
        "inbox_waiting": inbox.get("new", 0) + inbox.get("retry", 0),
        "inbox": inbox,
        "unmatched": s.scalar("SELECT count(*) FROM payment_suspense WHERE status = 'open'"),
        "last_payment": ctx.when(s.scalar("SELECT max(received_at) FROM payments")),
    }


def render_text(report: dict[str, dict[str, Any]]) -> str:
    """The report for a person: one block per section, ``key: value`` lines."""
    lines: list[str] = []
    for name, values in report.items():
        lines.append(f"{name}:")
        for key, value in values.items():
            if key.endswith("_s") and isinstance(value, int | float):
                key, value = key[:-2], _duration(value)
            elif key.endswith("_bytes") and isinstance(value, int):
                key, value = key[:-6], _size(value)
            if value is None:
                value = "-"
            elif isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
            elif isinstance(value, bool):
                value = "yes" if value else "NO"
            lines.append(f"  {key.replace('_', ' ')}: {value}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    """3.2 s, 4 min 10 s, 2 h 5 min, 3 d 4 h: as a person reads an age."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(seconds), 60)
    if m < 60:
        return f"{m} min {s} s"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h} h {m} min"
    d, h = divmod(h, 24)
    return f"{d} d {h} h"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


__all__ = ["SECTIONS", "Context", "clear_runtime", "collect", "render_text", "section", "write_runtime"]
