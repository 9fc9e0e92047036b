"""The slice of the EdgeOS configuration schema the simulator knows, and path validation.

Only the subtrees the driver and its tests touch are described (system host-name,
interfaces ethernet, service ssh/nat, firewall group/name, traffic-control advanced-queue);
any other path is refused with EdgeOS's own wording, ``Configuration path: [...] is not
valid``. Id ranges are the simulator's assumptions (queue and match ids 1-65535, rule
numbers 1-9999), not verified against a device.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

Check = Callable[[str], bool]


@dataclass(frozen=True)
class Leaf:
    """A value node: single-valued unless ``multi``; ``flag`` nodes take no value."""

    check: Check
    multi: bool = False
    flag: bool = False


@dataclass(frozen=True)
class Tag:
    """A node with named instances (``rule 10``, ``queue 10004``, ``address-group X``)."""

    check: Check
    children: dict[str, object] = field(default_factory=dict)


def _any(v: str) -> bool:
    return bool(v)


def _int(lo: int, hi: int) -> Check:
    return lambda v: v.isdigit() and lo <= int(v) <= hi


def _enum(*names: str) -> Check:
    return lambda v: v in names


def _name(v: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9_.-]{1,28}", v))


def _ipv4(v: str) -> bool:
    try:
        ipaddress.IPv4Address(v)
    except ValueError:
        return False
    return True


def _ipv4net(v: str) -> bool:
    try:
        ipaddress.IPv4Network(v, strict=False)
    except ValueError:
        return False
    return "/" in v


def _addr(v: str) -> bool:
    """An address, a network or a range ``a-b``, optionally negated with ``!``."""
    v = v.removeprefix("!")
    if "-" in v:
        return all(_ipv4(p) for p in v.split("-", 1))
    return _ipv4(v) or _ipv4net(v)


def _port(v: str) -> bool:
    return bool(re.fullmatch(r"!?[A-Za-z0-9,-]+", v))


def _bandwidth(v: str) -> bool:
    return bool(re.fullmatch(r"\d+(\.\d+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps|%)?", v, re.I))


TEXT = Leaf(_any)
FLAG = Leaf(_any, flag=True)
QID = _int(1, 65535)


def _side() -> dict[str, object]:
    return {
        "address": Leaf(_addr),
        "port": Leaf(_port),
        "group": {"address-group": Leaf(_name), "network-group": Leaf(_name), "port-group": Leaf(_name)},
    }


_FW_RULE: dict[str, object] = {
    "action": Leaf(_enum("accept", "drop", "reject")),
    "description": TEXT,
    "protocol": Leaf(_any),
    "log": Leaf(_enum("enable", "disable")),
    "disable": FLAG,
    "state": {s: Leaf(_enum("enable", "disable")) for s in ("established", "related", "new", "invalid")},
    "source": _side(),
    "destination": _side(),
}
_NAT_RULE: dict[str, object] = {
    "type": Leaf(_enum("source", "destination", "masquerade")),
    "description": TEXT,
    "protocol": Leaf(_any),
    "inbound-interface": Leaf(_any),
    "outbound-interface": Leaf(_any),
    "log": Leaf(_enum("enable", "disable")),
    "disable": FLAG,
    "source": _side(),
    "destination": _side(),
    "inside-address": {"address": Leaf(_addr), "port": Leaf(_port)},
    "outside-address": {"address": Leaf(_addr), "port": Leaf(_port)},
}
_IP_MATCH: dict[str, object] = {"address": Leaf(_ipv4net), "port": Leaf(_port)}

SCHEMA: dict[str, object] = {
    "system": {
        "host-name": Leaf(lambda v: bool(re.fullmatch(r"[A-Za-z0-9-]{1,63}", v))),
        "time-zone": TEXT,
        "login": {
            "user": Tag(
                _name,
                {
                    "authentication": {"plaintext-password": TEXT, "encrypted-password": TEXT},
                    "level": Leaf(_enum("admin", "operator")),
                },
            )
        },
    },
    "interfaces": {
        "ethernet": Tag(
            lambda v: bool(re.fullmatch(r"eth\d+", v)),
            {
                "address": Leaf(lambda v: v == "dhcp" or _ipv4net(v), multi=True),
                "description": TEXT,
                "duplex": TEXT,
                "speed": TEXT,
                "firewall": {d: {"name": Leaf(_name)} for d in ("in", "out", "local")},
            },
        )
    },
    "service": {
        "ssh": {"port": Leaf(_int(1, 65535)), "protocol-version": TEXT},
        "gui": {"http-port": Leaf(_int(1, 65535)), "https-port": Leaf(_int(1, 65535))},
        "nat": {"rule": Tag(_int(1, 9999), _NAT_RULE)},
    },
    "firewall": {
        "all-ping": Leaf(_enum("enable", "disable")),
        "group": {
            "address-group": Tag(_name, {"address": Leaf(_addr, multi=True), "description": TEXT}),
            "network-group": Tag(_name, {"network": Leaf(_ipv4net, multi=True), "description": TEXT}),
        },
        "name": Tag(
            _name,
            {
                "default-action": Leaf(_enum("drop", "reject", "accept")),
                "description": TEXT,
                "enable-default-log": FLAG,
                "rule": Tag(_int(1, 9999), _FW_RULE),
            },
        ),
    },
    "traffic-control": {
        "advanced-queue": {
            "root": {
                "queue": Tag(
                    QID,
                    {
                        "attach-to": Leaf(_any),
                        "bandwidth": Leaf(_bandwidth),
                        "default": Leaf(QID),
                        "description": TEXT,
                    },
                )
            },
            "branch": {
                "queue": Tag(
                    QID,
                    {
                        "bandwidth": Leaf(_bandwidth),
                        "parent": Leaf(QID),
                        "priority": Leaf(_int(0, 7)),
                        "description": TEXT,
                        "queue-type": Leaf(_name),
                    },
                )
            },
            "leaf": {
                "queue": Tag(
                    QID,
                    {
                        "bandwidth": Leaf(_bandwidth),
                        "parent": Leaf(QID),
                        "priority": Leaf(_int(0, 7)),
                        "description": TEXT,
                        "queue-type": Leaf(_name),
                        "burst": {"burst-rate": Leaf(_bandwidth), "burst-size": TEXT},
                    },
                )
            },
            "queue-type": {
                "fq-codel": Tag(
                    _name,
                    {
                        "flows": Leaf(_int(1, 65536)),
                        "interval": TEXT,
                        "quantum": TEXT,
                        "queue-limit": TEXT,
                        "target": TEXT,
                    },
                ),
                "pfifo": Tag(_name, {"limit": Leaf(_int(1, 65535))}),
                "sfq": Tag(_name, {}),
            },
            "filters": {
                "match": Tag(
                    QID,
                    {
                        "attach-to": Leaf(QID),
                        "target": Leaf(QID),
                        "description": TEXT,
                        "ip": {
                            "source": dict(_IP_MATCH),
                            "destination": dict(_IP_MATCH),
                            "protocol": Leaf(_any),
                        },
                        "mark": Leaf(_any),
                    },
                )
            },
        },
    },
}


class PathError(Exception):
    """A path the schema refuses; ``str()`` is EdgeOS's message for it."""


