"""A subscriber's whole life over real UDP: RADIUS server, store backend, NAS listener.

The billing clock is driven by hand (an injected store clock); RADIUS, accounting and
Disconnect-Requests are real packets on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyrad.packet import AccessAccept, DisconnectRequest, Packet

from jasiyo.agent import billing, enforce, notify, payments, plans, scheduler
from jasiyo.agent import subscribers as subs
from jasiyo.agent.keys import SecretBox, load_key
from jasiyo.agent.radius_backend import StoreBackend
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.radius.server import RadiusServer
from tests.agent.billing_support import (
    DAY,
    NAS_SECRET,
    Clock,
    NasListener,
    add_nas_router,
    add_sub,
    billing_config,
    open_store,
    start_session,
)
from tests.radius.support import acct_request, auth_request, decode_reply

SECRET = NAS_SECRET.encode()


class RadiusThread:
    """The real RadiusServer over the store-backed backend, in its own event loop thread."""

    def __init__(self, cfg: Config) -> None:
        self.backend = StoreBackend(cfg, SecretBox(load_key(cfg.key_path)))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = RadiusServer(self.backend, "127.0.0.1", 0, 0)
        self.call(self.server.start())

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def close(self) -> None:
        try:
            self.call(self.server.stop())
            self.loop.call_soon_threadsafe(self.backend.close)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


def _exchange(port: int, pkt: Packet, timeout: float = 2.0) -> Packet | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(pkt.RequestPacket(), ("127.0.0.1", port))
        try:
            raw = s.recv(4096)
        except TimeoutError:
            return None
    return decode_reply(pkt, raw)


def login(radius: RadiusThread, user: str = "alice") -> Packet | None:
    return _exchange(radius.server.auth_port, auth_request(
        secret=SECRET, User_Name=user, User_Password=f"{user}-pw", NAS_IP_Address="127.0.0.1"))


def account(radius: RadiusThread, sid: str, status: str = "Start", user: str = "alice") -> None:
    reply = _exchange(radius.server.acct_port, acct_request(
        secret=SECRET, User_Name=user, Acct_Session_Id=sid, Acct_Status_Type=status,
        NAS_IP_Address="127.0.0.1", Framed_IP_Address="100.64.0.7"))
    assert reply is not None, "accounting was not acknowledged"


def wait_for(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def allowed_at_plan_rate(reply: Packet | None) -> bool:
    return (reply is not None and reply.code == AccessAccept
            and "Mikrotik-Address-List" not in reply
            and reply["Mikrotik-Rate-Limit"] == ["10M/10M"])


def walled(reply: Packet | None) -> bool:
    return (reply is not None and reply.code == AccessAccept
            and reply.get("Mikrotik-Address-List") == ["jasiyo-suspended"])


def test_prepaid_lifecycle_over_real_udp(tmp_path: Path, nas: NasListener) -> None:
    clock = Clock(float(int(time.time())))
    t0 = clock()
    cfg = billing_config(tmp_path)
    db = open_store(cfg, clock)
    plans.add(db, plans.build("home", rate="10M/10M", price="1000", period="30d"), "test")
    add_sub(db, "alice")
    add_nas_router(db, nas.port)
    radius = RadiusThread(cfg)
    try:
        # day 0: pays, and is online at the plan's rate
        payments.record(db, cfg, "alice", "1000", "MPESA-D0", method="mpesa", actor="test")
        assert allowed_at_plan_rate(login(radius))
        account(radius, "sess-1")
        assert wait_for(lambda: db.scalar("SELECT count(*) FROM radius_sessions "
                                          "WHERE status = 'active'") == 1)

        # days 1..29: nothing changes but the reminder, 3 days before expiry
        for day in range(1, 30):
            clock.set(t0 + day * DAY)
            billing.tick(db, cfg)
            assert subs.get(db, "alice").status == "active"
        reminders = [n for n in notify.list_(db, "alice") if n.kind == "reminder"]
        assert [n.created_at for n in reminders] == [t0 + 27 * DAY, t0 + 29 * DAY]
        assert "3 day(s)" in reminders[0].message
        clock.set(t0 + 30 * DAY - 1)
        billing.tick(db, cfg)
        assert allowed_at_plan_rate(login(radius))

        # day 30: suspended at expiry; the live session gets a Disconnect-Request
        clock.set(t0 + 30 * DAY)
        report = billing.tick(db, cfg)
        assert report.transitions == {"suspended": 1}
        assert asyncio.run(enforce.process_pending(db, cfg)) == 1
        (pkt,) = nas.received
        assert pkt.code == DisconnectRequest
        assert pkt["User-Name"] == ["alice"] and pkt["Acct-Session-Id"] == ["sess-1"]
        assert db.one("SELECT status, result FROM enforce_jobs") == {"status": "done",
                                                                      "result": "ack"}
        assert wait_for(lambda: walled(login(radius)))
        account(radius, "sess-2")  # re-authenticated into the walled garden
        assert wait_for(lambda: db.scalar("SELECT count(*) FROM radius_sessions "
                                          "WHERE status = 'active'") == 1)

        # day 33: pays; restored, the walled-garden session is dropped, next login is full
        clock.set(t0 + 33 * DAY)
        started = time.monotonic()
        r = payments.record(db, cfg, "alice", "1000", "MPESA-D33", method="mpesa",
                            actor="test")
        assert r.restored and r.paid_until == t0 + 63 * DAY
        assert asyncio.run(enforce.process_pending(db, cfg)) == 1
        assert nas.kinds() == ["disconnect", "disconnect"]
        assert nas.received[-1]["Acct-Session-Id"] == ["sess-2"]
        assert wait_for(lambda: allowed_at_plan_rate(login(radius)))
        elapsed = time.monotonic() - started
        print(f"payment -> Disconnect ACKed -> Access-Accept at plan rate: {elapsed:.3f} s")
        assert elapsed < 3.0  # the issue asks for 1 s; the margin is for loaded CI machines
    finally:
        radius.close()
        db.close()


def test_postpaid_suspension_and_payment_over_real_udp(tmp_path: Path, nas: NasListener) -> None:
    clock = Clock(float(int(time.time())))
    t0 = clock()
    cfg = billing_config(tmp_path, "grace_days = 2\ninvoice_due_days = 5")
    db = open_store(cfg, clock)
    plans.add(db, plans.build("biz", rate="10M/10M", price="3000", billing="postpaid",
                              tax_rate="16"), "test")
    add_sub(db, "carol", "biz")
    add_nas_router(db, nas.port)
    radius = RadiusThread(cfg)
    try:
        billing.tick(db, cfg)  # the first cycle is invoiced on sign-up
        assert allowed_at_plan_rate(login(radius, "carol"))
        account(radius, "c-1", user="carol")
        assert wait_for(lambda: db.scalar("SELECT count(*) FROM radius_sessions") == 1)
        clock.set(t0 + 5 * DAY)
        billing.tick(db, cfg)
        assert subs.get(db, "carol").status == "grace"
        assert allowed_at_plan_rate(login(radius, "carol"))  # grace keeps service
        assert enforce.pending_count(db) == 0  # grace is still "allowed": nothing to send
        clock.set(t0 + 7 * DAY)
        billing.tick(db, cfg)
        assert subs.get(db, "carol").status == "suspended"
        assert asyncio.run(enforce.process_pending(db, cfg)) == 1
        assert wait_for(lambda: walled(login(radius, "carol")))
        r = payments.record(db, cfg, "carol", "3480", "BANK-1", method="bank", actor="test")
        assert r.restored and r.balance_minor == 0
        assert wait_for(lambda: allowed_at_plan_rate(login(radius, "carol")))
    finally:
        radius.close()
        db.close()


class _AgentLike:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.box = SecretBox(load_key(cfg.key_path))


def test_scheduler_catches_up_at_start_and_enforces(tmp_path: Path, nas: NasListener) -> None:
    """The real scheduler on real time: an expiry missed while the agent was down is applied
    by the first tick at start, and the enforcement job sends the Disconnect-Request."""
    cfg = billing_config(tmp_path, "enforce_interval = 0.2")
    db = Store.open(cfg)
    plans.add(db, plans.build("home", rate="10M/10M", price="1000", period="30d"), "test")
    add_sub(db, "alice")
    add_nas_router(db, nas.port)
    payments.record(db, cfg, "alice", "1000", "OLD-1", actor="test", at=time.time() - 31 * DAY)
    start_session(db, "alice", "sess-9")
    add_sub(db, "bob")
    start_session(db, "bob", "sess-old", framed_ip="100.64.0.8")
    db.conn.execute("UPDATE radius_sessions SET last_update_at = ? WHERE acct_session_id = ?",
                    (time.time() - 3 * cfg.radius.interim_interval - 60, "sess-old"))
    assert subs.get(db, "alice").status == "active"  # nobody ticked while it was "down"

    async def run() -> None:
        stop = await scheduler.attach(_AgentLike(cfg))
        try:
            got = await asyncio.to_thread(nas.got.wait, 10)
            assert got, "no Disconnect-Request reached the NAS"
            for _ in range(100):  # the job is marked done once the ACK is in
                if enforce.pending_count(db) == 0:
                    break
                await asyncio.sleep(0.05)
        finally:
            await stop()

    asyncio.run(run())
    sub = subs.get(db, "alice")
    assert (sub.status, sub.status_reason) == ("suspended", "expired")
    assert nas.kinds() == ["disconnect"]
    assert db.one("SELECT status, result FROM enforce_jobs") == {"status": "done",
                                                                  "result": "ack"}
    # the reaper closed bob's session that stopped sending interim updates
    assert db.scalar("SELECT status FROM radius_sessions WHERE acct_session_id = 'sess-old'") == (
        "stale")
    db.close()


def test_jobs_are_sized_from_the_config(tmp_path: Path) -> None:
    cfg = billing_config(tmp_path, "tick_minutes = 5\nenforce_interval = 0.25")
    jobs, close = scheduler.agent_jobs(cfg, lambda: Store.open(cfg))
    assert {k: v.seconds for k, v in jobs.items()} == {
        "billing-tick": 300.0, "enforce": 0.25, "session-reaper": 300.0,
        "router-reconcile": 300.0, "retention": 86400.0,
        "usage-publish": 60.0, "snapshot": 3600.0}
    sched = scheduler.build_scheduler(jobs)
    job = sched.get_job("billing-tick")
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, None)
    close()
