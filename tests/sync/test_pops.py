"""POPs (issue 17): two agents of one tenant with real sync. A subscriber homed at POP A is
billed, reminded, throttled and reconciled by A only; B authenticates it and B's usage
counts at A; ``subscriber move`` hands it to B with nothing charged twice; its static queue
lives only on its home router (RouterOS API simulator)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from jasiyo.agent import billing, enforce, ledger, payments, plans, pops, routers, usage_sync
from jasiyo.agent import subscribers as subs
from jasiyo.agent.radius_backend import open_backend
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.drivers.mikrotik.sim import RouterOSSim
from jasiyo.radius.backend import AcctRecord
from jasiyo.radius.policy import AuthMethod, AuthRequest, authorize
from tests.sync.harness import Cloud, Tenant, snap, sqlite_cloud, sync

DAY = 86400.0
GB = 10**9


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    c = sqlite_cloud(tmp_path)
    yield c
    c.server.stop()
    c.storage.close()


@pytest.fixture
def sims() -> Iterator[tuple[RouterOSSim, RouterOSSim]]:
    with RouterOSSim(users={"api": "api-pass-123"}) as ra, \
            RouterOSSim(users={"api": "api-pass-123"}) as rb:
        yield ra, rb


def opened(cfg: Config, at: float | None = None) -> Store:
    return Store.open(cfg, now=(lambda: at) if at is not None else __import__("time").time)


def outbox(cfg: Config) -> int:
    s = Store.open(cfg)
    try:
        return s.scalar("SELECT count(*) FROM events WHERE pushed_at IS NULL")
    finally:
        s.close()


def queues(sim: RouterOSSim) -> list[str]:
    return sorted(i["name"] for i in sim.state.items("/queue/simple"))


def setup(cloud: Cloud, tmp: Path, sims: tuple[RouterOSSim, RouterOSSim]
          ) -> tuple[Config, Config]:
    isp = Tenant(cloud, tmp).setup(2)
    a, b = isp.agents
    ra, rb = sims
    s = Store.open(a)
    plans.add(s, plans.build("home", rate="10M/10M", price="1500", period="30d",
                             quota="1G", fup_rate="1M/1M"), "t")
    routers.add(s, "rtr-a", driver="mikrotik", host="127.0.0.1", port=ra.port,
                radius_secret="radius-secret-a", nas_ip="127.0.0.11", username="api",
                password="api-pass-123", actor="t")
    subs.add(s, subs.NewSubscriber.build(
        "alice", password="pw-alice-1", plan="home", service="static", ip="100.64.9.9",
        phone="+254712000001", sms_consent=True), "t")
    pops.set_home(s, "alice", "rtr-a", "t")
    s.close()
    s = Store.open(b)
    routers.add(s, "rtr-b", driver="mikrotik", host="127.0.0.1", port=rb.port,
                radius_secret="radius-secret-b", nas_ip="127.0.0.12", username="api",
                password="api-pass-123", actor="t")
    s.close()
    sync(a, b)
    return a, b


def drain(cfg: Config, at: float | None = None) -> None:
    """Work this POP's enforcement queue (reconciles through the driver) as of ``at``."""
    s = opened(cfg, at)
    try:
        asyncio.run(enforce.process_pending(s, cfg))
    finally:
        s.close()


def jobs(cfg: Config) -> list[dict]:
    s = Store.open(cfg)
    try:
        return s.all("SELECT action, router, username FROM enforce_jobs WHERE status = 'pending'")
    finally:
        s.close()