def _invalid(words: Sequence[str]) -> PathError:
    return PathError(f"Configuration path: [{' '.join(words)}] is not valid")


def resolve(words: Sequence[str], *, need_value: bool) -> list[str]:
    """Validate ``words`` against the schema; return each word's role.

    Roles: ``container``, ``tagmap``, ``instance``, ``leaf``, ``value``, ``flag``.
    ``need_value``: a set must end at a value (or a flag, or a tag instance); a delete may
    stop anywhere. Raises ``PathError`` with EdgeOS's wording.
    """
    roles: list[str] = []
    schema: object = SCHEMA
    i = 0
    while i < len(words):
        word = words[i]
        if not isinstance(schema, dict) or word not in schema:
            raise _invalid(words[: i + 1])
        sub = schema[word]
        if isinstance(sub, Leaf):
            roles.append("flag" if sub.flag else "leaf")
            if sub.flag:
                if i + 1 != len(words):
                    raise _invalid(words[: i + 2])
                return roles
            if i + 1 == len(words):
                if need_value:
                    raise PathError(f"Configuration path: [{' '.join(words)}] requires a value")
                return roles
            val = words[i + 1]
            if i + 2 != len(words):
                raise _invalid(words[: i + 3])
            if not sub.check(val):
                raise PathError(
                    f'Value validation failed: "{val}" is not valid for [{" ".join(words[: i + 1])}]'
                )
            roles.append("value")
            return roles
        if isinstance(sub, Tag):
            roles.append("tagmap")
            if i + 1 == len(words):
                if need_value:
                    raise PathError(f"Configuration path: [{' '.join(words)}] requires a value")
                return roles
            name = words[i + 1]
            if not sub.check(name):
                raise PathError(
                    f'Value validation failed: "{name}" is not valid for [{" ".join(words[: i + 1])}]'
                )
            roles.append("instance")
            schema = sub.children
            i += 2
            continue
        roles.append("container")
        schema = sub
        i += 1
    if need_value and roles and roles[-1] == "container":
        raise PathError(f"Configuration path: [{' '.join(words)}] requires a value")
    return roles


def is_multi(words: Sequence[str]) -> bool:
    """True when the leaf named by ``words`` (without its value) holds several values."""
    schema: object = SCHEMA
    i = 0
    while i < len(words):
        if not isinstance(schema, dict):
            return False
        sub = schema.get(words[i])
        if isinstance(sub, Leaf):
            return sub.multi
        if isinstance(sub, Tag):
            schema, i = sub.children, i + 2
        else:
            schema, i = sub, i + 1
    return False
