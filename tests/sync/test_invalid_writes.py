"""A badly typed write (a buggy dashboard, anyone holding the tenant key) is ignored as if
never made, on every agent alike: it cannot delete a plan, a subscriber or a payment."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from jasiyo.agent import fold, plans
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.sync.client import RemoteEvent
from jasiyo.sync.ids import uuid7
from tests.sync.harness import Cloud, Tenant, snap, sync


@pytest.fixture
def isp(cloud: Cloud, tmp_path: Path) -> Tenant:
    return Tenant(cloud, tmp_path).setup(2)


def _remote(entity: str, key: str, op: str, data: dict, offset_ms: int) -> RemoteEvent:
    wall = int(time.time() * 1000) + offset_ms
    return RemoteEvent(uuid7(), f"{wall:015d}.000000.other", "other", entity, key, op, data)


def _seeded(isp: Tenant) -> tuple[Config, Config]:
    a, b = isp.agents
    sa = Store.open(a)
    plans.add(sa, plans.build("home", rate="10M/10M", price="1500"), "t")
    plans.add(sa, plans.build("spare", rate="2M/2M", price="500"), "t")  # nobody is on it
    subs.add(sa, subs.NewSubscriber.build("alice", password="alice-pw-1", plan="home"), "t")
    sa.close()
    sync(a, b)
    return a, b


def _row(cfg: Config, sql: str) -> tuple:
    store = Store.open(cfg)
    try:
        row = store.one(sql)
        return tuple(row.values()) if row is not None else ()
    finally:
        store.close()


def test_a_badly_typed_write_keeps_the_row_with_its_last_valid_value_on_both_agents(isp: Tenant) -> None:
    a, b = _seeded(isp)
    sb = Store.open(b)
    with sb.transaction():  # a buggy writer at POP B: its events reach A through the cloud
        sb.emit("plan", "spare", "upsert", {"price_minor": 12.5, "rate": "20M/20M"})
        sb.emit("subscriber", "alice", "upsert", {"service": 7, "plan": 12, "name": "Alice W"})
        fold.materialize(sb, "plan", "spare")
        fold.materialize(sb, "subscriber", "alice")
    sb.close()
    sync(a, b)
    for cfg in (a, b):
        # The valid fields of the events applied; the badly typed ones left the earlier values.
        assert _row(cfg, "SELECT price_minor, rate FROM plans WHERE name = 'spare'") == (50000, "20M/20M")
        assert _row(
            cfg,
            "SELECT s.service, p.name AS plan, s.name FROM subscribers s JOIN plans p ON p.id = s.plan_id "
            "WHERE s.username = 'alice'",
        ) == ("pppoe", "home", "Alice W")
    # On A, which received them: the price keeps the clock of its valid write, older than the rate's.
    clock = "(SELECT hlc FROM field_clocks WHERE entity = 'plan' AND key = 'spare' AND field = '{}')"
    assert _row(a, f"SELECT {clock.format('price_minor')} < {clock.format('rate')} AS older") == (1,)
    assert snap(a) == snap(b)


def test_a_badly_typed_payment_neither_displaces_a_valid_one_nor_is_half_inserted(isp: Tenant) -> None:
    a, b = _seeded(isp)
    record = {
        "amount_minor": 150000,
        "currency": "KES",
        "method": "mpesa",
        "received_at": time.time(),
        "recorded_by": "t",
        "reference": "QK7VALID",
        "username": "alice",
    }
    valid = _remote("payment", "QK7VALID", "append", record, offset_ms=5000)
    earlier = _remote("payment", "QK7VALID", "append", {**record, "amount_minor": 12.5}, offset_ms=1000)
    only_bad = _remote("payment", "QK7BAD", "append", {**record, "reference": "QK7BAD", "username": 5}, 1000)
    for cfg, batches in ((a, [[valid], [earlier, only_bad]]), (b, [[only_bad, earlier], [valid]])):
        store = Store.open(cfg)
        for batch in batches:
            fold.apply_events(store, batch)
        assert store.all("SELECT reference, amount_minor FROM payments") == [
            {"reference": "QK7VALID", "amount_minor": 150000}
        ]
        assert fold.pending(store) == []
        store.close()
    assert snap(a) == snap(b)