def accounting(cfg: Config, nas: str, sid: str, octets: int, at: float) -> None:
    be = open_backend(cfg)
    try:
        be.record_accounting([
            AcctRecord(nas, "Start", at, acct_session_id=sid, username="alice"),
            AcctRecord(nas, "Stop", at + 600, acct_session_id=sid, username="alice",
                       session_time=600, input_octets=octets // 4,
                       output_octets=octets - octets // 4)])
    finally:
        be.close()


@pytest.mark.slow
def test_home_pop_bills_reminds_and_enforces_roaming_works_and_move_hands_over(
        cloud: Cloud, tmp_path: Path, sims: tuple[RouterOSSim, RouterOSSim]) -> None:
    a, b = setup(cloud, tmp_path, sims)
    ra, rb = sims
    sa = Store.open(a)
    assert {p.name: p.routers for p in pops.list_(sa)} == {
        a.agent.name: 1, b.agent.name: 1}
    assert subs.get(sa, "alice").home_pop == a.agent.name
    sa.close()

    # The static queue lives on the home router only.
    drain(a)
    drain(b)
    assert queues(ra) == ["alice"] and queues(rb) == []
    assert jobs(b) == []

    # Paid at A: a 30-day period. Sync; B's billing clock leaves alice alone.
    s = Store.open(a)
    payments.record(s, a, "alice", "1500", "QPOPA00001", method="mpesa", actor="t")
    t0 = s.scalar("SELECT paid_until FROM subscribers WHERE username = 'alice'") - 30 * DAY
    s.close()
    sync(a, b)

    # Authenticated at B (roaming), with usage at B counted toward the quota at A.
    be = open_backend(b)
    subject = be.subject("alice")
    be.close()
    assert authorize(AuthRequest("alice", AuthMethod.PAP, pap_password="pw-alice-1"),
                     subject).accept
    accounting(b, "127.0.0.12", "roam-1", int(1.2 * GB), t0 + DAY)
    s = Store.open(b)
    assert subs.get(s, "alice").home_router == "rtr-a"  # a roaming Start learns no new home
    assert usage_sync.publish(s) == 1
    s.close()
    sync(a, b)
    for cfg in (b, a):
        s = opened(cfg, t0 + 2 * DAY)
        billing.tick(s, cfg)
        s.close()
    s = Store.open(a)
    assert subs.details(s, "alice")["usage_bytes"] == int(1.2 * GB)
    assert s.scalar("SELECT fup_active FROM subscribers WHERE username = 'alice'") == 1
    s.close()

    # Reminders and the suspension at expiry: A's alone.
    sync(a, b)
    for day in (27.5, 30.5):
        s = opened(b, t0 + day * DAY)
        billing.tick(s, b)
        s.close()
        assert outbox(b) == 0  # B's clock wrote nothing
        s = opened(a, t0 + day * DAY)
        billing.tick(s, a)
        s.close()
        sync(a, b)
    for cfg, mine in ((a, True), (b, False)):
        s = Store.open(cfg)
        n = s.scalar("SELECT count(*) FROM notifications WHERE username = 'alice'")
        assert (n > 0) is mine, cfg.agent.name
        assert subs.get(s, "alice").status == "suspended"
        s.close()
    assert jobs(b) == [] and outbox(b) == 0  # B wrote nothing, queued nothing
    assert any(j["router"] == "rtr-a" for j in jobs(a))

    # Hand alice over to B's router: billing, reminders and the queue follow.
    s = Store.open(a)
    assert pops.move(s, "alice", "rtr-b", "noc")["pop"] == b.agent.name
    s.close()
    sync(a, b)
    drain(a, t0 + 31 * DAY)
    drain(b, t0 + 31 * DAY)
    assert queues(ra) == [] and queues(rb) == ["alice"]
    s = opened(b, t0 + 31 * DAY)
    payments.record(s, b, "alice", "1500", "QPOPB00001", method="mpesa", actor="t")
    s.close()
    for day in (58.0, 61.0):  # both clocks run across the next renewal
        for cfg in (a, b):
            s = opened(cfg, t0 + day * DAY)
            billing.tick(s, cfg)
            s.close()
        sync(a, b, rounds=3)
    assert snap(a)["ledger"] == snap(b)["ledger"]
    s = Store.open(b)
    charges = s.all("SELECT amount_minor FROM ledger WHERE kind = 'charge'")
    paid = s.scalar("SELECT sum(amount_minor) FROM ledger WHERE kind = 'payment'")
    s.close()
    assert len(charges) == 2 and paid == 300000  # two payments, two periods: nothing twice
    sa = Store.open(a)
    assert sa.scalar("SELECT count(*) FROM notifications WHERE username = 'alice' "
                     "AND created_at > ?", (t0 + 31 * DAY,)) == 0
    sa.close()


def test_a_cycle_billed_at_two_pops_before_they_sync_is_charged_once(
        cloud: Cloud, tmp_path: Path, sims: tuple[RouterOSSim, RouterOSSim]) -> None:
    """The move was made at B while A had not heard of it: both renew the same period."""
    a, b = setup(cloud, tmp_path, sims)
    s = Store.open(a)
    payments.record(s, a, "alice", "1500", "QPOPA00002", method="mpesa", actor="t")
    with s.transaction():  # a wallet that renews the period at expiry
        ledger.post(s, s.one("SELECT s.*, 'KES' AS currency FROM subscribers s"), "credit",
                    150000, "GOODWILL-1", "goodwill", s.now())
    expiry = s.scalar("SELECT paid_until FROM subscribers WHERE username = 'alice'")
    s.close()
    sync(a, b)
    s = Store.open(b)
    pops.move(s, "alice", "rtr-b", "noc")  # not pushed yet: A still thinks it is home
    s.close()
    for cfg in (a, b):
        s = opened(cfg, expiry + 60)
        billing.tick(s, cfg)
        s.close()
    sync(a, b, rounds=3)
    assert snap(a)["ledger"] == snap(b)["ledger"]
    s = Store.open(a)
    assert s.scalar("SELECT count(*) FROM ledger WHERE kind = 'charge'") == 2
    assert s.scalar("SELECT sum(amount_minor) FROM ledger") == 0
    docs = s.scalar("SELECT count(*) FROM invoices WHERE status != 'void' "
                    "AND cycle_start = ?", (expiry,))
    s.close()
    assert docs == 1  # one document for the one renewal
    s = Store.open(b)  # ... although B did renew it too (its charge is the same one)
    assert s.scalar("SELECT count(*) FROM events WHERE entity = 'ledger' AND origin = ?",
                    (s.agent_id,)) == 1
    s.close()


def test_retire_moves_every_subscriber_of_a_pop_that_is_gone(
        cloud: Cloud, tmp_path: Path, sims: tuple[RouterOSSim, RouterOSSim]) -> None:
    a, b = setup(cloud, tmp_path, sims)
    s = Store.open(b)
    with pytest.raises(Exception, match="belongs to the POP being retired"):
        pops.retire(s, a.agent.name, "rtr-a", "noc")
    r = pops.retire(s, a.agent.name, "rtr-b", "noc")
    assert r["moved"] == 1 and subs.get(s, "alice").home_pop == b.agent.name
    s.close()
    sync(b)
    s = Store.open(b)
    (gone,) = [p for p in pops.list_(s) if p.name == a.agent.name]
    s.close()
    assert gone.retired and gone.retired_to == "rtr-b" and gone.subscribers == 0


def test_usage_survives_restore_from_cloud_and_is_not_counted_twice(
        cloud: Cloud, tmp_path: Path, sims: tuple[RouterOSSim, RouterOSSim]) -> None:
    from jasiyo.agent import cloudlink, tenantkeys, usage
    from jasiyo.agent.store import init_store
    from jasiyo.config import parse

    isp = Tenant(cloud, tmp_path).setup(2)
    a, b = isp.agents
    ra, _ = sims
    s = Store.open(a)
    plans.add(s, plans.build("home", rate="10M/10M", price="1500", quota="1G",
                             fup_rate="1M/1M"), "t")
    routers.add(s, "rtr-a", driver="mikrotik", host="127.0.0.1", port=ra.port,
                radius_secret="radius-secret-a", nas_ip="127.0.0.11", actor="t")
    subs.add(s, subs.NewSubscriber.build("alice", password="pw-alice-1", plan="home"), "t")
    payments.record(s, a, "alice", "1500", "QPOPR00001", method="mpesa", actor="t")
    t0 = s.now()
    s.close()
    accounting(a, "127.0.0.11", "home-1", 600 * 10**6, t0 + 60)
    s = Store.open(a)
    assert subs.get(s, "alice").home_router == "rtr-a"  # learned from the first Start
    assert usage_sync.publish(s) == 1 and usage_sync.publish(s) == 0  # unchanged: no event
    s.close()
    sync(a, b)
    s = Store.open(b)
    assert usage.cycle_usage(s, "alice", t0 - 1) == 600 * 10**6  # B sees A's summary
    s.close()

    # A's disk dies; the POP is rebuilt under the same name from the cloud.
    fresh = parse(f'[agent]\ndata_dir = "{tmp_path / "rebuilt"}"\nname = "{a.agent.name}"\n',
                  tmp_path)
    init_store(fresh)
    cloudlink.enroll_agent(fresh, cloud.url, cloud.enrolment(isp.id, isp.admin))
    tenantkeys.restore_from_cloud(fresh, isp.recovery)
    s = Store.open(fresh)
    assert usage.cycle_usage(s, "alice", t0 - 1) == 600 * 10**6
    assert pops.owns(s, "alice")  # the rebuilt POP bills its subscribers again
    s.close()
    # More traffic at the rebuilt POP adds to what the old one recorded, once.
    accounting(fresh, "127.0.0.11", "home-2", 500 * 10**6, t0 + 900)
    s = opened(fresh, t0 + 1000)
    assert usage.cycle_usage(s, "alice", t0 - 1) == 1100 * 10**6
    billing.tick(s, fresh)
    assert s.scalar("SELECT fup_active FROM subscribers WHERE username = 'alice'") == 1
    s.close()


def test_a_router_from_before_pops_is_everyones_until_a_pop_adopts_it(
        cloud: Cloud, tmp_path: Path, sims: tuple[RouterOSSim, RouterOSSim]) -> None:
    a, b = setup(cloud, tmp_path, sims)
    s = Store.open(a)
    with s.transaction():  # as a store migrated from before POPs has it
        s.conn.execute("UPDATE routers SET pop = NULL WHERE name = 'rtr-a'")
        s.conn.execute("UPDATE subscribers SET home_pop = NULL")
    s.close()
    s = Store.open(b)
    with s.transaction():
        s.conn.execute("UPDATE routers SET pop = NULL WHERE name = 'rtr-a'")
        s.conn.execute("UPDATE subscribers SET home_pop = NULL")
    assert pops.owns(s, "alice")  # homeless: every POP handles it, as before POPs
    s.close()
    s = Store.open(a)
    r = pops.adopt(s, "rtr-a", "noc")
    assert r["changed"] and r["subscribers"] == 1
    s.close()
    sync(a, b)
    s = Store.open(b)
    assert not pops.owns(s, "alice") and routers.get(s, "rtr-a").pop == a.agent.name
    s.close()


def test_pop_list_flags_pops_whose_invoice_numbers_would_collide(
        cloud: Cloud, tmp_path: Path, sims: tuple[RouterOSSim, RouterOSSim]) -> None:
    """The harness names its POPs pop-<tenant>-0 and -1: long names sharing a beginning get
    distinct invoice codes (a digest of the whole name). Names that differ only in
    punctuation or case still share a code, and `pop list` says so."""
    a, b = setup(cloud, tmp_path, sims)
    s = Store.open(a)
    try:
        assert all(p.conflict is None for p in pops.list_(s))
        twin = a.agent.name.upper().replace("-", "_")
        s.execute("INSERT INTO pops (name, created_at, updated_at) VALUES (?, 0, 0)", (twin,))
        flagged = {p.name: p.conflict for p in pops.list_(s)}
    finally:
        s.close()
    assert flagged[b.agent.name] is None
    for name in (a.agent.name, twin):
        why = flagged[name]
        assert why and "invoice numbers" in why and "[agent] pop" in why, name
