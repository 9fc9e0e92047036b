"""`jasiyo router check|sync|import` against the RouterOS simulator over TCP, via librouteros."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from jasiyo.agent import reconcile
from jasiyo.config import Config
from jasiyo.drivers.mikrotik.sim import RouterOSSim
from tests.agent.agentproc import jasiyo


@pytest.fixture
def sim() -> Iterator[RouterOSSim]:
    s = RouterOSSim(users={"jasiyo": "api-pass-1"}).start()
    yield s
    s.stop()


@pytest.fixture
def routed(cfg: Config, sim: RouterOSSim) -> Config:
    jasiyo(
        cfg,
        "router",
        "add",
        "pop1",
        "--driver",
        "mikrotik",
        "--host",
        "127.0.0.1",
        "--port",
        str(sim.port),
        "--username",
        "jasiyo",
        "--password",
        "api-pass-1",
        "--radius-secret",
        "testing123",
    )
    jasiyo(cfg, "plan", "add", "home", "--rate", "10M/10M", "--price", "1500")
    return cfg


def test_check_reports_identity_and_version(routed: Config) -> None:
    info = json.loads(jasiyo(routed, "--json", "router", "check", "pop1").stdout)
    assert info["reachable"] and info["identity"] == "jasiyo-sim"
    assert info["version"].startswith("7.16")


def test_sync_suspends_restores_and_repairs_drift(routed: Config, sim: RouterOSSim) -> None:
    jasiyo(
        routed,
        "subscriber",
        "add",
        "shop1",
        "--plan",
        "home",
        "--password",
        "pw",
        "--service",
        "static",
        "--ip",
        "100.64.1.10",
    )
    dry = json.loads(jasiyo(routed, "--json", "router", "sync", "pop1", "--dry-run").stdout)
    assert any(c["kind"] == "queue" and c["action"] == "add" for c in dry)
    assert sim.state.items("/queue/simple") == []  # dry run applied nothing

    jasiyo(routed, "router", "sync", "pop1")
    (queue,) = sim.state.items("/queue/simple")
    assert queue["target"].startswith("100.64.1.10") and queue["max-limit"] == "10000000/10000000"

    jasiyo(routed, "subscriber", "suspend", "shop1", "--reason", "unpaid")
    jasiyo(routed, "router", "sync", "pop1")
    listed = sim.state.items("/ip/firewall/address-list", list="jasiyo-suspended")
    assert [e["address"] for e in listed] == ["100.64.1.10"]

    sim.state.remove_where("/ip/firewall/address-list", list="jasiyo-suspended")  # hand edit
    out = json.loads(jasiyo(routed, "--json", "router", "sync", "pop1").stdout)
    assert len(out["applied"]) == 1
    assert sim.state.items("/ip/firewall/address-list", list="jasiyo-suspended")

    jasiyo(routed, "subscriber", "resume", "shop1")
    jasiyo(routed, "router", "sync", "pop1")
    assert sim.state.items("/ip/firewall/address-list", list="jasiyo-suspended") == []


def test_unreachable_router_is_a_clear_error_and_backs_off(routed: Config, sim: RouterOSSim) -> None:
    sim.stop()
    proc = jasiyo(routed, "router", "check", "pop1", check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr
    r = reconcile.Reconciler(routed, lambda: __import__("jasiyo.agent.store").agent.store.Store.open(routed))
    first = r.run_once(now=1000.0)
    assert first["pop1"].startswith("unreachable")
    assert r.run_once(now=1000.1)["pop1"] == "backing off"


@pytest.mark.slow
def test_import_1000_secrets_then_reimport_changes_nothing(routed: Config, sim: RouterOSSim) -> None:
    jasiyo(routed, "plan", "add", "gold", "--rate", "50M/50M", "--price", "5000")
    for i in range(1000):
        sim.state.add(
            "/ppp/secret",
            name=f"cust{i:04d}",
            password=f"secret-{i}",
            profile="home" if i % 2 else "gold-profile",
            service="pppoe",
        )
    bad = jasiyo(routed, "router", "import", "pop1", check=False)
    assert bad.returncode == 1 and "gold-profile" in bad.stderr
    out = json.loads(
        jasiyo(routed, "--json", "router", "import", "pop1", "--map", "gold-profile=gold").stdout
    )
    assert out["created"] == 1000
    subs = json.loads(jasiyo(routed, "--json", "subscriber", "list", "--limit", "5000").stdout)
    plans = {s["username"]: s["plan"] for s in subs}
    assert len(plans) == 1000 and plans["cust0001"] == "home" and plans["cust0002"] == "gold"
    again = json.loads(
        jasiyo(routed, "--json", "router", "import", "pop1", "--map", "gold-profile=gold").stdout
    )
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 1000)


def test_import_lets_reconcile_adopt_the_imported_accounts(routed: Config, sim: RouterOSSim) -> None:
    sim.state.add("/ppp/secret", name="old1", password="pw-old1", profile="home", service="pppoe")
    jasiyo(routed, "router", "import", "pop1")
    shown = json.loads(jasiyo(routed, "--json", "router", "show", "pop1").stdout)
    assert shown["options"]["adopt_existing"] is True


def test_import_names_changes_and_never_overwrites_a_password_unless_asked(
    routed: Config,
    sim: RouterOSSim,
) -> None:
    jasiyo(routed, "subscriber", "add", "kamau", "--plan", "home", "--password", "ours")
    sim.state.add("/ppp/secret", name="kamau", password="routers", profile="home", service="pppoe")
    sim.state.add("/ppp/secret", name="new1", password="pw-new1", profile="home", service="pppoe")
    dry = jasiyo(routed, "router", "import", "pop1", "--dry-run").stdout
    assert "would import" in dry and "new1: created on plan home" in dry
    assert (
        json.loads(jasiyo(routed, "--json", "subscriber", "list").stdout)[0]["username"] == "kamau"
    )  # the dry run created nobody
    out = json.loads(jasiyo(routed, "--json", "router", "import", "pop1").stdout)
    assert (out["created"], out["updated"], out["unchanged"]) == (1, 0, 1)
    assert "kamau: password differs, kept (--update-passwords replaces it)" in out["changes"]
    out = json.loads(jasiyo(routed, "--json", "router", "import", "pop1", "--update-passwords").stdout)
    assert out["changes"] == ["kamau: password replaced"] and out["updated"] == 1


def test_import_from_an_edgerouter_says_it_cannot(cfg: Config) -> None:
    jasiyo(
        cfg,
        "router",
        "add",
        "er1",
        "--driver",
        "edgeos",
        "--host",
        "127.0.0.1",
        "--radius-secret",
        "testing123",
        "--username",
        "ubnt",
        "--password",
        "ubnt-pass",
    )
    proc = jasiyo(cfg, "router", "import", "er1", check=False)
    assert proc.returncode == 1 and "EdgeRouter" in proc.stderr
    assert "jasiyo subscriber import FILE" in proc.stderr
