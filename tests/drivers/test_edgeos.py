"""The conformance suite against EdgeOS: the SSH simulator over real SSH, and a lab
EdgeRouter when JASIYO_LAB_EDGEOS_HOST / _USER / _PASSWORD / _FINGERPRINT (and optionally
_PORT) are set.

The inspector reads and hand-edits the router through two callables: in process for the
simulator, through a second SSH session (``EdgeOSDriver.run_batch``) for a lab router.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator

import pytest

from jasiyo.drivers.edgeos import EdgeOSDriver
from jasiyo.drivers.edgeos.config import Tree, get, parse_commands, split, value
from jasiyo.drivers.edgeos.plan import bandwidth_bps
from jasiyo.drivers.edgeos.sim import EdgeOSSim
from jasiyo.drivers.routerstate import RouterConfig
from jasiyo.network import Rate, Service
from tests.drivers.conformance import DriverConformance, RouterUnderTest, SubscriberOnRouter

USERS = {"ubnt": "s3cret-ssh"}
GROUP = "JASIYO_SUSPENDED"
AQ = ("traffic-control", "advanced-queue")

#: Objects a person made; several sit in the agent's reserved queue id range on purpose.
UNMANAGED = (
    "set firewall group address-group LAN_TRUSTED address 192.168.88.0/24",
    "set firewall group address-group LAN_TRUSTED description office",
    "set firewall name WAN_IN default-action drop",
    "set firewall name WAN_IN rule 10 action accept",
    "set firewall name WAN_IN rule 10 state established enable",
    "set service nat rule 5000 type masquerade",
    "set service nat rule 5000 outbound-interface eth0",
    "set service nat rule 5000 description 'masquerade for LAN'",
    "set traffic-control advanced-queue queue-type fq-codel OFFICE_FQ",
    "set traffic-control advanced-queue root queue 10000 attach-to eth0",
    "set traffic-control advanced-queue root queue 10000 bandwidth 100mbit",
    "set traffic-control advanced-queue root queue 10000 description office",
    "set traffic-control advanced-queue branch queue 10001 parent 10000",
    "set traffic-control advanced-queue branch queue 10001 bandwidth 50mbit",
    "set traffic-control advanced-queue leaf queue 10002 parent 10001",
    "set traffic-control advanced-queue leaf queue 10002 bandwidth 10mbit",
    "set traffic-control advanced-queue leaf queue 10002 description 'jt-alice office'",
    "set traffic-control advanced-queue filters match 10000 attach-to 10000",
    "set traffic-control advanced-queue filters match 10000 target 10002",
    "set traffic-control advanced-queue filters match 10000 ip source address 10.255.0.2/32",
)


def shaper_parts(tree: Tree, username: str) -> dict[str, tuple[str, Tree]]:
    """Role (``up-leaf``, ``down-match``...) -> (node path, subtree) of a customer's shaper."""
    aq = get(tree, *AQ)
    out: dict[str, tuple[str, Tree]] = {}
    for level, table, kind in (("leaf", "queue", "leaf"), ("filters", "match", "match")):
        for qid, sub in get(aq, level, table).items():
            m = re.fullmatch(r"jasiyo:(up|down)=(.+)", value(sub, "description"))
            if m and m.group(2) == username:
                out[f"{m.group(1)}-{kind}"] = (f"traffic-control advanced-queue {level} {table} {qid}", sub)
    return out


def managed_prefixes(text: str) -> list[str]:
    """Configuration nodes the agent owns, from the listing alone."""
    out = []
    for line in text.splitlines():
        words = split(line)[1:]
        if len(words) > 1 and words[-2] == "description" and words[-1].startswith("jasiyo:"):
            out.append(" ".join(words[:-2]))
        for i, w in enumerate(words[1:], 1):
            if w.startswith("JASIYO_") and words[i - 1] in ("address-group", "name", "fq-codel"):
                out.append(" ".join(words[: i + 1]))
    return out


