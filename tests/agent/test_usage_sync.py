"""Usage summaries (issue 17): what is published, when, and what the log keeps."""

from __future__ import annotations

import time

import pytest

from jasiyo.agent import payments, plans, usage, usage_sync
from jasiyo.agent import subscribers as subs
from jasiyo.agent.radius_backend import open_backend
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.radius.backend import AcctRecord

MB = 10**6


@pytest.fixture
def pop(cfg: Config) -> Config:
    """A POP of a tenant (enrolment is what turns publishing on; no cloud is needed here)."""
    s = Store.open(cfg)
    with s.transaction():
        s.set_meta("sync.tenant_id", "tenant-under-test")
    plans.add(s, plans.build("home", rate="10M/10M", price="1500", quota="1G",
                             fup_rate="1M/1M"), "t")
    subs.add(s, subs.NewSubscriber.build("alice", password="pw-alice-1", plan="home"), "t")
    payments.record(s, cfg, "alice", "1500", "QUSE000001", method="mpesa", actor="t")
    s.close()
    return cfg


def acct(cfg: Config, kind: str, octets: int, received: float, delay: int = 0) -> None:
    be = open_backend(cfg)
    try:
        be.record_accounting([AcctRecord("127.0.0.1", kind, received, acct_session_id="s1",
                                         username="alice", session_time=int(octets // MB),
                                         input_octets=octets // 2,
                                         output_octets=octets - octets // 2,
                                         delay_time=delay)])
    finally:
        be.close()


def summary(cfg: Config) -> tuple[int, int]:
    s = Store.open(cfg)
    try:
        row = s.one("SELECT input_octets + output_octets AS o FROM usage_summaries")
        events = s.scalar("SELECT count(*) FROM events WHERE entity = 'usage'")
        return (row["o"] if row else 0), events
    finally:
        s.close()


def publish(cfg: Config, at: float | None = None) -> int:
    s = Store.open(cfg)
    try:
        return usage_sync.publish(s, at)
    finally:
        s.close()


def test_a_late_record_is_published_and_changes_wait_for_the_gap(pop: Config) -> None:
    now = time.time()
    acct(pop, "Start", 0, now)
    acct(pop, "Interim-Update", 100 * MB, now + 1)
    assert publish(pop, now + 2) == 1 and summary(pop) == (100 * MB, 1)
    # An interim that says it was delayed 10 minutes, arriving after that publish.
    acct(pop, "Interim-Update", 200 * MB, now + 3, delay=600)
    assert publish(pop, now + 60) == 0  # changed, but the summary is 1 minute old
    assert summary(pop) == (100 * MB, 1)
    assert publish(pop, now + 120) == 0  # still deferred, not forgotten ...
    assert publish(pop, now + usage_sync.SUMMARY_GAP + 10) == 1  # ... written after the gap
    assert summary(pop)[0] == 200 * MB


def test_near_the_quota_a_summary_goes_at_once(pop: Config) -> None:
    now = time.time()
    acct(pop, "Start", 0, now)
    acct(pop, "Interim-Update", 100 * MB, now + 1)
    assert publish(pop, now + 2) == 1
    acct(pop, "Interim-Update", 850 * MB, now + 30)  # 85% of the 1 GB quota
    assert publish(pop, now + 60) == 1 and summary(pop)[0] == 850 * MB


def test_superseded_summaries_leave_the_local_log_once_pushed(pop: Config) -> None:
    now = time.time()
    acct(pop, "Start", 0, now)
    for i, (octets, at) in enumerate([(100 * MB, 0), (200 * MB, 1000), (300 * MB, 2000)]):
        acct(pop, "Interim-Update", octets, now + at + 1)
        assert publish(pop, now + at + 2) == 1
        s = Store.open(pop)
        with s.transaction():  # what the pusher does once the cloud has them
            s.conn.execute("UPDATE events SET pushed_at = ? WHERE entity = 'usage'", (now,))
        s.close()
        assert summary(pop)[1] <= 2, i
    publish(pop, now + 4000)
    assert summary(pop) == (300 * MB, 1)
    s = Store.open(pop)
    assert usage.cycle_usage(s, "alice", now - 10) == 300 * MB  # own accounting, once
    s.close()
