"""`jasiyo agent run`: RADIUS, the scheduler and enforcement in one asyncio process.

Runs until SIGTERM or SIGINT, then stops cleanly: no new packets are taken, accounting
already queued is written and answered, the store is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from jasiyo.agent.keys import SecretBox, load_key
from jasiyo.agent.radius_backend import StoreBackend
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.log import event, get_logger
from jasiyo.radius.server import RadiusServer

if TYPE_CHECKING:
    from jasiyo.radius.radsec import RadsecServer
    from jasiyo.radius.workers import AuthWorkers

log = get_logger(__name__)

#: A long-running part beside RADIUS (scheduler with billing and enforcement, sync, payments,
#: SMS): it gets the running Agent and returns a coroutine function that stops it.
Part = Callable[["Agent"], Awaitable[Callable[[], Awaitable[None]]]]


class Agent:
    """The running agent. Library use: ``await Agent(cfg).start()`` ... ``await stop()``.

    ``parts``: what runs beside RADIUS (default: scheduler, sync, payments, SMS).
    """

    def __init__(self, cfg: Config, parts: list[Part] | None = None) -> None:
        self.cfg = cfg
        self.parts = parts
        self.box = SecretBox(load_key(cfg.key_path))
        Store(cfg.db_path, self.box).close()  # fail early (and migrate) before binding ports
        self.backend = StoreBackend(cfg, self.box)
        self.auth_workers = _auth_workers(cfg)
        self.radius = RadiusServer(
            self.backend,
            address=cfg.radius.address,
            auth_port=cfg.radius.auth_port,
            acct_port=cfg.radius.acct_port,
            auth_in_workers=True,
        )
        self.radsec: RadsecServer | None = None
        if cfg.radsec.enabled:
            from jasiyo.radius.radsec import RadsecServer, settings_from

            self.radsec = RadsecServer(self.radius, settings_from(cfg))
        self._stoppers: list[Callable[[], Awaitable[None]]] = []
        self.payments: Any = None  # the PaymentsWorker, once started
        self.sms: Any = None  # the SmsWorker, once started
        self.web: Any = None  # the WebServer, once listening
        #: Renders /metrics on the web listener when set: () -> (body, content type).
        self.metrics: Callable[[], tuple[bytes, str]] | None = None

    async def start(self) -> None:
        loaded = self.backend.warm()
        await self.radius.start()
        try:
            assert self.radius.auth_socket is not None  # bound for the workers
            await self.auth_workers.start(self.radius.auth_socket)
        except BaseException:
            await self.radius.stop()
            raise
        if self.radsec is not None:
            try:
                await self.radsec.start()
            except BaseException:
                await self.radius.stop()
                raise
        event(
            log,
            "agent.start",
            address=self.cfg.radius.address,
            auth_port=self.radius.auth_port,
            acct_port=self.radius.acct_port,
            subscribers=loaded,
        )
        for part in _default_parts() if self.parts is None else self.parts:
            self._stoppers.append(await part(self))
        from jasiyo.agent.status import write_runtime

        write_runtime(self)  # what `jasiyo agent status` reads

    async def stop(self) -> None:
        from jasiyo.agent.status import clear_runtime

        clear_runtime(self.cfg)
        for stop in reversed(self._stoppers):
            with contextlib.suppress(Exception):
                await stop()
        self._stoppers.clear()
        if self.radsec is not None:
            await self.radsec.stop()
        await self.auth_workers.stop()
        await self.radius.stop()
        self.backend.close()
        event(log, "agent.stop", **_stats(self.radius))


def _auth_workers(cfg: Config) -> AuthWorkers:
    """The worker processes answering UDP authentication, ``[radius] workers`` of them
    (this process answers RadSec only)."""
    from functools import partial

    from jasiyo.agent.radius_backend import open_backend
    from jasiyo.radius.workers import AuthWorkers, resolve_count

    count = resolve_count(cfg.radius.workers)
    return AuthWorkers(partial(open_backend, cfg), count, log_level=cfg.agent.log_level)


def _stats(server: RadiusServer) -> dict[str, Any]:
    stats = getattr(server, "stats", None)
    if stats is None:
        return {}
    if hasattr(stats, "as_dict"):
        return dict(stats.as_dict())
    if isinstance(stats, dict):
        return dict(stats)
    return dict(vars(stats))


async def _sync_part(agent: Agent) -> Callable[[], Awaitable[None]]:
    """Sync with the cloud in a thread once the agent is enrolled (`jasiyo agent enroll`).

    ``sync_forever`` itself returns at once for an agent that is not enrolled or has no
    tenant keys: it then runs stand-alone.
    """
    from jasiyo.agent.syncrun import sync_forever

    stop = threading.Event()
    thread = threading.Thread(target=sync_forever, args=(agent.cfg, stop), name="jasiyo-sync", daemon=True)
    thread.start()

    async def stop_sync() -> None:
        stop.set()
        await asyncio.to_thread(thread.join, 10)

    return stop_sync


async def _payments_part(agent: Agent) -> Callable[[], Awaitable[None]]:
    """The payments worker (callbacks verified and applied, late STK prompts queried) and
    the web listener that takes callbacks when there is no cloud."""
    from jasiyo.agent.paywork import PaymentsWorker
    from jasiyo.agent.web import StoreBackend, WebServer, portal_limits
    from jasiyo.portal.app import create_app

    worker = PaymentsWorker(agent.cfg)
    await asyncio.to_thread(worker.start)
    agent.payments = worker
    web: WebServer | None = None
    if agent.metrics is None:
        from jasiyo.agent.metrics import AgentMetrics

        agent.metrics = AgentMetrics(agent).render
    if agent.cfg.web.enabled:
        web = WebServer(
            agent.cfg,
            create_app(
                StoreBackend(agent.cfg),
                wake=worker.wake.set,
                metrics=agent.metrics,
                limits=portal_limits(agent.cfg),
                login_hosts=tuple(agent.cfg.portal.login_hosts),
                metrics_from=tuple(agent.cfg.web.metrics_from),
                brand=(agent.cfg.agent.business_name, agent.cfg.agent.support_phone),
            ),
        )
        if await asyncio.to_thread(web.start):
            agent.web = web

    async def stop() -> None:
        if web is not None:
            await asyncio.to_thread(web.stop)
        await asyncio.to_thread(worker.stop)

    return stop


async def _sms_part(agent: Agent) -> Callable[[], Awaitable[None]]:
    """The SMS sender (outbox to the gateway, delivery reports and STOP replies applied)."""
    from jasiyo.agent.smswork import SmsWorker

    worker: Any = SmsWorker(agent.cfg)
    if agent.cfg.sms.process:  # a process of its own at nice 10 (jasiyo.agent.smsproc)
        from jasiyo.agent.smsproc import SmsProcess

        worker = SmsProcess(agent.cfg)
    await asyncio.to_thread(worker.start)
    agent.sms = worker

    async def stop() -> None:
        await asyncio.to_thread(worker.stop)

    return stop


def _default_parts() -> list[Part]:
    from jasiyo.agent.scheduler import attach

    return [attach, _sync_part, _payments_part, _sms_part]


async def serve(cfg: Config, ready: Callable[[Agent], None] | None = None) -> None:
    """Run the agent until SIGTERM/SIGINT."""
    agent = Agent(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await agent.start()
    if ready:
        ready(agent)
    try:
        await stop.wait()
    finally:
        event(log, "agent.stopping")
        await agent.stop()
