"""The EdgeOS planner without a network: configuration text in, ordered commands out."""

from __future__ import annotations

import pytest

from jasiyo.drivers.edgeos import plan as planner
from jasiyo.drivers.edgeos.config import format_commands, parse_commands, split
from jasiyo.drivers.edgeos.simstate import EdgeOSState, commit_errors
from jasiyo.drivers.routerstate import Action, RouterConfig, RouterState
from jasiyo.errors import ValidationError
from jasiyo.network import Access, DesiredState, Service

CONFIG = RouterConfig("192.0.2.1", "ubnt", "x", pay_page="10.200.0.1")
LAYOUT = planner.Layout.of(CONFIG)


def sub(
    name: str, ip: str | None, access: Access = Access.ALLOW, rate: str = "10M/5M", plan: str = "home"
) -> DesiredState:
    return DesiredState(name, Service.STATIC, access, rate, plan, ip=ip)


def state_of(text: str) -> RouterState:
    return RouterState(tuple(planner.read_objects(parse_commands(text), LAYOUT)))


def apply_locally(text: str, desired: list[DesiredState]) -> str:
    """Plan against ``text`` and apply the commands to an in-memory router."""
    diff, _ = planner.plan(LAYOUT, CONFIG, desired, state_of(text))
    router = EdgeOSState(config=text)
    router.hand_edit(*(c for ch in diff.changes for c in planner.commands(ch)))
    assert commit_errors(router.committed) == []
    return router.show_commands()


def test_round_trip_of_quoted_values() -> None:
    text = "set firewall name X description 'a b: c'\nset system host-name gw\n"
    assert format_commands(parse_commands(text)) == text
    assert split("set a 'b c' d") == ["set", "a", "b c", "d"]


def test_desired_state_is_reached_and_then_stable() -> None:
    desired = [sub("a", "10.0.0.2"), sub("b", "10.0.0.3", Access.WALLED_GARDEN, "1M/1M")]
    text = apply_locally("set system host-name gw\n", desired)
    diff, _ = planner.plan(LAYOUT, CONFIG, desired, state_of(text))
    assert diff.is_empty
    assert "address-group JASIYO_SUSPENDED address 10.0.0.3" in text
    assert "address-group JASIYO_SUSPENDED address 10.0.0.2" not in text
    assert "leaf queue 10003 bandwidth 10mbit" in text  # upload of a: rx = client upload


def test_queue_ids_skip_anything_already_there() -> None:
    taken = (
        "set traffic-control advanced-queue root queue 10000 attach-to eth0\n"
        "set traffic-control advanced-queue root queue 10000 bandwidth 1gbit\n"
    )
    text = apply_locally(taken, [sub("a", "10.0.0.2")])
    assert "root queue 10000 attach-to eth0" in text
    assert "root queue 10001 description jasiyo:root" in text
    assert "root queue 10000 description" not in text


def test_ids_outside_the_reserved_range_are_never_ours() -> None:
    text = (
        "set traffic-control advanced-queue leaf queue 50 description jasiyo:up=a\n"
        "set traffic-control advanced-queue leaf queue 50 bandwidth 1mbit\n"
    )
    diff, _ = planner.plan(LAYOUT, CONFIG, [], state_of(text))
    assert all(c.action != Action.REMOVE for c in diff.changes)


def test_removes_come_after_adds_and_delete_whole_nodes() -> None:
    text = apply_locally("", [sub("a", "10.0.0.2"), sub("b", "10.0.0.3")])
    diff, _ = planner.plan(LAYOUT, CONFIG, [sub("c", "10.0.0.4")], state_of(text))
    actions = [c.action for c in diff.changes]
    assert actions.index(Action.REMOVE) > max(i for i, a in enumerate(actions) if a != "remove")
    removed = [planner.commands(c) for c in diff.changes if c.action == Action.REMOVE]
    assert all(cmd.startswith("delete traffic-control advanced-queue ") for cmds in removed for cmd in cmds)


def test_shared_address_and_duplicate_name_are_refused() -> None:
    with pytest.raises(ValidationError, match="share the address 10.0.0.2"):
        planner.plan(LAYOUT, CONFIG, [sub("a", "10.0.0.2"), sub("b", "10.0.0.2")], state_of(""))
    with pytest.raises(ValidationError, match="appears twice"):
        planner.plan(LAYOUT, CONFIG, [sub("a", "10.0.0.2"), sub("a", "10.0.0.3")], state_of(""))
    with pytest.raises(ValidationError, match="bad rate"):
        planner.plan(LAYOUT, CONFIG, [sub("a", "10.0.0.2", rate="fast")], state_of(""))


def test_values_edgeos_cannot_hold_are_refused() -> None:
    with pytest.raises(ValidationError, match="cannot be written to EdgeOS"):
        planner.plan(LAYOUT, CONFIG, [sub("a", "10.0.0.2", plan="it's")], state_of(""))


def test_bandwidth_units() -> None:
    assert planner.format_bandwidth(10_000_000) == "10mbit"
    assert planner.format_bandwidth(256_000) == "256kbit"
    assert planner.bandwidth_bps("1gbit") == 1_000_000_000
    assert planner.bandwidth_bps("1mbps") == 8_000_000  # tc: bps means bytes per second
    assert planner.norm("x bandwidth", "10000kbit") == planner.norm("x bandwidth", "10mbit")
