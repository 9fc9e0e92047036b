"""MikroTik-specific behaviour beyond the conformance suite: TLS refusals, conflicts with
untagged objects, adoption, import listing, walled-garden rules, burst queues, timeouts."""

from __future__ import annotations

import dataclasses
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jasiyo.drivers import Backoff, get_driver
from jasiyo.drivers.base import AuthError, ConnectError
from jasiyo.drivers.mikrotik import MikrotikDriver
from jasiyo.drivers.mikrotik.connection import PIPELINE_WINDOW
from jasiyo.drivers.mikrotik.sim import RouterOSSim
from jasiyo.drivers.routerstate import Action, RouterConfig
from jasiyo.errors import ConfigError, ValidationError
from jasiyo.network import Access, Service
from tests.drivers.conformance import pppoe, static
from tests.drivers.mikrotik_support import fingerprint, self_signed

USERS = {"jasiyo": "pw"}


@pytest.fixture
def sim() -> Iterator[RouterOSSim]:
    with RouterOSSim(users=USERS) as s:
        yield s


def cfg(sim: RouterOSSim, **kw: object) -> RouterConfig:
    args: dict = {"timeout": 5, **kw}
    return RouterConfig(host="127.0.0.1", port=sim.port, username="jasiyo", password="pw", **args)


@pytest.fixture
def tls_sim(tmp_path: Path) -> Iterator[tuple[RouterOSSim, Path]]:
    cert, key = self_signed(tmp_path)
    with RouterOSSim(users=USERS, certfile=str(cert), keyfile=str(key)) as s:
        yield s, cert


def test_get_driver_by_name_and_refuses_unknown() -> None:
    assert get_driver("MikroTik") is MikrotikDriver
    assert get_driver("routeros") is MikrotikDriver
    with pytest.raises(ConfigError, match="unknown router driver 'cisco'.*mikrotik"):
        get_driver("cisco")


def test_untrusted_certificate_is_refused(tls_sim) -> None:
    sim, _ = tls_sim
    with pytest.raises(ConnectError, match="not trusted"):
        MikrotikDriver(cfg(sim, tls=True)).open()


def test_wrong_pin_is_refused(tls_sim, tmp_path: Path) -> None:
    sim, cert = tls_sim
    other = self_signed(tmp_path / "..")[0]  # a different certificate's fingerprint
    assert fingerprint(other) != fingerprint(cert)
    with pytest.raises(ConnectError, match="fingerprint"):
        MikrotikDriver(cfg(sim, tls=True, fingerprint=fingerprint(other))).open()


def test_plain_client_against_api_ssl_fails_cleanly(tls_sim) -> None:
    sim, _ = tls_sim
    with pytest.raises(ConnectError):
        MikrotikDriver(cfg(sim, timeout=2)).open()


def test_slow_router_past_timeout_is_a_connect_error(sim) -> None:
    sim.faults.latency_s = 1.0
    with pytest.raises(ConnectError, match="did not answer within 0.2 s"):
        MikrotikDriver(cfg(sim, timeout=0.2)).open()


def test_login_refused_names_the_user(sim) -> None:
    with pytest.raises(AuthError, match="'jasiyo'"):
        MikrotikDriver(dataclasses.replace(cfg(sim), password="nope")).open()


def test_untagged_account_is_a_conflict_then_adopted(sim) -> None:
    sim.state.add("/ppp/secret", name="jt-alice", password="old", profile="default")
    with MikrotikDriver(cfg(sim, mode="api")) as d:
        report = d.reconcile([pppoe("jt-alice")])
        assert [c.key for c in report.conflicts] == ["jt-alice"]
        assert "untagged" in report.conflicts[0].reason and not report.ok
        assert sim.state.items("/ppp/secret", name="jt-alice")[0]["password"] == "old"
    with MikrotikDriver(cfg(sim, mode="api", adopt_existing=True)) as d:
        report = d.reconcile([pppoe("jt-alice")])
        assert report.ok
        secret = sim.state.items("/ppp/secret", name="jt-alice")[0]
        assert (secret["comment"], secret["password"], secret["profile"]) == (
            "jasiyo:sub=jt-alice",
            "pw-jt-alice",
            "jt-10M",
        )
        assert d.reconcile([pppoe("jt-alice")]).applied == ()


