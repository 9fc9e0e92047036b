"""A POP whose clock ran 30 days fast does not win over newer changes for 30 days: an
event's clock is bounded by the cloud's clock when it stored it, the same on every POP."""

from __future__ import annotations

import time
from pathlib import Path

from jasiyo.agent import plans, syncrun
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.sync.hlc import Timestamp, bounded
from tests.sync.harness import Cloud, Tenant, snap, sync

DAY = 86400.0


def test_bounded_keeps_honest_clocks_and_caps_fast_ones() -> None:
    now = 1_790_000_000.0
    honest = Timestamp(int(now * 1000) + 2000, 3, "a").encode()
    assert bounded(honest, now) == honest
    fast = Timestamp(int((now + 30 * DAY) * 1000), 7, "b").encode()
    capped = Timestamp.decode(bounded(fast, now))
    assert capped.wall_ms == int(now * 1000) + 6 * 60 * 1000 and capped.origin == "b"
    assert bounded(fast, None) == fast  # a cloud that does not say: unchanged


def test_a_pop_30_days_fast_loses_to_a_newer_change(cloud: Cloud, tmp_path: Path) -> None:
    isp = Tenant(cloud, tmp_path).setup(2)
    a, b = isp.agents
    s = Store.open(a)
    plans.add(s, plans.build("home", rate="10M/10M", price="1500"), "t")
    subs.add(s, subs.NewSubscriber.build("wanjiru", password="pw-123456", plan="home"), "t")
    s.close()
    sync(a, b)
    fast = Store.open(b, now=lambda: time.time() + 30 * DAY)  # B's clock: a month ahead
    subs.update(fast, "wanjiru", "noc-b", name="Old Name")
    fast.close()
    sync(b, a)
    # Seven minutes later, at A (a clock that is right), someone corrects the name.
    later = Store.open(a, now=lambda: time.time() + 7 * 60)
    subs.update(later, "wanjiru", "noc-a", name="New Name")
    later.close()
    sync(a, b, rounds=3)
    for cfg in (a, b):
        (row,) = snap(cfg)["subscribers"]
        assert row["name"] == "New Name"
    assert snap(a) == snap(b)
    # The fast POP is shown: every POP that pulled its events names it.
    st = syncrun.sync_status(a)
    assert st.skewed_origins and st.clock_offset is not None and abs(st.clock_offset) < 60
    s = Store.open(b)
    b_id = s.agent_id
    s.close()
    assert b_id in st.skewed_origins
