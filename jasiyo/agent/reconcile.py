"""Driving routers from the store: check, sync (reconcile), import, periodic reconcile.

Every router with a driver is given the desired state of every subscriber of the POP (one
agent serves one POP). An unreachable router is retried with backoff and never blocks
RADIUS or billing: the periodic job runs in a worker thread and skips routers whose
backoff has not expired.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from jasiyo.agent import desired as desired_mod
from jasiyo.agent import plans as plans_mod
from jasiyo.agent import routers as routers_mod
from jasiyo.agent import subscribers as subs
from jasiyo.agent.session_ips import BY_ADDRESS, with_session_addresses
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.drivers import Backoff, RouterConfig, get_driver
from jasiyo.drivers.base import RouterDriver
from jasiyo.drivers.routerstate import ApplyReport, Diff
from jasiyo.errors import DriverError, ValidationError
from jasiyo.log import event, get_logger
from jasiyo.network import DesiredState

log = get_logger(__name__)

_CONFIG_OPTIONS = ("tls", "ca_file", "fingerprint", "mode", "pay_page", "pay_page_port",
                   "adopt_existing", "timeout")


def router_config(store: Store, cfg: Config, name: str) -> RouterConfig:
    """How to reach router ``name``, credentials decrypted."""
    router = routers_mod.get(store, name)
    username, password = routers_mod.credentials(store, name)
    if router.driver in routers_mod.RADIUS_ONLY:
        username, password = "", ""  # nothing to log in to: the driver manages nothing
    elif not username or not password:
        raise ValidationError(
            f"router {name!r} has no API/SSH credentials; add it again with --username/--password"
        )
    opts = dict(router.options)
    kwargs: dict[str, Any] = {k: opts.pop(k) for k in _CONFIG_OPTIONS if k in opts}
    kwargs.setdefault("timeout", cfg.routers.timeout)
    return RouterConfig(
        host=router.host, username=username or "", password=password or "", name=router.name,
        port=router.port, address_list=cfg.radius.suspended_address_list,
        options={k: str(v) for k, v in opts.items()}, **kwargs,
    )


def desired_states(store: Store, cfg: Config, rcfg: RouterConfig) -> list[DesiredState]:
    from jasiyo.agent import pops

    states = desired_mod.all_states(store, cfg.radius)
    # A subscriber homed on another router is that router's (its static queue lives there).
    away = pops.homed_elsewhere(store, rcfg.name)
    if away:
        states = [s for s in states if s.username not in away]
    router = routers_mod.get(store, rcfg.name)
    if router.driver in BY_ADDRESS:
        # EdgeOS shapes and fences by address: a dynamic-IP customer by its session's.
        states = with_session_addresses(store, states, router.nas_ip)
    if rcfg.mode != "api":
        return states
    # Routers that keep PPP secrets themselves need the passwords.
    return [replace(s, password=subs.password_of(store, s.username)) for s in states]


def open_driver(store: Store, cfg: Config, name: str) -> RouterDriver:
    router = routers_mod.get(store, name)
    rcfg = router_config(store, cfg, name)
    driver = get_driver(router.driver)(rcfg)
    driver.open()
    learned = getattr(driver, "learned_host_key", None)
    if learned and not rcfg.fingerprint:
        # Trust on first use (EdgeOS): pin the key seen now, so a changed key is refused later.
        routers_mod.set_options(store, name, "agent", fingerprint=learned)
    return driver


def check(store: Store, cfg: Config, name: str) -> dict[str, Any]:
    """Reachability, identity, version and what the agent manages there."""
    started = time.monotonic()
    with open_driver(store, cfg, name) as driver:
        facts = driver.facts()
        state = driver.read()
    managed: dict[str, int] = {}
    for obj in state.objects:
        if obj.managed:
            managed[obj.kind] = managed.get(obj.kind, 0) + 1
    return {
        "router": name, "reachable": True, "vendor": facts.vendor, "identity": facts.identity,
        "version": facts.version, "model": facts.model, "managed": managed,
        "round_trip_s": round(time.monotonic() - started, 3),
    }


def plan(store: Store, cfg: Config, name: str) -> Diff:
    """The changes a sync would make (dry run)."""
    rcfg = router_config(store, cfg, name)
    with open_driver(store, cfg, name) as driver:
        return driver.plan(desired_states(store, cfg, rcfg), driver.read())


def sync(store: Store, cfg: Config, name: str, actor: str = "agent") -> ApplyReport:
    """Reconcile router ``name`` now; the report says what changed and what did not."""
    rcfg = router_config(store, cfg, name)
    desired = desired_states(store, cfg, rcfg)
    with open_driver(store, cfg, name) as driver:
        report = driver.reconcile(desired)
    with store.transaction():
        store.audit(actor, "router.sync", f"router:{name}", applied=len(report.applied),
                    failed=len(report.failed), not_attempted=len(report.not_attempted),
                    conflicts=len(report.conflicts))
    event(log, "router.reconcile", router=name, result=report.summary(),
          api_calls=report.api_calls, seconds=round(report.duration_s, 3))
    return report


@dataclass(frozen=True, slots=True)
class ImportSummary:
    created: int
    updated: int
    unchanged: int
    skipped: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    dry_run: bool = False


def import_accounts(
    store: Store, cfg: Config, name: str, actor: str, *,
    plan_map: dict[str, str] | None = None, default_plan: str | None = None,
    progress: Callable[[int], None] | None = None, update_passwords: bool = False,
    dry_run: bool = False,
) -> ImportSummary:
    """Bring the router's PPP secrets / hotspot users in as subscribers.

    A router profile maps to the plan of the same name, or through ``plan_map``
    (``profile -> plan``), else to ``default_plan``. Unmappable profiles are an error
    naming them, and nothing is imported. Running it again changes nothing. An existing
    subscriber's password is kept unless ``update_passwords`` (see :mod:`.imports`).
    """
    from jasiyo.agent.imports import import_rows

    router = routers_mod.get(store, name)
    if router.driver in routers_mod.RADIUS_ONLY:
        raise ValidationError(
            f"router {name} is RADIUS-only ({router.driver}): it keeps no accounts to import. "
            "Import its customers from a CSV instead (`jasiyo subscriber import FILE`)"
        )
    if router.driver == "edgeos":
        raise ValidationError(
            f"router {name} is an EdgeRouter: in RADIUS mode EdgeOS keeps no PPP secrets or "
            "hotspot users to import. Import its customers from a CSV instead "
            "(`jasiyo subscriber import FILE`)"
        )
    with open_driver(store, cfg, name) as driver:
        accounts = driver.list_accounts()
    known = {p.name for p in plans_mod.list_(store)}
    mapping = dict(plan_map or {})
    rows: list[subs.NewSubscriber] = []
    unmapped: set[str] = set()
    skipped: list[str] = []
    for acc in accounts:
        plan = mapping.get(acc.profile) or (acc.profile if acc.profile in known else default_plan)
        if plan is None or plan not in known:
            unmapped.add(acc.profile)
            continue
        try:
            rows.append(subs.NewSubscriber.build(
                acc.name, password=acc.password, plan=plan, service=acc.service.value,
                ip=acc.remote_address if acc.service.value == "static" else None,
            ))
        except ValidationError as exc:
            skipped.append(f"{acc.name}: {exc}")
    if unmapped:
        raise ValidationError(
            f"router profiles without a plan: {', '.join(sorted(unmapped))}; create plans of "
            "the same name, or pass --map PROFILE=PLAN / --default-plan PLAN. Nothing imported."
        )
    # Only what a router knows: an import never clears phones or names kept here.
    result = import_rows(
        store, rows, actor, progress=progress, cfg=cfg,
        columns=frozenset({"username", "password", "plan", "service", "ip"}),
        update_passwords=update_passwords, dry_run=dry_run, source=f"router {name}",
    )
    if dry_run:
        return ImportSummary(result.created, result.updated, result.unchanged, tuple(skipped),
                             result.changes, True)
    if not routers_mod.get(store, name).options.get("adopt_existing"):
        # The imported accounts stay untagged on the router; let reconcile take them over
        # instead of reporting each one as a conflict.
        routers_mod.set_options(store, name, actor, adopt_existing=True)
    return ImportSummary(result.created, result.updated, result.unchanged, tuple(skipped),
                         result.changes)


@dataclass
class Reconciler:
    """The scheduler's periodic reconcile of every router with credentials, with backoff."""

    cfg: Config
    open_store: Callable[[], Store]
    backoff: dict[str, Backoff] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run_once(self, now: float | None = None) -> dict[str, str]:
        """Reconcile each due router; returns router -> outcome. Never raises."""
        if not self._lock.acquire(blocking=False):
            return {}  # the previous round is still running
        outcomes: dict[str, str] = {}
        try:
            store = self.open_store()
            try:
                from jasiyo.agent import pops

                for router in routers_mod.list_(store):
                    if not router.has_password or not pops.router_is_local(store, router.pop):
                        continue  # another POP's router is that POP's to drive
                    b = self.backoff.setdefault(router.name, Backoff())
                    if not b.due(now):
                        outcomes[router.name] = "backing off"
                        continue
                    try:
                        report = sync(store, self.cfg, router.name)
                    except DriverError as exc:
                        delay = b.failure(now)
                        outcomes[router.name] = f"unreachable: {exc}"
                        event(log, "router.unreachable", level=30, router=router.name,
                              error=str(exc), retry_in=round(delay, 1))
                        continue
                    b.success()
                    outcomes[router.name] = report.summary()
            finally:
                store.close()
        finally:
            self._lock.release()
        return outcomes

