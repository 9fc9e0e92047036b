"""The payments worker inside `agent run`: callbacks in, verified, applied; late ones chased.

Two threads, each with its own store connection (``synchronous=FULL``: money is on disk
before anyone is told it arrived):

* the **cloud puller** (an enrolled agent with provider credentials) long-polls the
  tenant's sealed webhooks and keeps each one in the inbox, advancing the cursor in the
  same transaction, so a crash or a cloud restart neither loses nor repeats one;
* the **processor** verifies and applies what is in the inbox (woken at once by the
  puller or the web listener) and asks the provider about STK prompts whose callback is
  late (``[payments] query_after``).

An agent down for an hour picks up where its cursor stopped; nothing is applied twice
because the inbox is keyed by the cloud's hook id and money by its reference.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from jasiyo.agent import charge, collect, smsbox
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import JasiyoError
from jasiyo.log import event, get_logger
from jasiyo.payments.base import PaymentProvider

log = get_logger(__name__)
CURSOR = "payments.hook_cursor"


def enrolled(store: Store) -> bool:
    return bool(store.meta("sync.tenant_id"))


def cloud_register(cfg: Config, store: Store) -> Callable[[str], str] | None:
    """A function creating a cloud webhook endpoint by name, or None without a cloud."""
    if not enrolled(store):
        return None

    def register(name: str) -> str:
        from jasiyo.agent.cloudlink import open_client

        with open_client(cfg, store) as client:
            path = client.register_webhook(name)
            return client.base_url.rstrip("/") + path

    return register


def pull_cloud(store: Store, client: Any, wait: float = 0.0, limit: int = 100) -> int:
    """Keep the webhooks the cloud holds after our cursor; returns how many were new."""
    after = int(store.meta(CURSOR) or "0")
    hooks, cursor = client.webhooks(after, limit, wait=wait)
    new = 0
    with store.transaction():
        for h in hooks:
            # SMS delivery reports and replies share the tenant's hook stream (one cursor);
            # they go to their own inbox, never near the money.
            keep = smsbox.receive if smsbox.is_sms_endpoint(h.provider) else collect.receive
            if (
                keep(
                    store,
                    source=f"cloud:{h.id}",
                    endpoint=h.provider,
                    headers=h.headers,
                    body=h.body,
                    received_at=h.received_at,
                    remote=h.remote,
                )
                is not None
            ):
                new += 1
        if cursor != after:
            store.set_meta(CURSOR, str(cursor))
    return new


def step(store: Store, cfg: Config, provs: dict[str, PaymentProvider]) -> dict[str, int]:
    """One pass: process due callbacks, chase late requests."""
    done = collect.process_due(store, cfg, provs)
    queried = charge.query_due(store, cfg, provs)
    return {"processed": done, **queried}


def step_once(cfg: Config) -> dict[str, int]:
    """What the worker does, once, from the CLI (``payment request --wait``, ``reconcile``)."""
    store = Store.open(cfg, synchronous="FULL")
    provs = charge.providers(cfg)
    try:
        pulled = 0
        if enrolled(store) and provs:
            from jasiyo.agent.cloudlink import open_client

            try:
                with open_client(cfg, store) as client:
                    pulled = pull_cloud(store, client)
            except JasiyoError as exc:
                event(log, "payments.pull_failed", reason=str(exc))
        return {"pulled": pulled, **step(store, cfg, provs)}
    finally:
        for p in provs.values():
            p.close()
        store.close()


class PaymentsWorker:
    """Library use: ``w = PaymentsWorker(cfg); w.start()`` ... ``w.stop()``."""

    def __init__(self, cfg: Config, *, poll: float = 1.0) -> None:
        self.cfg = cfg
        self.poll = poll
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if not self.cfg.payments.process:
            event(log, "payments.disabled", reason="[payments] process = false")
            return
        self._threads = [threading.Thread(target=self._processor, name="jasiyo-pay", daemon=True)]
        probe = Store.open(self.cfg)
        try:
            pull = enrolled(probe) and (bool(charge.providers(self.cfg)) or self.cfg.sms.configured)
        finally:
            probe.close()
        if pull:
            self._threads.append(threading.Thread(target=self._puller, name="jasiyo-pay-pull", daemon=True))
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wake.set()
        for t in self._threads:
            t.join(timeout)

    def _processor(self) -> None:
        store = Store.open(self.cfg, synchronous="FULL")
        provs = charge.providers(self.cfg)
        try:
            while not self._stop.is_set():
                self.wake.clear()
                try:
                    step(store, self.cfg, provs)
                except Exception as exc:  # never let one bad row stop money coming in
                    log.exception("payments worker pass failed: %s", exc)
                    self._stop.wait(self.poll)
                self.wake.wait(self.poll)
        finally:
            for p in provs.values():
                p.close()
            store.close()

    def _puller(self) -> None:
        from jasiyo.agent.cloudlink import open_client

        store = Store.open(self.cfg, synchronous="FULL")
        backoff = 1.0
        wait = float(min(25, max(self.cfg.sync.interval, 1) * 3))
        try:
            while not self._stop.is_set():
                try:
                    with open_client(self.cfg, store) as client:
                        while not self._stop.is_set():
                            if pull_cloud(store, client, wait=wait):
                                self.wake.set()
                            backoff = 1.0
                except JasiyoError as exc:
                    event(log, "payments.pull_failed", reason=str(exc), retry=f"{backoff:.0f}s")
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 60.0)
                except Exception as exc:
                    log.exception("payments puller failed: %s", exc)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 60.0)
        finally:
            store.close()


def wait_for(
    cfg: Config, request_id: str, timeout: float, on_tick: Callable[[str], None] | None = None
) -> charge.Request:
    """Until the request is final or ``timeout`` passes; runs the worker's pass itself so it
    works with or without a running agent."""
    deadline = time.monotonic() + timeout
    while True:
        step_once(cfg)
        store = Store.open(cfg)
        try:
            req = charge.get_request(store, request_id)
        finally:
            store.close()
        if on_tick:
            on_tick(req.status)
        if req.status != "pending" or time.monotonic() >= deadline:
            return req
        time.sleep(1.0)
