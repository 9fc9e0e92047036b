"""Vouchers across POPs: generated at one, usable at every one, used once ever."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jasiyo.agent import plans, vouchers
from jasiyo.agent.keys import SecretBox, load_key
from jasiyo.agent.radius_backend import StoreBackend
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.radius.backend import AcctRecord
from tests.sync.harness import Cloud, Tenant, sqlite_cloud, sync


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    c = sqlite_cloud(tmp_path)
    yield c
    c.server.stop()
    c.storage.close()


def _start(cfg: Config, code: str, sid: str, mac: str) -> None:
    """An Accounting-Start for ``code`` at this POP, through the agent's accounting writer."""
    b = StoreBackend(cfg, SecretBox(load_key(cfg.key_path)))
    try:
        b.record_accounting(
            [
                AcctRecord(
                    nas_address="127.0.0.1",
                    status_type="Start",
                    received_at=time.time(),
                    acct_session_id=sid,
                    username=code,
                    calling_station_id=mac,
                )
            ]
        )
    finally:
        b.close()


def _uses(cfg: Config) -> list[dict]:
    s = Store.open(cfg)
    try:
        return s.all("SELECT code, started_at, mac, pop FROM voucher_uses ORDER BY code")
    finally:
        s.close()


def test_a_code_used_at_two_pops_before_they_sync_is_used_once(cloud: Cloud, tmp_path: Path) -> None:
    a, b = Tenant(cloud, tmp_path).setup(2).agents
    s = Store.open(a)
    plans.add(s, plans.build("1h", rate="2M/2M", price="10", period="1h"), "t")
    code, other = vouchers.generate(s, "1h", 2, "t")
    s.close()
    sync(a, b)
    sb = Store.open(b)
    assert vouchers.get(sb, code).status == "new"  # the codes reached B
    sb.close()

    # the same code logs in at both POPs before either hears of the other
    _start(a, code, "at-a", "AA:AA:AA:AA:AA:01")
    _start(b, code, "at-b", "BB:BB:BB:BB:BB:02")
    sync(a, b)

    ua, ub = _uses(a), _uses(b)
    assert ua == ub and len(ua) == 1  # one use, the same on both POPs
    assert ua[0]["mac"] == "AA:AA:AA:AA:AA:01"  # the earlier one (A's) wins
    sb = Store.open(b)
    jobs = sb.all(
        "SELECT username, action, acct_session_id, status FROM enforce_jobs WHERE action = 'disconnect'"
    )
    assert jobs == [
        {"username": code, "action": "disconnect", "acct_session_id": "at-b", "status": "pending"}
    ]  # B's device is put off
    assert vouchers.get(sb, code).started_at == ua[0]["started_at"]
    sb.close()
    sa = Store.open(a)
    assert not sa.all("SELECT 1 FROM enforce_jobs WHERE action = 'disconnect'")
    assert vouchers.get(sa, other).status == "new"
    sa.close()

    # and replays change nothing
    sync(a, b)
    assert _uses(a) == _uses(b) == ua


def test_a_revoke_at_one_pop_reaches_the_other(cloud: Cloud, tmp_path: Path) -> None:
    a, b = Tenant(cloud, tmp_path).setup(2).agents
    s = Store.open(a)
    plans.add(s, plans.build("1h", rate="2M/2M", price="10", period="1h"), "t")
    (code,) = vouchers.generate(s, "1h", 1, "t")
    s.close()
    sync(a, b)
    sb = Store.open(b)
    vouchers.revoke(sb, code, "t")
    sb.close()
    sync(a, b)
    sa = Store.open(a)
    assert vouchers.get(sa, code).status == "revoked"
    sa.close()