def test_list_accounts_for_import(sim) -> None:
    for i in range(1000):
        sim.state.add(
            "/ppp/secret",
            name=f"cust{i}",
            password=f"p{i:03d}",
            profile="10M" if i % 2 else "5M",
            remote_address=f"10.9.{i // 250}.{i % 250}",
        )
    sim.state.add("/ip/hotspot/user", name="guest", password="007", disabled="yes")
    with MikrotikDriver(cfg(sim)) as d:
        before = sim.stats.sentences
        accounts = {a.name: a for a in d.list_accounts()}
        assert sim.stats.sentences - before == 2
    assert len(accounts) == 1001
    assert (accounts["cust7"].profile, accounts["cust7"].password) == ("10M", "p007")
    assert accounts["cust7"].remote_address == "10.9.0.7" and not accounts["cust7"].managed
    assert accounts["guest"].service == Service.HOTSPOT and accounts["guest"].disabled
    assert accounts["guest"].password == "007"  # not cast to 7 on the way in


def test_walled_garden_rules_follow_the_pay_page(sim) -> None:
    with MikrotikDriver(cfg(sim, pay_page="10.200.0.1")) as d:
        d.reconcile([])
        rules = sim.state.items("/ip/firewall/filter")
        # DNS and the pay page are accepted before the drop (accepts must come first).
        assert [(r["action"], r.get("protocol", ""), r.get("dst-port", "")) for r in rules] == [
            ("accept", "", ""),
            ("accept", "udp", "53"),
            ("accept", "tcp", "53"),
            ("drop", "", ""),
        ]
        assert sim.state.items("/ip/firewall/nat")[0]["to-addresses"] == "10.200.0.1"
    with MikrotikDriver(cfg(sim, pay_page="10.200.0.2")) as d:
        report = d.reconcile([])
        assert {c.action for c in report.applied} == {Action.UPDATE}
        assert sim.state.items("/ip/firewall/nat")[0]["to-addresses"] == "10.200.0.2"
    with MikrotikDriver(cfg(sim)) as d:  # no pay page: drop only
        d.reconcile([])
        assert sim.state.items("/ip/firewall/nat") == []
        assert [r["action"] for r in sim.state.items("/ip/firewall/filter")] == ["drop"]


def test_hotspot_walled_garden_lets_devices_reach_the_portal_and_payment_pages(sim) -> None:
    opts = {"portal_url": "http://10.5.50.2:8080", "payment_hosts": "checkout.paystack.com"}
    with MikrotikDriver(cfg(sim, options=opts)) as d:
        assert d.reconcile([]).ok
        hosts = sorted(r["dst-host"] for r in sim.state.items("/ip/hotspot/walled-garden"))
        assert hosts == ["10.5.50.2", "checkout.paystack.com"]
        (ip,) = sim.state.items("/ip/hotspot/walled-garden/ip")
        assert (ip["dst-address"], ip["action"]) == ("10.5.50.2", "accept")
        files = {f["name"]: f["contents"] for f in sim.state.items("/file")}
        assert 'action="http://10.5.50.2:8080/hotspot"' in files["hotspot/login.html"]
        assert "hotspot/alogin.html" in files
        assert d.reconcile([]).applied == ()  # converged
        sim.state.update_where("/file", {"name": "hotspot/login.html"}, contents="hand edit")
        (fixed,) = d.reconcile([]).applied
        assert (fixed.kind, fixed.key) == ("hotspot-file", "hotspot/login.html")
    with MikrotikDriver(cfg(sim, options={"portal_url": "http://portal.isp.example"})) as d:
        assert d.reconcile([]).ok
        assert [r["dst-host"] for r in sim.state.items("/ip/hotspot/walled-garden")] == ["portal.isp.example"]
        assert sim.state.items("/ip/hotspot/walled-garden/ip") == []
    with MikrotikDriver(cfg(sim)) as d:  # no portal: the entries go
        assert d.reconcile([]).ok
        assert sim.state.items("/ip/hotspot/walled-garden") == []


def test_burst_rate_becomes_queue_fields_and_stays_stable(sim) -> None:
    alice = static("jt-alice", 1, rate="10M/10M 20M/20M 8M/8M 16/16 8 2M/2M")
    with MikrotikDriver(cfg(sim)) as d:
        assert d.reconcile([alice]).ok
        q = sim.state.items("/queue/simple", name="jt-alice")[0]
        assert (
            q["max-limit"],
            q["burst-limit"],
            q["burst-threshold"],
            q["burst-time"],
            q["limit-at"],
            q["target"],
        ) == (
            "10000000/10000000",
            "20000000/20000000",
            "8000000/8000000",
            "16s/16s",
            "2000000/2000000",
            "10.255.0.2/32",
        )
        assert d.reconcile([alice]).applied == ()


