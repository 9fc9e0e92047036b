"""The enforcement queue: jobs written with the change, sent to a real UDP NAS, retried,
kept across restarts; and driver reconcile against the RouterOS API simulator."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pyrad.packet import CoARequest

from jasiyo.agent import billing, enforce, payments, plans, routers
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.drivers.mikrotik.sim import RouterOSSim
from tests.agent.billing_support import (
    Clock,
    NasListener,
    add_sub,
    billing_config,
    open_store,
    seed_plans,
)


def run(db: Store, cfg: Config) -> int:
    return asyncio.run(enforce.process_pending(db, cfg))


def jobs(db: Store) -> list[dict]:
    return db.all("SELECT action, status, result, attempts FROM enforce_jobs ORDER BY id")


def test_job_is_written_in_the_same_transaction_as_the_change(db: Store, bcfg: Config) -> None:
    assert jobs(db) == []
    with pytest.raises(RuntimeError), db.transaction():
        subs.set_status(db, "alice", subs.Status.SUSPENDED, "noc", "test")
        assert len(jobs(db)) == 1
        raise RuntimeError("rolled back")
    assert jobs(db) == [] and subs.get(db, "alice").status == "active"


def test_grace_is_still_allowed_so_nothing_is_sent(db: Store, bcfg: Config) -> None:
    subs.set_status(db, "alice", subs.Status.GRACE, "billing", "expired")
    assert jobs(db) == []


def test_plan_change_sends_coa_with_the_new_rate(db: Store, bcfg: Config, nas: NasListener) -> None:
    billing.change_plan(db, "alice", "fast", "noc", bcfg)
    assert run(db, bcfg) == 1
    (pkt,) = nas.received
    assert pkt.code == CoARequest
    assert pkt["Mikrotik-Rate-Limit"] == ["20M/20M"]
    assert pkt["Acct-Session-Id"] == ["s-1"] and pkt["Framed-IP-Address"] == ["100.64.0.7"]
    assert jobs(db) == [{"action": "coa", "status": "done", "result": "ack", "attempts": 1}]
    assert db.scalar("SELECT status FROM radius_sessions") == "active"  # CoA keeps it


def test_editing_a_plans_rate_coas_everyone_online_on_it(db: Store, bcfg: Config, nas: NasListener) -> None:
    plans.update(db, "home", "noc", rate="15M/15M")
    assert run(db, bcfg) == 1
    assert nas.received[0]["Mikrotik-Rate-Limit"] == ["15M/15M"]


def test_editing_the_fup_rate_touches_only_throttled_subscribers(
    db: Store,
    bcfg: Config,
    nas: NasListener,
) -> None:
    plans.update(db, "home", "noc", quota="1G", fup_rate="1M/1M")
    assert jobs(db) == []  # alice is not throttled: her rate did not change
    db.conn.execute("UPDATE subscribers SET fup_active = 1 WHERE username = 'alice'")
    assert run(db, bcfg) == 1 and nas.received[-1]["Mikrotik-Rate-Limit"] == ["1M/1M"]
    plans.update(db, "home", "noc", fup_rate="2M/2M")
    assert run(db, bcfg) == 1 and nas.received[-1]["Mikrotik-Rate-Limit"] == ["2M/2M"]
    plans.update(db, "home", "noc", rate="12M/12M")  # she is throttled: no change for her
    assert run(db, bcfg) == 0 and len(nas.received) == 2


def test_nak_session_not_found_is_done(db: Store, bcfg: Config, nas: NasListener) -> None:
    nas.mode = "nak503"
    subs.suspend(db, "alice", "noc", "test")
    assert run(db, bcfg) == 1
    assert jobs(db) == [{"action": "disconnect", "status": "done", "result": "no-session", "attempts": 1}]
    assert db.scalar("SELECT status FROM radius_sessions") == "closed"


def test_coa_nak_falls_back_to_disconnect(db: Store, bcfg: Config, nas: NasListener) -> None:
    nas.mode = "nak"
    billing.change_plan(db, "alice", "fast", "noc", bcfg)
    assert run(db, bcfg) == 0  # converted, not finished
    nas.mode = "ack"
    assert run(db, bcfg) == 1
    assert nas.kinds() == ["coa", "disconnect"]
    assert jobs(db)[0]["action"] == "disconnect" and jobs(db)[0]["status"] == "done"


def test_silent_nas_is_retried_with_backoff_and_survives_restart(
    db: Store,
    bcfg: Config,
    clock: Clock,
    nas: NasListener,
) -> None:
    nas.mode = "silent"
    subs.suspend(db, "alice", "noc", "test")
    assert run(db, bcfg) == 0
    first = db.one("SELECT attempts, next_attempt_at, last_error FROM enforce_jobs")
    assert first["attempts"] == 1 and first["next_attempt_at"] > clock()
    assert run(db, bcfg) == 0 and len(nas.received) == 1  # not due yet: nothing sent
    db.close()
    # the agent restarts; the NAS answers again; the job is still there and completes
    db2 = open_store(bcfg, clock)
    nas.mode = "ack"
    clock.set(first["next_attempt_at"])
    assert asyncio.run(enforce.process_pending(db2, bcfg)) == 1
    assert jobs(db2)[0]["status"] == "done" and jobs(db2)[0]["attempts"] == 2
    assert asyncio.run(enforce.process_pending(db2, bcfg)) == 0  # never repeated
    assert len(nas.received) == 2
    db2.close()


def test_new_static_address_needs_a_new_login(db: Store, bcfg: Config, nas: NasListener) -> None:
    subs.update(db, "alice", "noc", service="static", ip="100.64.9.9")
    assert run(db, bcfg) == 1
    assert nas.kinds() == ["disconnect"]
    subs.update(db, "alice", "noc", phone="+254700000009")  # not network state: nothing
    assert run(db, bcfg) == 0 and len(nas.received) == 1


def test_session_that_ended_is_not_sent(db: Store, bcfg: Config, nas: NasListener) -> None:
    subs.suspend(db, "alice", "noc", "test")
    db.conn.execute("UPDATE radius_sessions SET status = 'closed'")
    assert run(db, bcfg) == 1
    assert nas.received == [] and jobs(db)[0]["result"] == "session ended"


def test_router_with_driver_is_reconciled_through_the_driver(
    tmp_path: Path,
    clock: Clock,
) -> None:
    cfg = billing_config(tmp_path)
    db = open_store(cfg, clock)
    seed_plans(db)
    with RouterOSSim(users={"api": "api-pass-123"}) as sim:
        routers.add(
            db,
            "edge-1",
            driver="mikrotik",
            host="127.0.0.1",
            port=sim.port,
            radius_secret="radius-secret-1",
            username="api",
            password="api-pass-123",
            actor="test",
        )
        add_sub(db, "shop", service="static", ip="100.64.1.20")
        payments.record(db, cfg, "shop", "1000", "S-1", actor="test")
        subs.suspend(db, "shop", "noc", "unpaid")
        assert jobs(db) == [{"action": "reconcile", "status": "pending", "result": None, "attempts": 0}]
        assert asyncio.run(enforce.process_pending(db, cfg)) == 1
        listed = sim.state.items("/ip/firewall/address-list", list="jasiyo-suspended")
        assert [i["address"] for i in listed] == ["100.64.1.20"]
        assert jobs(db)[0]["status"] == "done"
        subs.resume(db, "shop", "noc")
        assert asyncio.run(enforce.process_pending(db, cfg)) == 1
        assert sim.state.items("/ip/firewall/address-list", list="jasiyo-suspended") == []
    # router gone: the scheduled reconcile is retried, not lost
    assert enforce.enqueue_reconcile_all(db) == 1
    assert enforce.enqueue_reconcile_all(db) == 0  # one pending per router at most
    assert asyncio.run(enforce.process_pending(db, cfg)) == 0
    assert db.one("SELECT attempts, last_error FROM enforce_jobs WHERE status = 'pending'")["attempts"] == 1
    db.close()
