"""The conformance suite every router driver must pass (napalm's BaseTestGetters habit).

A vendor joins with a few lines::

    class TestMyDriver(DriverConformance):
        driver_class = MyDriver

        @pytest.fixture
        def router(self, my_simulator) -> RouterUnderTest:
            return RouterUnderTest(config, MyInspector(...), MyFaults(...))

The suite talks to the router only through the driver; it looks at and hand-edits the
router through a :class:`RouterInspector` the vendor writes (by its own path: in-process
simulator state, or a second API/SSH session to a lab router). Fault tests need a
:class:`FaultInjector` and are skipped without one (lab routers).

Subscribers used here are named ``jt-*`` with addresses in 10.255.0.0/16.
"""

from __future__ import annotations

import dataclasses
import inspect
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import pytest

from jasiyo.drivers import get_driver
from jasiyo.drivers.base import AuthError, ConnectError, RouterDriver
from jasiyo.drivers.routerstate import ApplyReport, RouterConfig
from jasiyo.network import Access, DesiredState, Rate, Service


@dataclass(frozen=True)
class SubscriberOnRouter:
    """What the router does for one subscriber, in vendor-neutral terms.

    ``rate``: the rate the router enforces (queue or profile), rx = client upload;
    ``suspended``: the subscriber is in the walled garden (address list / suspended profile);
    ``plan``: the profile name where the router keeps one (api mode), else None.
    """

    rate: Rate | None
    suspended: bool
    disabled: bool = False
    plan: str | None = None


class RouterInspector(Protocol):
    def subscriber(self, username: str) -> SubscriberOnRouter | None:
        """What the router has for ``username``'s managed objects, None if it has none."""

    def hand_remove_rate(self, username: str) -> None:
        """Delete the object enforcing ``username``'s rate (a static queue), as a person."""

    def hand_unsuspend(self, username: str) -> None:
        """Remove ``username``'s address from the suspended list, as a person would."""

    def add_unmanaged(self) -> None:
        """Create objects the agent does not own (untagged queue, list entry, account)."""

    def unmanaged_snapshot(self) -> object:
        """A comparable picture of every untagged object the agent could confuse with its own."""

    def add_session(self, service: Service, username: str, address: str) -> bool:
        """Make ``username`` look connected; False if the router cannot be told to."""

    def cleanup(self) -> None:
        """Remove what the tests created by hand (lab routers)."""


class FaultInjector(Protocol):
    def calls(self) -> int:
        """Commands the router has received so far (its own count)."""

    def refuse_next_change(self, username: str) -> None:
        """Make the router refuse the next command creating ``username``'s rate object."""

    def cut_next_read(self) -> None:
        """Cut the connection in the middle of the reply to the next full read."""

    def cut_after(self, commands: int) -> None:
        """Cut the connection after the router has answered ``commands`` more commands."""

    def clear(self) -> None:
        """Stop injecting faults."""


@dataclass
class RouterUnderTest:
    config: RouterConfig
    inspector: RouterInspector
    faults: FaultInjector | None = None


def static(name: str, n: int, access: Access = Access.ALLOW, rate: str = "10M/5M") -> DesiredState:
    return DesiredState(
        username=name,
        service=Service.STATIC,
        access=access,
        rate_limit=rate,
        plan=rate.split("/")[0],
        ip=f"10.255.{n // 250}.{n % 250 + 1}",
    )