def test_bad_desired_state_is_rejected_before_anything_is_sent(sim) -> None:
    with MikrotikDriver(cfg(sim)) as d:
        current = d.read()
        sent = sim.stats.sentences
        with pytest.raises(ValidationError, match="bad rate"):
            d.plan([static("jt-a", 1, rate="fast")], current)
        with pytest.raises(ValidationError, match="no IP"):
            d.plan([dataclasses.replace(static("jt-a", 1), ip=None)], current)
        with pytest.raises(ValidationError, match="twice"):
            d.plan([static("jt-a", 1), static("jt-a", 2)], current)
        assert sim.stats.sentences == sent


def test_stale_plan_reports_routeros_duplicate_error(sim) -> None:
    with MikrotikDriver(cfg(sim, mode="api")) as d:
        diff = d.plan([pppoe("jt-bob")], d.read())
        sim.state.add("/ppp/secret", name="jt-bob", password="x")  # someone was quicker
        report = d.apply(diff)
        failed = {f.change.kind: f.error for f in report.failed}
        assert "secret with the same name already exists" in failed["ppp-secret"]
        assert any(c.kind == "ppp-profile" for c in report.applied)


def test_hotspot_session_disconnect(sim) -> None:
    sim.state.add_session("hotspot", "jt-guest", "10.5.0.9")
    sim.state.add_session("pppoe", "jt-other", "10.5.0.10")
    with MikrotikDriver(cfg(sim)) as d:
        assert d.disconnect("jt-guest") == 1
        assert [s.username for s in d.active_sessions()] == ["jt-other"]


def test_reconcile_reconnects_after_router_reboot(sim) -> None:
    d = MikrotikDriver(cfg(sim))
    assert d.reconcile([static("jt-a", 1)]).ok
    sim.drop_connections()  # reboot: the old connection is dead, the router is back
    report = d.reconcile([static("jt-a", 1), static("jt-b", 2)])
    assert report.ok and len(report.applied) == 1
    d.close()


def test_backoff_grows_with_jitter_caps_and_resets() -> None:
    b = Backoff(base_s=5, max_s=60, rng=random.Random(1))
    assert b.due(now=0)
    waits = [b.failure(now=100) for _ in range(6)]
    for n, wait in enumerate(waits, start=1):
        ceiling = min(60, 5 * 2 ** (n - 1))
        assert ceiling / 2 <= wait <= ceiling
    assert not b.due(now=100) and b.due(now=100 + waits[-1])
    b.success()
    assert b.delay() == 0 and b.due(now=0)


def test_dev_routeros_sim_command_serves_the_api(tmp_path: Path) -> None:
    code = "from jasiyo.commands.dev import app; app()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "routeros-sim", "--port", "0", "--password", "pw", "--identity", "pop9"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        port = int(line.split("127.0.0.1:")[1].split(",")[0])
        config = RouterConfig(host="127.0.0.1", port=port, username="admin", password="pw")
        with MikrotikDriver(config) as d:
            assert d.identity() == "pop9"
            assert d.reconcile([static("jt-a", 1, access=Access.WALLED_GARDEN)]).ok
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


def test_long_values_survive_every_length_prefix(sim) -> None:
    long_comment = "note " * 4000  # 20,000 bytes: a 3-byte length prefix
    sim.state.add("/ppp/secret", name="jt-long", password="p" * 200, comment=long_comment)
    sim.state.add("/ppp/secret", name="jt-ünï", password="pässwörd")
    with MikrotikDriver(cfg(sim)) as d:
        accounts = {a.name: a for a in d.list_accounts()}
        assert d.is_alive()  # the stream is still in step after the long words
    assert accounts["jt-long"].comment == long_comment
    assert accounts["jt-long"].password == "p" * 200
    assert accounts["jt-ünï"].password == "pässwörd"


def test_readded_pay_page_rule_goes_back_above_the_drop(sim) -> None:
    with MikrotikDriver(cfg(sim, pay_page="10.200.0.1")) as d:
        d.reconcile([])
        sim.state.add("/ip/firewall/filter", chain="forward", action="accept", comment="hand rule")
        sim.state.remove_where("/ip/firewall/filter", comment="jasiyo:wg=allow-pay-page")
        assert d.reconcile([]).ok
        rules = [(r["action"], r["comment"]) for r in sim.state.items("/ip/firewall/filter")]
        assert rules == [
            ("accept", "jasiyo:wg=allow-dns-udp"),
            ("accept", "jasiyo:wg=allow-dns-tcp"),
            ("accept", "jasiyo:wg=allow-pay-page"),
            ("drop", "jasiyo:wg=drop"),
            ("accept", "hand rule"),
        ]


