"""Convergence and concurrency of the MikroTik driver against the simulator over TCP:
random sequences of desired states always converge in one reconcile, and one driver shared
by several threads never interleaves commands on its connection."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jasiyo.drivers.mikrotik import MikrotikDriver
from jasiyo.drivers.mikrotik.sim import RouterOSSim
from jasiyo.drivers.mikrotik.simstate import RouterOSState
from jasiyo.drivers.routerstate import RouterConfig
from jasiyo.network import Access, DesiredState, Service
from tests.support.props import examples

NAMES = [f"jt-{c}" for c in "abcdefgh"]
RATES = ["5M/5M", "10M/2M", "20M/20M 40M/40M 10M/10M 8/8", "512k/512k"]


@st.composite
def desired_sets(draw: st.DrawFn) -> list[DesiredState]:
    out = []
    for i, name in enumerate(draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=6))):
        service = draw(st.sampled_from(list(Service)))
        rate = draw(st.sampled_from(RATES))
        has_ip = service == Service.STATIC or draw(st.booleans())
        out.append(
            DesiredState(
                username=name,
                service=service,
                access=draw(st.sampled_from(list(Access))),
                rate_limit=rate,
                plan=f"plan-{RATES.index(rate)}",
                ip=f"10.255.1.{i + draw(st.integers(1, 3)) * 10}" if has_ip else None,
                password=draw(st.sampled_from(["a", "b", None])),
            )
        )
    return out


@pytest.fixture(scope="module")
def sim() -> Iterator[RouterOSSim]:
    with RouterOSSim(users={"u": "p"}, state=RouterOSState(version="7.18 (stable)")) as s:
        yield s


@pytest.mark.slow
@settings(
    max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(desired_sets(), min_size=1, max_size=4), mode=st.sampled_from(["api", "radius"]))
def test_any_sequence_converges_in_one_reconcile(sim, steps, mode) -> None:
    config = RouterConfig(
        host="127.0.0.1", port=sim.port, username="u", password="p", mode=mode, pay_page="10.200.0.1"
    )
    with MikrotikDriver(config) as d:
        for desired in steps:
            report = d.reconcile(desired)
            assert report.ok, report.summary()
            assert d.plan(desired, d.read()).is_empty
        d.reconcile([])
    tagged = [
        i
        for menu in ("/ppp/secret", "/queue/simple", "/ip/firewall/address-list")
        for i in sim.state.items(menu)
        if i.get("comment", "").startswith("jasiyo:sub=")
    ]
    assert tagged == []


def test_one_driver_shared_by_threads(sim) -> None:
    config = RouterConfig(host="127.0.0.1", port=sim.port, username="u", password="p")
    desired = [
        DesiredState(f"jt-t{i}", Service.STATIC, Access.ALLOW, "1M/1M", "1M", ip=f"10.255.2.{i + 1}")
        for i in range(20)
    ]
    errors: list[BaseException] = []
    with MikrotikDriver(config) as d:

        def worker(n: int) -> None:
            try:
                for _ in range(15):
                    if n % 2:
                        assert d.reconcile(desired).ok
                    else:
                        assert d.identity() == "jasiyo-sim"
                        d.active_sessions()
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        assert d.reconcile(desired).applied == ()
        d.reconcile([])