def pppoe(
    name: str, access: Access = Access.ALLOW, plan: str = "jt-10M", rate: str = "10M/10M"
) -> DesiredState:
    return DesiredState(
        username=name, service=Service.PPPOE, access=access, rate_limit=rate, plan=plan, password=f"pw-{name}"
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DriverConformance:
    """Tests every driver passes. Subclass, set ``driver_class``, provide ``router``."""

    driver_class: type[RouterDriver]
    #: Whether the driver keeps PPP accounts on the router (``mode="api"``).
    supports_api_mode: bool = True

    @pytest.fixture
    def router(self) -> RouterUnderTest:
        raise NotImplementedError("subclasses provide the router fixture")

    @pytest.fixture
    def make(self, router: RouterUnderTest) -> Iterator:
        made: list[RouterDriver] = []

        def factory(**overrides: object) -> RouterDriver:
            driver = self.driver_class(dataclasses.replace(router.config, **overrides))
            made.append(driver)
            return driver

        yield factory
        for d in made:
            d.close()
        router.inspector.cleanup()

    @pytest.fixture
    def driver(self, make, router: RouterUnderTest) -> Iterator[RouterDriver]:
        d = make()
        d.open()
        yield d
        if router.faults is not None:
            router.faults.clear()
        d.reconcile([])  # leave the router as we found it
        d.close()

    # ------------------------------------------------------------------ the contract

    def test_found_by_name_and_signatures_match_base(self) -> None:
        assert get_driver(self.driver_class.vendor) is self.driver_class
        for name, member in inspect.getmembers(RouterDriver, inspect.isfunction):
            if name.startswith("_"):
                continue
            ours = getattr(self.driver_class, name)
            assert inspect.signature(ours) == inspect.signature(member), name

    def test_open_facts_and_close(self, make) -> None:
        d = make()
        assert not d.is_alive()
        d.open()
        d.open()  # idempotent
        assert d.is_alive()
        facts = d.facts()
        assert facts.vendor == self.driver_class.vendor
        assert facts.version and facts.identity == d.identity()
        d.close()
        d.close()
        assert not d.is_alive()

    # ------------------------------------------------------------------ lifecycle

    def test_add_suspend_restore_change_remove(self, driver, router) -> None:
        insp = router.inspector
        alice = static("jt-alice", 1)
        report = driver.reconcile([alice])
        assert report.ok and report.applied, report.summary()
        assert insp.subscriber("jt-alice") == SubscriberOnRouter(Rate(10_000_000, 5_000_000), suspended=False)
        driver.reconcile([dataclasses.replace(alice, access=Access.WALLED_GARDEN)])
        assert insp.subscriber("jt-alice").suspended
        driver.reconcile([alice])
        assert not insp.subscriber("jt-alice").suspended
        driver.reconcile([dataclasses.replace(alice, rate_limit="20M/20M", plan="20M")])
        assert insp.subscriber("jt-alice").rate == Rate(20_000_000, 20_000_000)
        report = driver.reconcile([])
        assert report.ok and report.applied
        assert insp.subscriber("jt-alice") is None

    def test_second_reconcile_applies_nothing(self, driver) -> None:
        desired = [static(f"jt-s{i}", i) for i in range(5)]
        desired[2] = dataclasses.replace(desired[2], access=Access.WALLED_GARDEN)
        assert driver.reconcile(desired).ok
        again = driver.reconcile(desired)
        assert again.ok and not again.applied
        assert driver.plan(desired, driver.read()).is_empty

    def test_hand_edits_are_repaired(self, driver, router) -> None:
        insp = router.inspector
        alice = static("jt-alice", 1)
        bob = static("jt-bob", 2, access=Access.WALLED_GARDEN)
        driver.reconcile([alice, bob])
        insp.hand_remove_rate("jt-alice")
        insp.hand_unsuspend("jt-bob")
        assert insp.subscriber("jt-alice") is None or insp.subscriber("jt-alice").rate is None
        assert not insp.subscriber("jt-bob").suspended
        report = driver.reconcile([alice, bob])
        assert report.ok and len(report.applied) == 2, report.summary()
        assert insp.subscriber("jt-alice").rate == Rate(10_000_000, 5_000_000)
        assert insp.subscriber("jt-bob").suspended

    def test_untagged_objects_are_never_touched(self, driver, router) -> None:
        insp = router.inspector
        insp.add_unmanaged()
        before = insp.unmanaged_snapshot()
        desired = [static("jt-alice", 1, access=Access.WALLED_GARDEN), static("jt-bob", 2)]
        driver.reconcile(desired)
        driver.reconcile([dataclasses.replace(d, rate_limit="1M/1M") for d in desired])
        driver.reconcile([])
        assert insp.unmanaged_snapshot() == before

    def test_api_mode_accounts_and_profiles(self, make, router) -> None:
        if not self.supports_api_mode:
            pytest.skip("driver does not keep accounts on the router")
        insp = router.inspector
        d = make(mode="api")
        alice = pppoe("jt-alice")
        assert d.reconcile([alice]).ok
        assert insp.subscriber("jt-alice") == SubscriberOnRouter(
            Rate(10_000_000, 10_000_000), suspended=False, plan="jt-10M"
        )
        d.reconcile([dataclasses.replace(alice, plan="jt-20M", rate_limit="20M/20M")])
        assert insp.subscriber("jt-alice").plan == "jt-20M"
        d.reconcile([dataclasses.replace(alice, access=Access.WALLED_GARDEN, rate_limit="1M")])
        assert insp.subscriber("jt-alice").suspended
        d.reconcile([dataclasses.replace(alice, access=Access.REJECT)])
        assert insp.subscriber("jt-alice").disabled
        accounts = {a.name: a for a in d.list_accounts()}
        assert accounts["jt-alice"].managed and accounts["jt-alice"].password == "pw-jt-alice"
        d.reconcile([])
        assert insp.subscriber("jt-alice") is None

    def test_sessions_listed_and_disconnected(self, driver, router) -> None:
        if not router.inspector.add_session(Service.PPPOE, "jt-alice", "10.255.9.9"):
            pytest.skip("cannot create sessions on this router")
        sessions = [s for s in driver.active_sessions() if s.username == "jt-alice"]
        assert [(s.service, s.address) for s in sessions] == [(Service.PPPOE, "10.255.9.9")]
        assert driver.disconnect("jt-alice") == 1
        assert driver.disconnect("jt-alice") == 0
        assert not [s for s in driver.active_sessions() if s.username == "jt-alice"]

    def test_noop_reconcile_cost_does_not_grow_with_subscribers(self, driver, router) -> None:
        costs = []
        for n in (10, 1000):
            desired = [static(f"jt-n{i}", i) for i in range(n)]
            assert driver.reconcile(desired).ok
            seen = router.faults.calls() if router.faults else 0
            report = driver.reconcile(desired)
            assert report.ok and not report.applied
            counted = router.faults.calls() - seen if router.faults else report.api_calls
            costs.append((report.api_calls, counted))
        assert costs[0] == costs[1], costs
        assert costs[0][0] <= 12

    # ------------------------------------------------------------------ faults

    def test_router_down_is_a_connect_error(self, make) -> None:
        with pytest.raises(ConnectError, match="unreachable|did not answer"):
            make(host="127.0.0.1", port=_closed_port(), timeout=2).open()

    def test_silent_router_times_out(self, make) -> None:
        with socket.socket() as listener:  # accepts TCP, never answers: a hung router
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            d = make(host="127.0.0.1", port=listener.getsockname()[1], timeout=0.5)
            with pytest.raises(ConnectError, match="did not answer|timed out"):
                d.open()

    def test_login_refused_is_an_auth_error(self, make) -> None:
        with pytest.raises(AuthError, match="refused"):
            make(password="definitely-wrong").open()

    def _need_faults(self, router: RouterUnderTest) -> FaultInjector:
        if router.faults is None:
            pytest.skip("no fault injection on this router")
        return router.faults

    def _accounted(self, report: ApplyReport, total: int) -> None:
        n = len(report.applied) + len(report.failed) + len(report.not_attempted)
        assert n == total, report.summary()

    def test_refused_command_mid_batch(self, driver, router) -> None:
        faults = self._need_faults(router)
        desired = [static(f"jt-b{i}", i) for i in range(6)]
        planned = driver.plan(desired, driver.read())
        faults.refuse_next_change("jt-b3")
        report = driver.reconcile(desired)
        assert not report.ok
        assert [f.change.subscriber for f in report.failed] == ["jt-b3"]
        assert "refused" in report.failed[0].error
        self._accounted(report, len(planned.changes))
        assert router.inspector.subscriber("jt-b3") is None
        assert router.inspector.subscriber("jt-b4").rate is not None
        faults.clear()
        again = driver.reconcile(desired)
        assert again.ok and len(again.applied) == 1
        assert router.inspector.subscriber("jt-b3").rate == Rate(10_000_000, 5_000_000)

    def test_connection_cut_during_apply(self, driver, router) -> None:
        faults = self._need_faults(router)
        desired = [static(f"jt-c{i}", i, access=Access.WALLED_GARDEN) for i in range(20)]
        planned = driver.plan(desired, driver.read())
        faults.cut_after(7)
        report = driver.reconcile(desired)
        assert not report.ok and (report.failed or report.not_attempted)
        self._accounted(report, len(planned.changes))
        assert all("connection lost" in f.error for f in report.failed)
        faults.clear()
        again = driver.reconcile(desired)
        assert again.ok, again.summary()
        assert all(router.inspector.subscriber(d.username).suspended for d in desired)
        assert driver.reconcile(desired).applied == ()

    def test_connection_cut_mid_reply(self, driver, router) -> None:
        faults = self._need_faults(router)
        desired = [static(f"jt-r{i}", i) for i in range(30)]
        driver.reconcile(desired)
        faults.cut_next_read()
        with pytest.raises(ConnectError, match="connection lost"):
            driver.read()
        assert not driver.is_alive()
        faults.clear()
        desired[0] = dataclasses.replace(desired[0], rate_limit="3M/3M")
        report = driver.reconcile(desired)
        assert report.ok and len(report.applied) == 1
