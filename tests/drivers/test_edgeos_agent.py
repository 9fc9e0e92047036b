"""`jasiyo router add/check/sync --driver edgeos` against the EdgeOS simulator over SSH,
through the real CLI, the way an engineer drives an EdgeRouter."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from jasiyo.config import Config
from jasiyo.drivers.edgeos.sim import EdgeOSSim
from tests.agent.agentproc import jasiyo
from tests.drivers.test_edgeos import EdgeOSInspector


@pytest.fixture
def sim() -> Iterator[EdgeOSSim]:
    with EdgeOSSim(users={"ubnt": "ssh-pass-1"}) as s:
        yield s


def _add(cfg: Config, sim: EdgeOSSim, *extra: str) -> None:
    jasiyo(
        cfg,
        "router",
        "add",
        "er1",
        "--driver",
        "edgeos",
        "--host",
        "127.0.0.1",
        "--port",
        str(sim.port),
        "--username",
        "ubnt",
        "--password",
        "ssh-pass-1",
        "--radius-secret",
        "testing123",
        *extra,
    )


def test_check_and_sync_with_a_pinned_host_key(cfg: Config, sim: EdgeOSSim) -> None:
    _add(cfg, sim, "--fingerprint", sim.host_key_fingerprint)
    info = json.loads(jasiyo(cfg, "--json", "router", "check", "er1").stdout)
    assert info["reachable"] and info["vendor"] == "edgeos"
    assert info["identity"] == "jasiyo-edgeos" and info["version"].startswith("v2.")

    jasiyo(cfg, "plan", "add", "home", "--rate", "10M/5M", "--price", "1500")
    jasiyo(
        cfg,
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
    jasiyo(cfg, "router", "sync", "er1")
    insp = EdgeOSInspector(sim.state.show_commands, sim.state.hand_edit)
    got = insp.subscriber("shop1")
    assert got is not None and got.rate is not None and not got.suspended
    assert (got.rate.rx, got.rate.tx) == (10_000_000, 5_000_000)

    jasiyo(cfg, "subscriber", "suspend", "shop1", "--reason", "unpaid")
    jasiyo(cfg, "router", "sync", "er1")
    assert insp.subscriber("shop1").suspended

    insp.hand_remove_leaf("shop1", "up-leaf")  # drift by hand
    out = json.loads(jasiyo(cfg, "--json", "router", "sync", "er1").stdout)
    assert len(out["applied"]) == 1
    assert insp.subscriber("shop1").rate is not None


def test_unpinned_router_is_refused_with_advice(cfg: Config, sim: EdgeOSSim) -> None:
    _add(cfg, sim)
    proc = jasiyo(cfg, "router", "check", "er1", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "not pinned" in proc.stderr and sim.host_key_fingerprint in proc.stderr
    assert sim.faults.auth_attempts == 0 and sim.faults.execs == 0


def test_trust_on_first_use_connects(cfg: Config, sim: EdgeOSSim) -> None:
    _add(cfg, sim, "--trust-on-first-use")
    info = json.loads(jasiyo(cfg, "--json", "router", "check", "er1").stdout)
    assert info["reachable"] and info["identity"] == "jasiyo-edgeos"


def test_trust_on_first_use_pins_the_key_then_refuses_a_new_one(cfg: Config, sim: EdgeOSSim) -> None:
    _add(cfg, sim, "--trust-on-first-use")
    jasiyo(cfg, "router", "check", "er1")
    shown = json.loads(jasiyo(cfg, "--json", "router", "show", "er1").stdout)
    assert shown["options"]["fingerprint"] == sim.host_key_fingerprint
    port = sim.port
    sim.stop()
    with EdgeOSSim(users={"ubnt": "ssh-pass-1"}, port=port) as swapped:  # new key, same place
        proc = jasiyo(cfg, "router", "check", "er1", check=False)
        assert proc.returncode == 1 and "does not match the pinned fingerprint" in proc.stderr
        assert swapped.faults.auth_attempts == 0 and swapped.faults.execs == 0


def test_periodic_reconcile_repairs_a_hand_deleted_leaf(cfg: Config, sim: EdgeOSSim) -> None:
    from jasiyo.agent import reconcile
    from jasiyo.agent.store import Store

    _add(cfg, sim, "--fingerprint", sim.host_key_fingerprint)
    jasiyo(cfg, "plan", "add", "home", "--rate", "10M/5M", "--price", "1500")
    jasiyo(
        cfg,
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
    r = reconcile.Reconciler(cfg, lambda: Store.open(cfg))
    r.run_once(now=1000.0)
    insp = EdgeOSInspector(sim.state.show_commands, sim.state.hand_edit)
    assert insp.subscriber("shop1").rate is not None
    insp.hand_remove_leaf("shop1", "down-leaf")
    assert insp.subscriber("shop1").rate is None
    r.run_once(now=2000.0)
    got = insp.subscriber("shop1").rate
    assert got is not None and (got.rx, got.tx) == (10_000_000, 5_000_000)
