"""Events from another agent of the tenant cannot corrupt this agent or halt its sync."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from jasiyo.agent import plans, routers, synclog
from jasiyo.agent import subscribers as subs
from jasiyo.agent.radius_backend import StoreBackend
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import SyncError
from jasiyo.sync.client import RemoteEvent, _check_shape
from jasiyo.sync.ids import uuid7


@pytest.fixture
def seeded(store: Store) -> Iterator[Store]:
    plans.add(store, plans.build("home", rate="10M/10M", price="1500"), "t")
    subs.add(store, subs.NewSubscriber.build("alice", password="alice-pw-1", plan="home"), "t")
    routers.add(store, "r1", driver="mikrotik", host="10.0.0.1", radius_secret="secret-one-1", actor="t")
    yield store


def _remote(store: Store, entity: str, key: str, op: str, data: dict, ahead_ms: int = 0) -> RemoteEvent:
    wall = int(time.time() * 1000) + ahead_ms
    return RemoteEvent(uuid7(), f"{wall + 5000:015d}.000000.other", "other", entity, key, op, data)


def test_derived_columns_cannot_be_set_by_events(cfg: Config, seeded: Store) -> None:
    log = synclog.AgentLog(seeded)
    log.apply(
        [
            _remote(seeded, "router", "r1", "upsert", {"radius_secret_enc": "x"}),
            _remote(
                seeded,
                "subscriber",
                "alice",
                "upsert",
                {"password_enc": "x", "plan_id": 999, "status_changed_at": 1.0},
            ),
        ]
    )
    b = StoreBackend(cfg, seeded.box)
    assert b.warm() == 1 and b.nas("10.0.0.1") is not None  # RADIUS still works
    assert b.subject("alice").password == "alice-pw-1"
    b.close()


def test_wrongly_typed_money_is_dropped_not_stored(seeded: Store) -> None:
    log = synclog.AgentLog(seeded)
    log.apply(
        [
            _remote(seeded, "plan", "home", "upsert", {"price_minor": 1.5}),
            _remote(seeded, "plan", "home", "upsert", {"price_minor": 2**70}),
        ]
    )
    assert seeded.scalar("SELECT typeof(price_minor) || ':' || price_minor FROM plans") == ("integer:150000")


def test_a_clock_far_ahead_or_an_unknown_op_does_not_halt_sync(seeded: Store) -> None:
    log = synclog.AgentLog(seeded)
    log.apply(
        [
            _remote(seeded, "plan", "home", "frobnicate", {}),
            _remote(seeded, "plan", "home", "upsert", {"rate": "20M/20M"}, ahead_ms=3 * 86400 * 1000),
            _remote(
                seeded,
                "plan",
                "p2",
                "upsert",
                {
                    "name": "p2",
                    "rate": "5M/5M",
                    "burst": None,
                    "price_minor": 100,
                    "currency": "KES",
                    "period": "30d",
                    "billing": "prepaid",
                    "grace_days": None,
                    "tax_rate_bp": 0,
                    "quota_bytes": None,
                    "fup_rate": None,
                },
            ),
        ]
    )
    assert seeded.scalar("SELECT rate FROM plans WHERE name = 'home'") == "20M/20M"
    assert seeded.scalar("SELECT count(*) FROM plans WHERE name = 'p2'") == 1
    # our own clock did not jump three days
    assert int(seeded.clock.now().split(".")[0]) < (time.time() + 86400) * 1000


@pytest.mark.parametrize(
    "doc",
    [
        [],
        None,
        {"hlc": 5, "entity": "plan", "key": "k", "op": "upsert", "data": {}},
        {"hlc": "1.0.x", "entity": "plan", "key": ["k"], "op": "upsert", "data": {}},
        {"hlc": "1.0.x", "entity": "plan", "key": "k", "op": "upsert", "data": None},
    ],
)
def test_malformed_pulled_events_are_sync_errors(doc: object) -> None:
    with pytest.raises(SyncError):
        _check_shape(doc)
