"""EdgeOS-specific behaviour over real SSH to the simulator: all-or-nothing batches, host
key pinning, drift repair, ownership, skipped subscribers, key login."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from jasiyo.drivers.edgeos import EdgeOSDriver
from jasiyo.drivers.edgeos.sim import EdgeOSSim
from jasiyo.drivers.routerstate import Action
from jasiyo.errors import AuthError, CommandError, ConfigError, ConnectError
from jasiyo.network import Access, DesiredState, Rate, Service
from tests.drivers.conformance import static
from tests.drivers.test_edgeos import USERS, EdgeOSInspector, shaper_parts, sim_config


@pytest.fixture
def sim() -> Iterator[EdgeOSSim]:
    with EdgeOSSim(users=USERS) as s:
        yield s


@pytest.fixture
def driver(sim: EdgeOSSim) -> Iterator[EdgeOSDriver]:
    d = EdgeOSDriver(sim_config(sim))
    d.open()
    yield d
    d.close()


def inspector(sim: EdgeOSSim) -> EdgeOSInspector:
    return EdgeOSInspector(sim.state.show_commands, sim.state.hand_edit)


# ---------------------------------------------------------------------- batches


def test_commit_failure_mid_batch_changes_nothing_and_names_commit(sim, driver) -> None:
    driver.reconcile([static("jt-a", 1)])
    before = sim.state.show_commands()
    sim.faults.fail_commits = 1
    desired = [static("jt-a", 1, rate="20M/20M"), static("jt-b", 2, access=Access.WALLED_GARDEN)]
    report = driver.reconcile(desired)
    assert report.failed and not report.applied
    assert all("refused 'commit'" in f.error and "Commit failed" in f.error for f in report.failed)
    assert sim.state.show_commands() == before
    # The router is usable afterwards: the same reconcile now lands.
    assert driver.reconcile(desired).ok
    assert inspector(sim).subscriber("jt-b").suspended


def test_run_batch_stops_at_the_refused_command(sim, driver) -> None:
    before = sim.state.show_commands()
    with pytest.raises(CommandError, match=r"refused 'set firewall bogus 1'.*is not valid") as ei:
        driver.run_batch(
            [
                "set system host-name changed-by-batch",
                "set firewall bogus 1",
                "set system host-name never-reached",
            ]
        )
    assert ei.value.command == "set firewall bogus 1"
    assert sim.state.show_commands() == before
    assert driver.identity() == "jasiyo-edgeos"


def test_run_batch_commits_and_saves(sim, driver) -> None:
    driver.run_batch(["set system host-name pop7-er4"])
    assert driver.identity() == "pop7-er4"
    assert sim.state.saved == sim.state.committed


def test_commit_check_failure_names_commit(sim, driver) -> None:
    with pytest.raises(CommandError, match="Parent queue 77 does not exist") as ei:
        driver.run_batch(
            [
                "set traffic-control advanced-queue leaf queue 5 bandwidth 1mbit",
                "set traffic-control advanced-queue leaf queue 5 parent 77",
            ]
        )
    assert ei.value.command == "commit"


# ---------------------------------------------------------------------- host keys


def test_changed_host_key_is_refused_before_anything_is_sent(sim) -> None:
    pinned = sim.host_key_fingerprint
    with EdgeOSSim(users=USERS) as impostor:  # same address, new key: a swapped router
        d = EdgeOSDriver(sim_config(impostor, fingerprint=pinned))
        with pytest.raises(ConnectError, match="does not match the pinned fingerprint") as ei:
            d.open()
        assert impostor.host_key_fingerprint in str(ei.value)
        assert "nothing was sent" in str(ei.value)
        assert impostor.faults.auth_attempts == 0  # not even the password
        assert impostor.faults.execs == 0
        assert not d.is_alive()


def test_known_hosts_file_is_honoured(sim, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    keys = paramiko.HostKeys()
    keys.add(f"[127.0.0.1]:{sim.port}", sim.host_key.get_name(), sim.host_key)
    keys.save(str(known))
    d = EdgeOSDriver(sim_config(sim, fingerprint=None, options={"known_hosts": str(known)}))
    d.open()
    assert d.is_alive()
    d.close()
    with EdgeOSSim(users=USERS) as other:
        keys.add(f"[127.0.0.1]:{other.port}", sim.host_key.get_name(), sim.host_key)
        keys.save(str(known))
        d2 = EdgeOSDriver(sim_config(other, fingerprint=None, options={"known_hosts": str(known)}))
        with pytest.raises(ConnectError, match="does not match the pinned key in"):
            d2.open()
        assert other.faults.auth_attempts == 0 and other.faults.execs == 0


def test_unpinned_key_is_refused_unless_trust_on_first_use(sim) -> None:
    d = EdgeOSDriver(sim_config(sim, fingerprint=None))
    with pytest.raises(ConnectError, match="not pinned.*--trust-on-first-use"):
        d.open()
    assert sim.faults.auth_attempts == 0
    tofu = EdgeOSDriver(sim_config(sim, fingerprint=None, options={"trust_on_first_use": "True"}))
    tofu.open()
    assert tofu.learned_host_key == sim.host_key_fingerprint
    tofu.close()
    tofu.open()  # the same key again: fine
    tofu.close()
    # Pinning what was learned works on a fresh driver.
    pinned = EdgeOSDriver(sim_config(sim, fingerprint=tofu.learned_host_key))
    pinned.open()
    pinned.close()


def test_key_learned_on_first_use_is_then_enforced(sim) -> None:
    d = EdgeOSDriver(sim_config(sim, fingerprint=None, options={"trust_on_first_use": "1"}))
    d.open()
    d.close()
    with EdgeOSSim(users=USERS) as impostor:
        d.config = sim_config(impostor, fingerprint=None, options={"trust_on_first_use": "1"})
        with pytest.raises(ConnectError, match="learned at first use"):
            d.open()
        assert impostor.faults.auth_attempts == 0


def test_bad_pin_text_is_a_clear_error(sim) -> None:
    with pytest.raises(ConnectError, match="not a SHA-256 fingerprint"):
        EdgeOSDriver(sim_config(sim, fingerprint="SHA256:tooshort")).open()


# ---------------------------------------------------------------------- login


def test_public_key_login(tmp_path: Path) -> None:
    key = paramiko.ECDSAKey.generate()
    key_file = tmp_path / "id_ecdsa"
    key.write_private_key_file(str(key_file))
    with EdgeOSSim(users={}, authorized_keys={"ops": [key]}) as s:
        d = EdgeOSDriver(sim_config(s, username="ops", password="", options={"key_file": str(key_file)}))
        d.open()
        assert d.identity() == "jasiyo-edgeos"
        d.close()
        other = tmp_path / "other"
        paramiko.ECDSAKey.generate().write_private_key_file(str(other))
        with pytest.raises(AuthError, match="refused the login for 'ops'"):
            EdgeOSDriver(sim_config(s, username="ops", password="", options={"key_file": str(other)})).open()


def test_api_mode_is_refused_at_construction(sim) -> None:
    with pytest.raises(ConfigError, match="mode='radius' only"):
        EdgeOSDriver(sim_config(sim, mode="api"))


# ---------------------------------------------------------------------- reconcile


def test_leaf_queue_deleted_by_hand_is_repaired(sim, driver) -> None:
    insp = inspector(sim)
    alice, bob = static("jt-alice", 1), static("jt-bob", 2, rate="4M/2M")
    driver.reconcile([alice, bob])
    insp.hand_remove_leaf("jt-alice", "down-leaf")
    assert insp.subscriber("jt-alice").rate is None
    report = driver.reconcile([alice, bob])
    assert report.ok, report.summary()
    assert [(c.action, c.kind, c.key) for c in report.applied] == [(Action.UPDATE, "shaper", "jt-alice")]
    assert insp.subscriber("jt-alice").rate == Rate(10_000_000, 5_000_000)
    parts = shaper_parts(insp.tree(), "jt-alice")
    down_leaf = parts["down-leaf"][0].rsplit(" ", 1)[1]
    assert parts["down-match"][1]["target"] == {down_leaf: {}}  # filter points at it again
    assert driver.reconcile([alice, bob]).applied == ()


def test_hand_change_inside_an_owned_object_is_reverted(sim, driver) -> None:
    insp = inspector(sim)
    driver.reconcile([static("jt-alice", 1)])
    node = shaper_parts(insp.tree(), "jt-alice")["up-leaf"][0]
    sim.state.hand_edit(f"set {node} bandwidth 100mbit", f"set {node} priority 1")
    report = driver.reconcile([static("jt-alice", 1)])
    assert len(report.applied) == 1
    leaf = shaper_parts(insp.tree(), "jt-alice")["up-leaf"][1]
    assert leaf["bandwidth"] == {"10mbit": {}} and "priority" not in leaf


def test_foreign_rule_at_our_nat_number_is_a_conflict_then_adopted(sim, driver) -> None:
    sim.state.hand_edit(
        "set service nat rule 4900 type destination", "set service nat rule 4900 description 'port forward'"
    )
    report = driver.reconcile([static("jt-a", 1)])
    assert [c.kind for c in report.conflicts] == ["nat"]
    assert "service nat rule 4900" in report.conflicts[0].reason
    assert "set service nat rule 4900 description 'port forward'" in sim.state.show_commands()
    adopter = EdgeOSDriver(sim_config(sim, adopt_existing=True))
    assert adopter.reconcile([static("jt-a", 1)]).ok
    assert "nat rule 4900 description 'jasiyo: walled garden'" in sim.state.show_commands()
    adopter.close()


def test_subscribers_without_ip_are_skipped_and_reported(sim, driver) -> None:
    ppp = DesiredState("jt-ppp", Service.PPPOE, Access.ALLOW, "5M/5M", "p5")
    report = driver.reconcile([ppp, static("jt-a", 1)])
    assert report.ok
    assert driver.skipped == ("jt-ppp",)
    assert inspector(sim).subscriber("jt-ppp") is None
    assert inspector(sim).subscriber("jt-a") is not None


def test_plan_change_moves_leaves_and_drops_unused_branch(sim, driver) -> None:
    a = static("jt-a", 1)
    driver.reconcile([a])
    moved = dataclasses.replace(a, plan="gold", rate_limit="50M/50M")
    report = driver.reconcile([moved])
    kinds = sorted((c.action.value, c.kind) for c in report.applied)
    assert kinds == [
        ("add", "branch"),
        ("add", "branch"),
        ("remove", "branch"),
        ("remove", "branch"),
        ("update", "shaper"),
    ]
    text = sim.state.show_commands()
    assert "jasiyo:branch=gold/up" in text and "jasiyo:branch=10M/up" not in text


def test_no_pay_page_means_drop_only(sim) -> None:
    d = EdgeOSDriver(sim_config(sim, pay_page=None))
    assert d.reconcile([static("jt-a", 1, access=Access.WALLED_GARDEN)]).ok
    text = sim.state.show_commands()
    assert "service nat rule" not in text and "walled garden drop" in text
    d.close()


def test_bad_options_are_config_errors(sim) -> None:
    with pytest.raises(ConfigError, match="queue_ids"):
        EdgeOSDriver(sim_config(sim, options={"queue_ids": "9-3"}))
    with pytest.raises(ConfigError, match="must start with JASIYO_"):
        EdgeOSDriver(sim_config(sim, options={"address_group": "BLOCKED"}))
