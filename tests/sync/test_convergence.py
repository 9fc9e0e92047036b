"""Any delivery order, with duplicates, gives the same state on every agent (hypothesis)."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jasiyo.agent import fold, plans, routers
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import parse
from jasiyo.errors import JasiyoError
from jasiyo.network import Status
from jasiyo.sync.client import RemoteEvent
from tests.support.config import init_agent_store
from tests.support.props import examples
from tests.sync.harness import snapshot

USERS = ("u1", "u2", "u3")
PLANS = ("p1", "p2")

op = st.one_of(
    st.tuples(st.just("plan_add"), st.sampled_from(PLANS), st.integers(1, 9)),
    st.tuples(st.just("plan_price"), st.sampled_from(PLANS), st.integers(1, 9)),
    st.tuples(st.just("sub_add"), st.sampled_from(USERS), st.sampled_from(PLANS)),
    st.tuples(st.just("sub_phone"), st.sampled_from(USERS), st.integers(0, 9)),
    st.tuples(st.just("sub_status"), st.sampled_from(USERS), st.booleans()),
    st.tuples(st.just("sub_password"), st.sampled_from(USERS), st.integers(0, 9)),
    st.tuples(st.just("sub_remove"), st.sampled_from(USERS)),
    st.tuples(st.just("router_add"), st.just("r1"), st.integers(0, 9)),
    st.tuples(st.just("router_remove"), st.just("r1")),
    st.tuples(st.just("exchange")),
)


def _do(store: Store, step: tuple) -> None:
    kind, *args = step
    if kind == "plan_add":
        plans.add(store, plans.build(args[0], rate="5M/5M", price=f"{args[1]}00"), "t")
    elif kind == "plan_price":
        plans.update(store, args[0], "t", price=str(args[1] * 10))
    elif kind == "sub_add":
        subs.add(store, subs.NewSubscriber.build(args[0], password=f"pw-{args[0]}-x", plan=args[1]), "t")
    elif kind == "sub_phone":
        subs.update(store, args[0], "t", phone=f"+25470000000{args[1]}")
    elif kind == "sub_status":
        subs.set_status(
            store, args[0], Status.SUSPENDED if args[1] else Status.ACTIVE, "t", "test", manual=args[1]
        )
    elif kind == "sub_password":
        subs.update(store, args[0], "t", password=f"secret-{args[1]}")
    elif kind == "sub_remove":
        subs.remove(store, args[0], "t")
    elif kind == "router_add":
        routers.add(
            store,
            args[0],
            driver="mikrotik",
            host="10.0.0.1",
            radius_secret=f"radius-secret-{args[1]}",
            actor="t",
        )
    elif kind == "router_remove":
        routers.remove(store, args[0], "t")


def events_of(store: Store) -> list[RemoteEvent]:
    rows = store.all("SELECT * FROM events ORDER BY hlc, id")
    return [
        RemoteEvent(r["id"], r["hlc"], r["origin"], r["entity"], r["key"], r["op"], store.event_data(r))
        for r in rows
    ]


def _store(tmp: Path, name: str) -> Store:
    cfg = parse(f'[agent]\ndata_dir = "{tmp / name}"\n', tmp)
    init_agent_store(cfg)
    return Store.open(cfg)


def _deliver(store: Store, events: list[RemoteEvent], rnd: random.Random) -> None:
    """Shuffled, some duplicated, in batches of random size."""
    stream = events + rnd.sample(events, k=len(events) // 3)
    rnd.shuffle(stream)
    while stream:
        n = rnd.randint(1, 5)
        fold.apply_events(store, stream[:n])
        stream = stream[n:]


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(st.tuples(st.integers(0, 1), op), min_size=1, max_size=25),
    rnd=st.randoms(use_true_random=False),
)
def test_any_order_with_duplicates_converges(steps: list[tuple[int, tuple]], rnd: random.Random) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        a, b, c, d_ = (_store(tmp, n) for n in "abcd")
        try:
            pair = (a, b)
            for who, step in steps:
                if step[0] == "exchange":  # a partial sync mid-way: causal histories mix
                    fold.apply_events(b, events_of(a))
                    fold.apply_events(a, events_of(b))
                    continue
                try:
                    _do(pair[who], step)
                except JasiyoError:
                    pass  # refused locally (no such user, exists already...): no event
            everything = {e.id: e for e in events_of(a) + events_of(b)}
            log = list(everything.values())
            _deliver(c, log, rnd)
            _deliver(d_, log, rnd)
            fold.apply_events(a, events_of(b))
            fold.apply_events(b, events_of(a))
            states = [snapshot(s) for s in (a, b, c, d_)]
            assert states[0] == states[1] == states[2] == states[3]
            assert all(fold.pending(s) == [] for s in (a, b, c, d_))
        finally:
            for s in (a, b, c, d_):
                s.close()


def test_payment_appended_once_even_if_two_pops_record_it(tmp_path: Path) -> None:
    a, b, c = (_store(tmp_path, n) for n in "abc")
    plans.add(a, plans.build("p1", rate="5M/5M", price="100"), "t")
    subs.add(a, subs.NewSubscriber.build("alice", password="pw-alice-1", plan="p1"), "t")
    fold.apply_events(b, events_of(a))
    payment = {
        "reference": "QKX1234ABC",
        "username": "alice",
        "amount_minor": 150000,
        "currency": "KES",
        "method": "mpesa",
        "received_at": 1.0,
        "recorded_by": "t",
    }
    for s in (a, b):  # the same M-Pesa receipt reaches both POPs
        with s.transaction():
            s.emit("payment", "QKX1234ABC", "append", payment)
    log = events_of(a) + events_of(b)
    fold.apply_events(c, log + log)
    fold.apply_events(c, list(reversed(log)))
    assert c.scalar("SELECT count(*) FROM payments") == 1
    assert c.one("SELECT amount_minor, reference FROM payments") == {
        "amount_minor": 150000,
        "reference": "QKX1234ABC",
    }
    for s in (a, b, c):
        s.close()
