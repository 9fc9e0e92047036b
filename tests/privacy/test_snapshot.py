"""Snapshots and compaction: the cloud keeps the newest sealed snapshot and the events after
it, a wiped POP restores from them to the same state, and the cloud still reads nothing."""

from __future__ import annotations

from pathlib import Path

from jasiyo.agent import payments, plans, snapshot, tenantkeys
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import Config
from tests.privacy.people import NAME, PASSWORD, add_person
from tests.privacy.test_erase_pops import cloud_rows
from tests.sync.harness import Cloud, Tenant, snap, sqlite_cloud, sync


def busy_tenant(cfg: Config, edits: int = 40) -> None:
    """Rows edited many times over: most of their events are superseded."""
    add_person(cfg, session=False)
    s = Store.open(cfg)
    try:
        plans.add(s, plans.build("biz", rate="50M/50M", price="5000"), "noc")
        for i in range(edits):
            subs.update(s, "wanjiku", "noc", name=f"{NAME} {i}")
            plans.update(s, "biz", "noc", price=str(5000 + i))
        subs.update(s, "wanjiku", "noc", name=NAME)
        payments.record(s, cfg, "wanjiku", "500", "QKSNAP002", method="mpesa", actor="noc")
    finally:
        s.close()


def test_snapshot_compacts_the_log_and_a_wiped_pop_restores_from_it(
        any_cloud: tuple[Cloud, Path | str, str], tmp_path: Path) -> None:
    cloud, where, _ = any_cloud
    isp = Tenant(cloud, tmp_path).setup(2)
    a, b = isp.agents
    busy_tenant(a)
    sync(a, b)
    before = cloud.storage.tenant_bytes(isp.id)
    result = snapshot.write(a)
    after = cloud.storage.tenant_bytes(isp.id)
    assert result["dropped"] > 80 and after["events"] < before["events"] // 3
    assert after["event_bytes"] + after["snapshot_bytes"] < before["event_bytes"]
    # The cloud holds envelopes only.
    raw = repr(cloud_rows(where)).encode()
    if isinstance(where, Path):
        raw += where.read_bytes()
    assert NAME.encode() not in raw and PASSWORD.encode() not in raw
    assert after["snapshot_bytes"] > 0

    # Life goes on after the snapshot: a change at B reaches A as before.
    s = Store.open(b)
    subs.suspend(s, "wanjiku", "noc:b", "after the snapshot")
    s.close()
    sync(b, a)
    assert snap(a) == snap(b)

    # A wiped POP: newest snapshot + the tail = the same state.
    fresh = isp.add_agent("pop-fresh")
    restored = tenantkeys.restore_from_cloud(fresh, isp.recovery)
    assert restored["pending"] == 0
    assert snap(fresh) == snap(a)
    assert cloud.storage.tenant_bytes(isp.id)["events"] == after["events"] + 1

    # A second snapshot replaces the first; restoring still works.
    snapshot.write(b)
    assert len(cloud.storage.latest_snapshot(isp.id) or ()) == 4
    again = isp.add_agent("pop-again")
    tenantkeys.restore_from_cloud(again, isp.recovery)
    assert snap(again) == snap(a)


def test_a_pop_behind_the_compacted_floor_catches_up_through_the_snapshot(
        tmp_path: Path) -> None:
    cloud = sqlite_cloud(tmp_path)
    try:
        isp = Tenant(cloud, tmp_path).setup(3)
        a, b, late = isp.agents
        busy_tenant(a, edits=10)
        sync(a, b)  # `late` has pulled nothing yet
        snapshot.write(a)
        sync(late)
        assert snap(late) == snap(a)
    finally:
        cloud.server.stop()
        cloud.storage.close()


def test_a_recovery_file_older_than_a_key_rotation_still_restores(tmp_path: Path) -> None:
    """The event that shared the rotated key is kept by compaction and read first."""
    cloud = sqlite_cloud(tmp_path)
    try:
        isp = Tenant(cloud, tmp_path).setup(1)
        (a,) = isp.agents
        busy_tenant(a, edits=5)
        sync(a)
        tenantkeys.rotate_key(a)  # the recovery file holds only the first key
        s = Store.open(a)
        subs.update(s, "wanjiku", "noc", name="After Rotation")
        s.close()
        sync(a)
        snapshot.write(a)
        fresh = isp.add_agent("pop-fresh")
        tenantkeys.restore_from_cloud(fresh, isp.recovery)
        assert snap(fresh) == snap(a)
    finally:
        cloud.server.stop()
        cloud.storage.close()


def test_a_snapshot_lists_rows_before_what_refers_to_them(tmp_path: Path) -> None:
    """Plans, then subscribers, then their money: applied in batches, nothing waits."""
    from jasiyo.agent.fold import ENTITIES
    from jasiyo.sync.keyring import Keyring
    from jasiyo.sync.snapshotfmt import decode

    cloud = sqlite_cloud(tmp_path)
    try:
        isp = Tenant(cloud, tmp_path).setup(1)
        (a,) = isp.agents
        busy_tenant(a, edits=3)
        sync(a)
        snapshot.write(a)
        snap_id, origin, _, parts = cloud.storage.latest_snapshot(isp.id) or ("", "", 0, 0)
        ring = Keyring.load(isp.recovery)
        chunks = [ring.open(cloud.storage.snapshot_part(isp.id, snap_id, i) or "",
                            f"snapshot:{snap_id}:{i}", origin) for i in range(parts)]
        ranks = [ENTITIES[e["entity"]].rank for e in decode(chunks)]
        assert ranks == sorted(ranks) and {"payment", "subscriber"} <= {
            e["entity"] for e in decode(chunks)}
    finally:
        cloud.server.stop()
        cloud.storage.close()
