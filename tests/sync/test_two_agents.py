"""Two POPs of one ISP and a cloud over real HTTP on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from jasiyo.agent import billing, cloudlink, plans, routers, syncrun, tenantkeys
from jasiyo.agent import subscribers as subs
from jasiyo.agent.radius_backend import StoreBackend
from jasiyo.agent.store import Store
from jasiyo.config import parse
from jasiyo.errors import StoreError, SyncError
from jasiyo.network import Access, Status
from tests.support.config import init_agent_store
from tests.sync.harness import Cloud, Tenant, new_agent, snap, sqlite_cloud, sync


@pytest.fixture
def isp(cloud: Cloud, tmp_path: Path) -> Tenant:
    return Tenant(cloud, tmp_path).setup(2)


def _open(cfg) -> Store:
    return Store.open(cfg)


def _seed(store: Store) -> None:
    plans.add(store, plans.build("home-10M", rate="10M/10M", price="1500"), "test")
    subs.add(
        store,
        subs.NewSubscriber.build("alice", password="alice-pw-1", plan="home-10M", phone="+254700000001"),
        "test",
    )
    routers.add(
        store,
        "core1",
        driver="mikrotik",
        host="127.0.0.1",
        radius_secret="s3cret-radius",
        username="admin",
        password="router-pw",
        actor="test",
    )


def test_changes_on_either_agent_appear_on_the_other(isp: Tenant) -> None:
    a, b = isp.agents
    sa = _open(a)
    _seed(sa)
    sa.close()
    sync(a, b)
    sb = _open(b)
    # B can authenticate alice and drive the router: secrets arrived and were re-sealed.
    assert subs.password_of(sb, "alice") == "alice-pw-1"
    assert routers.radius_secret(sb, "core1") == "s3cret-radius"
    assert routers.credentials(sb, "core1") == ("admin", "router-pw")
    subs.suspend(sb, "alice", "pop-b", "unpaid")
    plans.update(sb, "home-10M", "pop-b", price="2000")
    sb.close()
    sync(b, a)
    sa = _open(a)
    assert subs.get(sa, "alice").status == Status.SUSPENDED
    assert plans.get(sa, "home-10M").price_minor == 200000
    sa.close()
    assert snap(a) == snap(b)
    for cfg in (a, b):
        st = syncrun.sync_status(cfg)
        assert (st.backlog, st.lag_events, st.last_error) == (0, 0, None)


def test_concurrent_edits_converge_last_writer_wins_per_field(isp: Tenant) -> None:
    a, b = isp.agents
    sa = _open(a)
    _seed(sa)
    sa.close()
    sync(a, b)
    sa, sb = _open(a), _open(b)
    subs.update(sa, "alice", "pop-a", phone="+254700000002")  # A edits the phone
    subs.update(sb, "alice", "pop-b", name="Alice W.")  # B edits the name
    subs.update(sb, "alice", "pop-b", phone="+254700000003")  # ... and the phone, later
    sa.close()
    sb.close()
    sync(a, b)
    assert snap(a) == snap(b)
    sa = _open(a)
    alice = subs.get(sa, "alice")
    sa.close()
    assert (alice.name, alice.phone) == ("Alice W.", "+254700000003")


@pytest.mark.slow  # each sync_once against the stopped cloud retries with backoff: ~7 s
def test_cloud_down_agents_keep_working_and_backlog_drains(isp: Tenant, cloud: Cloud) -> None:
    a, b = isp.agents
    sa = _open(a)
    _seed(sa)
    sa.close()
    sync(a, b)
    cloud.server.stop()
    sa, sb = _open(a), _open(b)
    for i in range(20):
        subs.add(sa, subs.NewSubscriber.build(f"a{i:02d}", password=f"pw-a-{i}", plan="home-10M"), "pop-a")
        subs.add(sb, subs.NewSubscriber.build(f"b{i:02d}", password=f"pw-b-{i}", plan="home-10M"), "pop-b")
    subs.suspend(sb, "alice", "pop-b")
    # Local service goes on: B's RADIUS backend answers for its new subscriber and its
    # router, and A's billing clock runs, all without the cloud.
    radius = StoreBackend(b, sb.box)
    try:
        who = radius.subject("b07")
        assert who is not None and who.password == "pw-b-7"
        assert who.state.access == Access.ALLOW
        nas = radius.nas("127.0.0.1")
        assert nas is not None and nas.secret == b"s3cret-radius"
    finally:
        radius.close()
    assert billing.tick(sa, a).errors == 0
    sa.close()
    sb.close()
    for cfg in (a, b):
        with pytest.raises(SyncError, match="cannot reach the cloud"):
            syncrun.sync_once(cfg)
        st = syncrun.sync_status(cfg)
        assert st.backlog >= 20 and "cannot reach the cloud" in (st.last_error or "")
    cloud.server.start()  # same port, same database
    sync(a, b)
    assert snap(a) == snap(b)
    sa = _open(a)
    assert len(subs.list_(sa)) == 41 and subs.get(sa, "alice").status == Status.SUSPENDED
    local_events = sa.scalar("SELECT count(*) FROM events")
    sa.close()
    # Nothing lost or doubled: the cloud holds each event exactly once.
    events, head = cloud.storage.pull(isp.id, 0, 1000)
    assert head == len(events) == len({e.id for e in events}) == local_events
    assert all(syncrun.sync_status(c).backlog == 0 for c in (a, b))


def test_restore_from_cloud_equals_original(isp: Tenant, cloud: Cloud, tmp_path: Path) -> None:
    a, b = isp.agents
    sa, sb = _open(a), _open(b)
    _seed(sa)
    sa.close()
    sync(a, b)
    sb = _open(b)
    subs.add(sb, subs.NewSubscriber.build("bob", password="bob-pw", plan="home-10M"), "pop-b")
    subs.suspend(sb, "alice", "pop-b")
    routers.set_options(sb, "core1", "pop-b", api_tls=True)
    sb.close()
    sync(a, b)
    original = snap(a)
    # A's disk dies: a fresh install, a new enrolment, the recovery file.
    fresh = parse(f'[agent]\ndata_dir = "{tmp_path / "rebuilt"}"\n', tmp_path)
    init_agent_store(fresh)
    cloudlink.enroll_agent(fresh, cloud.url, cloud.enrolment(isp.id, isp.admin))
    result = tenantkeys.restore_from_cloud(fresh, isp.recovery)
    assert result["subscribers"] == 2 and result["pending"] == 0
    assert snap(fresh) == original
    # A store with data is never overwritten.
    with pytest.raises(StoreError, match="refusing to restore"):
        tenantkeys.restore_from_cloud(fresh, isp.recovery)


def test_rotated_key_reaches_other_pops_through_the_log(isp: Tenant) -> None:
    a, b = isp.agents
    sa = _open(a)
    _seed(sa)
    sa.close()
    sync(a, b)
    rotated = tenantkeys.rotate_key(a)
    sa = _open(a)
    subs.add(sa, subs.NewSubscriber.build("carol", password="carol-pw", plan="home-10M"), "t")
    sa.close()
    sync(a, b)
    sb = _open(b)
    assert subs.password_of(sb, "carol") == "carol-pw"
    sb.close()
    assert rotated["kid"] in (b.data_dir / "tenant.keys").read_text()
    # A POP added later with the old recovery file still reads everything.
    late = isp.add_agent("late")
    sync(late)
    assert snap(late) == snap(a)


def test_agent_without_tenant_key_cannot_sync(cloud: Cloud, tmp_path: Path) -> None:
    tenant, admin = cloud.tenant()
    cfg = new_agent(tmp_path, "lonely", cloud, tenant, admin)
    with pytest.raises(Exception, match="tenant keys .* not found"):
        syncrun.sync_once(cfg)


def test_background_sync_loops_carry_changes_both_ways(isp: Tenant) -> None:
    a, b = isp.agents
    stop = threading.Event()
    loops = [threading.Thread(target=syncrun.sync_forever, args=(cfg, stop)) for cfg in (a, b)]
    for t in loops:
        t.start()
    try:
        sa = _open(a)
        _seed(sa)
        sa.close()

        def on_b() -> list[str]:
            s = _open(b)
            try:
                return [x.username for x in subs.list_(s)]
            finally:
                s.close()

        deadline = time.monotonic() + 60
        while on_b() != ["alice"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert on_b() == ["alice"]
        sb = _open(b)
        subs.suspend(sb, "alice", "pop-b")
        sb.close()
        deadline = time.monotonic() + 60
        while snap(a) != snap(b) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert snap(a) == snap(b)
        assert snap(a)["subscribers"][0]["status"] == "suspended"
    finally:
        stop.set()
        for t in loops:
            t.join(timeout=60)
    assert not any(t.is_alive() for t in loops)


def test_large_events_are_pushed_in_smaller_batches(tmp_path: Path) -> None:
    from jasiyo.cloud.app import CloudSettings

    cloud = sqlite_cloud(tmp_path, CloudSettings(max_body=64 * 1024, rate=10_000, burst=10_000))
    try:
        isp = Tenant(cloud, tmp_path).setup(2)
        a, b = isp.agents
        s = _open(a)
        plans.add(s, plans.build("home", rate="5M/5M", price="1"), "t")
        for i in range(400):  # ~400 x 200-character names: more than one 64 KiB request
            subs.add(
                s,
                subs.NewSubscriber.build(f"u{i:03d}", password="pw-123456", plan="home", name="N" * 200),
                "t",
            )
        s.close()
        sync(a, b)
        assert snap(a) == snap(b) and len(snap(b)["subscribers"]) == 400
    finally:
        cloud.server.stop()
        cloud.storage.close()
