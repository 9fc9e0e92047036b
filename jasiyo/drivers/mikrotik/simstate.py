"""The RouterOS simulator's configuration database and command semantics (no sockets).

Models the menus the MikroTik driver manages, the way RouterOS 7 behaves over the API:
``*HEX`` ids, ``print`` with ``.proplist`` and the query stack, ``add``/``set``/``unset``/
``remove``, RouterOS's own error texts for duplicates and missing items, and how RouterOS
prints values (``true``/``false``, queue rates in bits per second, ``/32`` targets).

Tests reach it in-process (``sim.state``) to make hand edits and to look at the result.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from jasiyo.network import parse_bps


class Trap(Exception):
    """A ``!trap`` reply: RouterOS refused the command. ``category`` as in the API manual."""

    def __init__(self, message: str, category: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.category = category


@dataclass(slots=True)
class MenuSpec:
    """How one menu behaves: its unique key, what its duplicate error says, its defaults."""

    unique: tuple[str, ...] = ()
    duplicate: str = ""
    defaults: Mapping[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    readonly: bool = False  # dynamic menus: only print and remove


_RATE_PAIRS = ("max-limit", "limit-at", "burst-limit", "burst-threshold")
_BOOLEANS = ("disabled", "dynamic", "only-one", "invalid")
_QUEUE_DEFAULTS = {
    "max-limit": "0/0",
    "limit-at": "0/0",
    "burst-limit": "0/0",
    "burst-threshold": "0/0",
    "burst-time": "0s/0s",
    "priority": "8/8",
    "parent": "none",
    "disabled": "false",
}

MENUS: dict[str, MenuSpec] = {
    "/ppp/secret": MenuSpec(
        ("name",),
        "failure: secret with the same name already exists",
        {"service": "any", "profile": "default", "disabled": "false"},
        ("name",),
    ),
    "/ppp/profile": MenuSpec(
        ("name",), "failure: profile with the same name already exists", {"only-one": "default"}, ("name",)
    ),
    "/ppp/active": MenuSpec(readonly=True),
    "/ip/hotspot/user": MenuSpec(
        ("name",),
        "failure: already have user with this name",
        {"server": "all", "profile": "default", "disabled": "false"},
        ("name",),
    ),
    "/ip/hotspot/user/profile": MenuSpec(
        ("name",), "failure: already have profile with this name", {}, ("name",)
    ),
    "/ip/hotspot/active": MenuSpec(readonly=True),
    "/queue/simple": MenuSpec(("name",), "failure: already have such name", _QUEUE_DEFAULTS, ("target",)),
    "/ip/firewall/address-list": MenuSpec(
        ("list", "address"),
        "failure: already have such entry",
        {"disabled": "false", "dynamic": "false"},
        ("list", "address"),
    ),
    "/ip/firewall/nat": MenuSpec(defaults={"disabled": "false"}, required=("chain",)),
    "/ip/firewall/filter": MenuSpec(defaults={"disabled": "false"}, required=("chain",)),
    # The hotspot's walled garden: by host name (HTTP, dst-host) and by address (any
    # protocol, dst-address); RouterOS allows duplicates here.
    # Files: RouterOS 7 adds one with contents (``/file/add name=... contents=...``).
    "/file": MenuSpec(("name",), "failure: file with such name already exists", {"type": "file"}, ("name",)),
    "/ip/hotspot/walled-garden": MenuSpec(defaults={"action": "allow", "disabled": "false"}),
    "/ip/hotspot/walled-garden/ip": MenuSpec(defaults={"action": "accept", "disabled": "false"}),
}


def _normalise(menu: str, key: str, value: str) -> str:
    """What RouterOS prints back for a value we were given."""
    if key in _BOOLEANS and value in ("yes", "no", "true", "false"):
        return "true" if value in ("yes", "true") else "false"
    if menu == "/queue/simple":
        if key in _RATE_PAIRS:
            parts = value.split("/")
            try:
                nums = [str(parse_bps(p)) for p in parts]
            except Exception:  # noqa: BLE001 - RouterOS answers a bad value with a trap
                raise Trap(f"value of {key} is invalid: {value!r}", 1) from None
            return "/".join(nums * 2 if len(nums) == 1 else nums)
        if key == "target":
            return ",".join(t if "/" in t else f"{t}/32" for t in value.split(","))
    return value


def _compare(a: str, b: str) -> int:
    try:
        x, y = int(a), int(b)
    except ValueError:
        return (a > b) - (a < b)
    return (x > y) - (x < y)


def run_query(item: Mapping[str, str], words: Iterable[str]) -> bool:
    """Evaluate RouterOS query words against one item (the API manual's stack machine)."""
    stack: list[bool] = []
    for word in words:
        body = word[1:]
        if body.startswith("#"):
            for op in body[1:]:
                if op == "!":
                    stack.append(not stack.pop())
                elif op in "&|":
                    b, a = stack.pop(), stack.pop()
                    stack.append((a and b) if op == "&" else (a or b))
                elif op == ".":
                    stack.append(stack[-1])
                elif op.isdigit():
                    stack.append(stack[int(op)])
                else:
                    raise Trap(f"unknown query operation {op!r}", 5)
            continue
        if body.startswith(("<", ">")):
            name, _, value = body[1:].partition("=")
            have = item.get(name)
            sign = -1 if body[0] == "<" else 1
            stack.append(have is not None and _compare(have, value) == sign)
        elif body.startswith("-"):
            stack.append(body[1:] not in item)
        elif body.startswith("="):
            name, _, value = body[1:].partition("=")
            stack.append(item.get(name) == value)
        elif "=" in body:
            name, _, value = body.partition("=")
            stack.append(item.get(name) == value)
        else:
            stack.append(body in item)
    return all(stack)


@dataclass(slots=True)
class Stats:
    """What the simulator has been asked: command sentences in total and per command."""

    sentences: int = 0
    commands: Counter[str] = field(default_factory=Counter)
    logins: int = 0

    def reset(self) -> None:
        self.sentences = 0
        self.commands.clear()
        self.logins = 0


class RouterOSState:
    """The simulated router's configuration. Thread-safe: every method takes the lock."""

    def __init__(self, identity: str = "jasiyo-sim", version: str = "7.16 (stable)") -> None:
        self.lock = threading.RLock()
        self.identity = identity
        self.version = version
        self.users: dict[str, str] = {"admin": ""}
        self.menus: dict[str, dict[str, dict[str, str]]] = {m: {} for m in MENUS}
        # unique key -> id, per menu: keeps add/set O(1) with 10,000s of items
        self._index: dict[str, dict[tuple[str | None, ...], str]] = {m: {} for m in MENUS}
        self._next_id = 1
        for menu in ("/ppp/profile", "/ip/hotspot/user/profile"):
            self.menus[menu]["*0"] = {".id": "*0", "name": "default", "default": "true"}
        self.menus["/ppp/profile"]["*FFFFFFFE"] = {
            ".id": "*FFFFFFFE",
            "name": "default-encryption",
            "default": "true",
        }
        for menu in MENUS:
            self._reindex(menu)

    def _ukey(self, menu: str, item: Mapping[str, str]) -> tuple[str | None, ...] | None:
        unique = MENUS[menu].unique
        key = tuple(item.get(k) for k in unique)
        return key if unique and None not in key else None

    def _reindex(self, menu: str) -> None:
        index = self._index[menu] = {}
        for oid, item in self.menus[menu].items():
            key = self._ukey(menu, item)
            if key is not None:
                index.setdefault(key, oid)

    def sends_empty(self) -> bool:
        """RouterOS 7.18 and later answer a print with no items with ``!empty``."""
        nums = self.version.split()[0].split(".")
        try:
            return (int(nums[0]), int(nums[1]) if len(nums) > 1 else 0) >= (7, 18)
        except ValueError:
            return False

    # ------------------------------------------------------------------ in-process access

    def items(self, menu: str, **match: str) -> list[dict[str, str]]:
        """Copies of the items of ``menu`` whose properties equal ``match``."""
        with self.lock:
            return [
                dict(i) for i in self.menus[menu].values() if all(i.get(k) == v for k, v in match.items())
            ]

    def add(self, menu: str, **props: str) -> str:
        """Add an item as a person at the console would; returns its ``*HEX`` id."""
        with self.lock:
            return self._add(menu, {k.replace("_", "-"): v for k, v in props.items()})

    def remove_where(self, menu: str, **match: str) -> int:
        """Delete matching items (a hand edit); returns how many."""
        with self.lock:
            ids = [i[".id"] for i in self.items(menu, **match)]
            for i in ids:
                del self.menus[menu][i]
            self._reindex(menu)
            return len(ids)

    def update_where(self, menu: str, match: Mapping[str, str], **props: str) -> int:
        """Change matching items (a hand edit); returns how many."""
        with self.lock:
            n = 0
            for item in self.menus[menu].values():
                if all(item.get(k) == v for k, v in match.items()):
                    for k, v in props.items():
                        key = k.replace("_", "-")
                        item[key] = _normalise(menu, key, v)
                    n += 1
            self._reindex(menu)
            return n

    def add_session(self, service: str, username: str, address: str) -> str:
        """Put a connected customer in ``/ppp/active`` (pppoe) or ``/ip/hotspot/active``."""
        with self.lock:
            if service == "hotspot":
                return self._add(
                    "/ip/hotspot/active",
                    {
                        "user": username,
                        "address": address,
                        "uptime": "1m",
                        "mac-address": "02:00:00:00:00:01",
                        "server": "hotspot1",
                    },
                )
            return self._add(
                "/ppp/active",
                {
                    "name": username,
                    "service": service,
                    "address": address,
                    "uptime": "1m",
                    "caller-id": "02:00:00:00:00:01",
                    "encoding": "",
                },
            )

    # ------------------------------------------------------------------ API commands

    def execute(
        self, command: str, attrs: Mapping[str, str], query: list[str]
    ) -> tuple[list[dict[str, str]], dict[str, str]]:
        """Run one API command; return (``!re`` items, ``!done`` attributes) or raise Trap."""
        menu, _, verb = command.rpartition("/")
        with self.lock:
            if menu == "/system/identity":
                if verb in ("print", "getall"):
                    return [{"name": self.identity}], {}
                if verb == "set":
                    self.identity = attrs.get("name", self.identity)
                    return [], {}
            if menu == "/system/resource" and verb in ("print", "getall"):
                return [
                    {
                        "uptime": "1w2d3h",
                        "version": self.version,
                        "board-name": "CHR",
                        "architecture-name": "x86_64",
                        "cpu-load": "1",
                        "platform": "MikroTik",
                    }
                ], {}
            if menu not in MENUS:
                raise Trap("no such command prefix", 0)
            spec = MENUS[menu]
            if verb in ("print", "getall"):
                return self._print(menu, attrs, query), {}
            if verb == "remove":
                self._remove(menu, attrs)
                return [], {}
            if spec.readonly:
                raise Trap("no such command", 0)
            if verb == "add":
                return [], {"ret": self._add(menu, dict(attrs))}
            if verb in ("set", "unset", "enable", "disable"):
                self._set(menu, verb, attrs)
                return [], {}
            raise Trap("no such command", 0)

    def _print(self, menu: str, attrs: Mapping[str, str], query: list[str]) -> list[dict]:
        proplist = attrs.get(".proplist")
        keys = proplist.split(",") if proplist else None
        out = []
        for item in self.menus[menu].values():
            if query and not run_query(item, query):
                continue
            row = dict(item) if keys is None else {k: item[k] for k in keys if k in item}
            out.append(row)
        return out

    def _find(self, menu: str, ref: str) -> str:
        items = self.menus[menu]
        if ref in items:
            return ref
        for oid, item in items.items():  # RouterOS also accepts a name for numbers=
            if item.get("name") == ref:
                return oid
        raise Trap("no such item", 0)

    def _check_unique(self, menu: str, item: Mapping[str, str], skip: str | None) -> None:
        key = self._ukey(menu, item)
        if key is not None and self._index[menu].get(key, skip) != skip:
            raise Trap(MENUS[menu].duplicate, None)

    def _add(self, menu: str, attrs: dict[str, str]) -> str:
        spec = MENUS[menu]
        if menu == "/queue/simple" and "name" not in attrs:
            attrs["name"] = f"queue{self._next_id}"
        for req in spec.required:
            if not attrs.get(req):
                raise Trap(f"failure: {req} not specified", 1)
        before = attrs.pop("place-before", None)
        if before is not None:
            before = self._find(menu, before)
        item = dict(spec.defaults)
        for k, v in attrs.items():
            item[k] = _normalise(menu, k, v)
        self._check_unique(menu, item, None)
        oid = f"*{self._next_id:X}"
        self._next_id += 1
        self.menus[menu][oid] = {".id": oid, **item}
        if before is not None:  # re-insert so that print order puts it before that item
            items = self.menus[menu]
            order = [i for i in items if i != oid]
            order.insert(order.index(before), oid)
            self.menus[menu] = {i: items[i] for i in order}
        key = self._ukey(menu, item)
        if key is not None:
            self._index[menu][key] = oid
        return oid

    def _set(self, menu: str, verb: str, attrs: Mapping[str, str]) -> None:
        ref = attrs.get(".id") or attrs.get("numbers")
        if not ref:
            raise Trap("failure: .id or numbers not specified", 1)
        oids = [self._find(menu, r) for r in ref.split(",")]
        for oid in oids:
            item = dict(self.menus[menu][oid])
            if verb == "unset":
                for name in attrs.get("value-name", "").split(","):
                    item.pop(name, None)
            elif verb in ("enable", "disable"):
                item["disabled"] = "true" if verb == "disable" else "false"
            else:
                for k, v in attrs.items():
                    if k not in (".id", "numbers"):
                        item[k] = _normalise(menu, k, v)
            self._check_unique(menu, item, oid)
            old = self._ukey(menu, self.menus[menu][oid])
            if old is not None and self._index[menu].get(old) == oid:
                del self._index[menu][old]
            self.menus[menu][oid] = item
            new = self._ukey(menu, item)
            if new is not None:
                self._index[menu][new] = oid

    def _remove(self, menu: str, attrs: Mapping[str, str]) -> None:
        ref = attrs.get(".id") or attrs.get("numbers")
        if not ref:
            raise Trap("failure: .id or numbers not specified", 1)
        oids = [self._find(menu, r) for r in ref.split(",")]  # all or nothing, as RouterOS
        for oid in oids:
            key = self._ukey(menu, self.menus[menu].pop(oid))
            if key is not None and self._index[menu].get(key) == oid:
                del self._index[menu][key]