def test_suspended_customers_swapping_addresses_converge_in_one_pass(sim) -> None:
    a = dataclasses.replace(static("jt-a", 1), access=Access.WALLED_GARDEN, ip="10.255.7.1")
    b = dataclasses.replace(static("jt-b", 2), access=Access.WALLED_GARDEN, ip="10.255.7.2")
    with MikrotikDriver(cfg(sim)) as d:
        assert d.reconcile([a, b]).ok
        swapped = [dataclasses.replace(a, ip=b.ip), dataclasses.replace(b, ip=a.ip)]
        report = d.reconcile(swapped)
        assert report.ok, report.summary()
        entries = {e["comment"]: e["address"] for e in sim.state.items("/ip/firewall/address-list")}
        assert entries == {"jasiyo:sub=jt-a": "10.255.7.2", "jasiyo:sub=jt-b": "10.255.7.1"}


def test_router_down_then_back(sim) -> None:
    desired = [static("jt-a", 1), static("jt-b", 2, access=Access.WALLED_GARDEN)]
    d = MikrotikDriver(cfg(sim, timeout=2))
    assert d.reconcile(desired[:1]).ok
    sim.stop()
    with pytest.raises(ConnectError):
        d.reconcile(desired)
    assert not d.is_alive()
    backoff = Backoff(base_s=1, rng=random.Random(0))
    assert 0.5 <= backoff.failure(now=0) <= 1
    sim.start()  # same port
    report = d.reconcile(desired)
    assert report.ok and len(report.applied) == 2  # b's queue and list entry
    backoff.success()
    d.close()


def _cut_batch(sim: RouterOSSim, desired: list, answered: int):
    """Reconcile ``desired`` with the connection cut once the router has answered the read
    and then ``answered`` more commands; return (planned changes, report, queue names on the
    router). The read's cost is counted, not assumed."""
    with MikrotikDriver(cfg(sim)) as d:
        current = d.read()
        planned = d.plan(desired, current).changes
        sim.faults.cut_after = current.api_calls + answered
        report = d.reconcile(desired)
    sim.faults.clear()
    on_router = {q["name"] for q in sim.state.items("/queue/simple")}
    # The contract: every planned change is in exactly one of the three outcomes.
    outcomes = [*report.applied, *(f.change for f in report.failed), *report.not_attempted]
    assert len({id(c) for c in outcomes}) == len(outcomes)
    assert {(c.kind, c.key) for c in outcomes} == {(c.kind, c.key) for c in planned}
    assert len(outcomes) == len(planned) == 401  # 400 queues + the walled-garden drop rule
    return planned, report, on_router


def test_cut_in_a_large_batch_separates_unknown_from_unsent(sim) -> None:
    desired = [static(f"jt-{i}", i) for i in range(400)]
    _, report, on_router = _cut_batch(sim, desired, answered=100)
    assert len(on_router) == 100  # the router ran exactly 100 adds before the cut
    # The router's answers to those 100 may be lost with the connection (a cut with commands
    # still unread resets TCP, which discards replies not yet read), so the driver can only
    # claim what it saw confirmed: never more, and each of those is really there.
    assert len(report.applied) <= 100
    assert {c.key for c in report.applied} <= on_router
    # Written but unanswered: unknown, and said so.
    assert report.failed and all("may or may not" in f.error for f in report.failed)
    assert len(report.applied) + len(report.failed) <= PIPELINE_WINDOW
    # The next window and the filter phase were never written: not attempted, not on the router.
    assert len(report.not_attempted) >= 400 - PIPELINE_WINDOW + 1
    assert not {c.key for c in report.not_attempted} & on_router
    with MikrotikDriver(cfg(sim)) as d:
        again = d.reconcile(desired)
        assert again.ok and len(again.applied) == 301


def test_cut_between_windows_reports_every_confirmed_change_applied(sim) -> None:
    # The cut comes when the second window's first command arrives: every reply to the first
    # window has been read by then, so all of them must be reported applied.
    desired = [static(f"jt-{i}", i) for i in range(400)]
    _, report, on_router = _cut_batch(sim, desired, answered=PIPELINE_WINDOW)
    assert len(on_router) == PIPELINE_WINDOW
    assert {c.key for c in report.applied} == on_router
    assert len(report.failed) + len(report.not_attempted) == 400 - PIPELINE_WINDOW + 1
    assert all("may or may not" in f.error for f in report.failed)
    assert not {f.change.key for f in report.failed} & on_router
    with MikrotikDriver(cfg(sim)) as d:
        assert d.reconcile(desired).ok and len(sim.state.items("/queue/simple")) == 400