class EdgeOSInspector:
    """Looks at and hand-edits an EdgeRouter through ``show()`` and ``hand(*lines)``."""

    def __init__(self, show: Callable[[], str], hand: Callable[..., object]) -> None:
        self.show, self.hand = show, hand
        self.made: list[str] = []

    def tree(self) -> Tree:
        return parse_commands(self.show())

    def _ip(self, parts: dict[str, tuple[str, Tree]]) -> str | None:
        for role, side in (("up-match", "source"), ("down-match", "destination")):
            if role in parts:
                return value(parts[role][1], "ip", side, "address").split("/")[0]
        return None

    def subscriber(self, username: str) -> SubscriberOnRouter | None:
        tree = self.tree()
        parts = shaper_parts(tree, username)
        if not parts:
            return None
        rate = None
        if len(parts) == 4:
            up = bandwidth_bps(value(parts["up-leaf"][1], "bandwidth"))
            down = bandwidth_bps(value(parts["down-leaf"][1], "bandwidth"))
            rate = Rate(up or 0, down or 0)
        ip = self._ip(parts)
        suspended = ip in get(tree, "firewall", "group", "address-group", GROUP, "address")
        return SubscriberOnRouter(rate, suspended=suspended)

    def hand_remove_rate(self, username: str) -> None:
        parts = shaper_parts(self.tree(), username)
        self.hand(*(f"delete {node}" for node, _ in parts.values()))

    def hand_remove_leaf(self, username: str, role: str = "down-leaf") -> str:
        node = shaper_parts(self.tree(), username)[role][0]
        self.hand(f"delete {node}")
        return node

    def hand_unsuspend(self, username: str) -> None:
        ip = self._ip(shaper_parts(self.tree(), username))
        self.hand(f"delete firewall group address-group {GROUP} address {ip}")

    def add_unmanaged(self) -> None:
        self.hand(*UNMANAGED)
        self.made = list(UNMANAGED)

    def unmanaged_snapshot(self) -> object:
        text = self.show()
        mine = managed_prefixes(text)
        return sorted(
            ln for ln in text.splitlines() if not any(ln[4:] == p or ln[4:].startswith(p + " ") for p in mine)
        )

    def add_session(self, service: Service, username: str, address: str) -> bool:
        return False  # the driver keeps no PPPoE sessions on EdgeOS (RADIUS mode)

    def cleanup(self) -> None:
        if self.made:
            nodes = [
                "firewall group address-group LAN_TRUSTED",
                "firewall name WAN_IN",
                "service nat rule 5000",
                "traffic-control advanced-queue filters match 10000",
                "traffic-control advanced-queue leaf queue 10002",
                "traffic-control advanced-queue branch queue 10001",
                "traffic-control advanced-queue root queue 10000",
                "traffic-control advanced-queue queue-type fq-codel OFFICE_FQ",
            ]
            self.hand(*(f"delete {n}" for n in nodes))
            self.made = []


class SimFaultInjector:
    """The conformance suite's FaultInjector on the simulator's fault switches."""

    def __init__(self, sim: EdgeOSSim) -> None:
        self.sim = sim

    def calls(self) -> int:
        return self.sim.faults.commands

    def refuse_next_change(self, username: str) -> None:
        self.sim.faults.fail_command = rf" description jasiyo:up={re.escape(username)}$"

    def cut_next_read(self) -> None:
        self.sim.faults.cut_next_read = True

    def cut_after(self, commands: int) -> None:
        self.sim.faults.cut_after = commands

    def clear(self) -> None:
        self.sim.faults.clear()


def sim_config(sim: EdgeOSSim, **overrides: object) -> RouterConfig:
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": sim.port,
        "username": "ubnt",
        "password": USERS["ubnt"],
        "name": "sim",
        "timeout": 5,
        "pay_page": "10.200.0.1",
        "fingerprint": sim.host_key_fingerprint,
    }
    return RouterConfig(**(base | overrides))  # type: ignore[arg-type]


def sim_router(sim: EdgeOSSim) -> RouterUnderTest:
    inspector = EdgeOSInspector(sim.state.show_commands, sim.state.hand_edit)
    return RouterUnderTest(sim_config(sim), inspector, SimFaultInjector(sim))


class TestEdgeOSSim(DriverConformance):
    driver_class = EdgeOSDriver
    supports_api_mode = False

    @pytest.fixture
    def router(self) -> Iterator[RouterUnderTest]:
        with EdgeOSSim(users=USERS) as sim:
            yield sim_router(sim)


_LAB = "JASIYO_LAB_EDGEOS_"


@pytest.mark.skipif(not os.environ.get(_LAB + "HOST"), reason=f"{_LAB}HOST not set")
class TestEdgeOSLab(DriverConformance):
    """Creates and removes jt-* and JASIYO_ objects: point it at a lab router only."""

    driver_class = EdgeOSDriver
    supports_api_mode = False

    @pytest.fixture
    def router(self) -> Iterator[RouterUnderTest]:
        env = os.environ
        config = RouterConfig(
            host=env[_LAB + "HOST"],
            port=int(env.get(_LAB + "PORT", "22")),
            username=env.get(_LAB + "USER", "ubnt"),
            password=env.get(_LAB + "PASSWORD", ""),
            fingerprint=env.get(_LAB + "FINGERPRINT"),
            name="lab",
            timeout=10,
            pay_page=env.get(_LAB + "PAY_PAGE", "10.200.0.1"),
        )
        side = EdgeOSDriver(config)
        side.open()

        def show() -> str:
            return side._op("show configuration commands")

        def hand(*lines: str) -> None:
            side.run_batch(list(lines))

        yield RouterUnderTest(config, EdgeOSInspector(show, hand), None)
        side.close()
