"""What the agent keeps on an EdgeRouter, and the pure diff from desired to current.

Objects managed (``RouterObject.kind``), all recognisable without any local record:

- ``address-group``: ``firewall group address-group JASIYO_SUSPENDED`` (name from
  ``options["address_group"]``, else ``config.address_list`` upper-cased with a ``JASIYO_``
  prefix); each member address is a ``suspended`` object keyed by IP.
- ``nat``: ``service nat rule <nat_rule>`` (default 4900) described ``jasiyo: walled garden``,
  redirecting the group's HTTP to ``config.pay_page`` (only when a pay page is set).
- ``firewall-name`` ``JASIYO_SUSPEND`` (``options["firewall_name"]``; default-action accept,
  attach it to the customer-facing interface's ``in``) and its ``firewall-rule`` objects at
  ``firewall_rule_base`` (default 9000) +0 allow DNS, +1 allow the pay page, +2 drop, all
  for the group. Naming an existing ruleset without the ``JASIYO_`` prefix puts only the
  three rules there.
- Rate limits, the pattern of Ubiquiti's UCRM (``traffic-control advanced-queue``):
  ``queue-type fq-codel JASIYO_FQ_CODEL``; one ``root-queue`` (attach-to global); a
  ``branch`` per plan and direction (key ``<plan>/up``, ``<plan>/down``); and per
  customer one ``shaper`` object made of an upload and a download leaf queue plus the two
  ``filters match`` entries selecting the customer's IP (source = upload, destination =
  download). Queue and match ids are taken from the reserved range ``options["queue_ids"]``
  (default ``10000-19999``); only ids in that range whose description starts with
  ``jasiyo:`` are ever changed or deleted, and ids in use by anything are never reused.

Customers are identified by ``DesiredState.ip``; a subscriber without one is skipped (the
driver reports them in ``skipped``). ``RouterObject.fields`` maps full configuration paths
(``"traffic-control advanced-queue leaf queue 10004 bandwidth"``) to values, and
``object_id`` lists the object's configuration nodes joined by ``|``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from jasiyo.drivers.edgeos.config import FLAG, Tree, get, join, leaves, quote, value
from jasiyo.drivers.routerstate import (
    TAG_PREFIX,
    Action,
    Change,
    Conflict,
    Diff,
    RouterConfig,
    RouterObject,
    RouterState,
)
from jasiyo.errors import ConfigError, ValidationError
from jasiyo.network import Access, DesiredState, Rate

NAME_PREFIX = "JASIYO_"
QUEUE_TYPE = "JASIYO_FQ_CODEL"
AQ = "traffic-control advanced-queue"
RANK = {
    "queue-type": 0,
    "address-group": 0,
    "firewall-name": 0,
    "root-queue": 0,
    "branch": 1,
    "suspended": 1,
    "nat": 2,
    "firewall-rule": 2,
    "shaper": 2,
    "stray": 3,
}
NAT_KEYS = {"jasiyo: walled garden": "walled-garden"}
FW_RULES = {
    "allow-dns": (0, "jasiyo: walled garden allow dns"),
    "allow-pay-page": (1, "jasiyo: walled garden allow pay page"),
    "drop": (2, "jasiyo: walled garden drop"),
}
FW_KEYS = {desc: key for key, (_, desc) in FW_RULES.items()}


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the agent's objects live on one router (from ``RouterConfig``)."""

    group: str
    nat_rule: int
    firewall_name: str
    firewall_base: int
    qmin: int
    qmax: int
    root_bandwidth: str
    lan_interface: str
    pay_page: str | None
    pay_page_port: int

    @classmethod
    def of(cls, config: RouterConfig) -> Layout:
        """Read the layout; ``ConfigError`` naming the option when one is malformed."""
        opts: Mapping[str, str] = config.options or {}
        group = str(opts.get("address_group") or _jasiyo_name(config.address_list))
        if not group.startswith(NAME_PREFIX):
            raise ConfigError(f"options.address_group {group!r} must start with {NAME_PREFIX}")
        fw = str(opts.get("firewall_name") or "JASIYO_SUSPEND")
        m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", str(opts.get("queue_ids", "10000-19999")))
        if not m or not 1 <= int(m.group(1)) < int(m.group(2)) <= 65535:
            raise ConfigError("options.queue_ids must be a range like 10000-19999 within 1-65535")
        try:
            nat_rule = int(opts.get("nat_rule", 4900))
            fw_base = int(opts.get("firewall_rule_base", 9000))
        except (TypeError, ValueError):
            raise ConfigError("options.nat_rule and firewall_rule_base must be numbers") from None
        if not (1 <= nat_rule <= 9999 and 1 <= fw_base <= 9997):
            raise ConfigError("options.nat_rule / firewall_rule_base are outside 1-9999")
        root_bw = str(opts.get("root_bandwidth", "10gbit"))
        if bandwidth_bps(root_bw) is None:
            raise ConfigError(f"options.root_bandwidth {root_bw!r} is not like 1gbit or 500mbit")
        return cls(
            group,
            nat_rule,
            fw,
            fw_base,
            int(m.group(1)),
            int(m.group(2)),
            root_bw,
            str(opts.get("lan_interface", "")),
            config.pay_page,
            config.pay_page_port,
        )

    def in_range(self, qid: str) -> bool:
        return qid.isdigit() and self.qmin <= int(qid) <= self.qmax


def _jasiyo_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", text).upper()
    return name if name.startswith(NAME_PREFIX) else NAME_PREFIX + name


# ---------------------------------------------------------------------- values

_BW = re.compile(r"^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)?$", re.I)
_BW_UNITS = {
    "bit": 1,
    "kbit": 10**3,
    "mbit": 10**6,
    "gbit": 10**9,
    "bps": 8,
    "kbps": 8 * 10**3,
    "mbps": 8 * 10**6,
    "gbps": 8 * 10**9,
}


def bandwidth_bps(text: str) -> int | None:
    """``"10mbit"`` -> 10_000_000 (tc units: bit/kbit/mbit/gbit, bps = bytes); None if not."""
    m = _BW.match(text.strip())
    if not m:
        return None
    return int(float(m.group(1)) * _BW_UNITS[(m.group(2) or "bit").lower()])


def format_bandwidth(bps: int) -> str:
    """The EdgeOS form of a rate: ``10mbit``, ``512kbit``, ``1500bit``."""
    for unit, factor in (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3)):
        if bps % factor == 0:
            return f"{bps // factor}{unit}"
    return f"{bps}bit"


def norm(path: str, val: str) -> str:
    """Compare-form of a value so ``10000kbit`` equals ``10mbit`` and ``1.2.3.4`` its /32."""
    if path.endswith(" bandwidth"):
        bps = bandwidth_bps(val)
        return str(bps) if bps is not None else val
    if path.endswith(" address") and "/" not in val and val.count(".") == 3:
        return f"{val}/32"
    return val


def rate_of(d: DesiredState) -> Rate:
    """Upload/download of a subscriber: the first field of its rate limit (burst ignored)."""
    parts = d.rate_limit.split()
    if not parts:
        raise ValidationError(f"subscriber {d.username!r} has an empty rate limit")
    return Rate.parse(parts[0])


# ---------------------------------------------------------------------- reading


def _obj(
    kind: str,
    key: str,
    nodes: Sequence[str],
    tree_by_node: Mapping[str, Tree],
    managed: bool = True,
    skip: Iterable[str] = (),
) -> RouterObject:
    fields: dict[str, str] = {}
    skipped = tuple(skip)
    for node in nodes:
        for path, val in leaves(tree_by_node[node]).items():
            if not any(path == s or path.startswith(s + " ") for s in skipped):
                fields[f"{node} {path}"] = val
    return RouterObject(kind, key, "|".join(nodes), fields, managed)


def read_objects(tree: Tree, lay: Layout) -> list[RouterObject]:
    """Every agent-owned object in ``tree``, and the foreign ones that hold a name or id
    we would use (managed=False): kinds ``queue-id``/``match-id`` (keyed by id) and a
    ``nat``/``firewall-rule`` sitting at our rule number (keyed by our key)."""
    out: list[RouterObject] = []
    groups = get(tree, "firewall", "group", "address-group")
    for name, sub in groups.items():
        if not name.startswith(NAME_PREFIX):
            continue
        node = f"firewall group address-group {name}"
        out.append(_obj("address-group", name, [node], {node: sub}, skip=["address"]))
        if name == lay.group:
            for ip in get(sub, "address"):
                out.append(RouterObject("suspended", ip, f"{node} address {ip}", {}))
    for name, sub in get(tree, "firewall", "name").items():
        node = f"firewall name {name}"
        if name.startswith(NAME_PREFIX):
            out.append(_obj("firewall-name", name, [node], {node: sub}, skip=["rule"]))
        elif name == lay.firewall_name:
            out.append(RouterObject("firewall-name", name, node, {}, managed=False))
        if name != lay.firewall_name:
            continue
        numbers = {str(lay.firewall_base + off): key for key, (off, _) in FW_RULES.items()}
        for num, rsub in get(sub, "rule").items():
            rnode = f"{node} rule {num}"
            desc = value(rsub, "description")
            if desc.startswith(TAG_PREFIX):
                out.append(_obj("firewall-rule", FW_KEYS.get(desc, desc), [rnode], {rnode: rsub}))
            elif num in numbers:
                out.append(_obj("firewall-rule", numbers[num], [rnode], {rnode: rsub}, False))
    for num, sub in get(tree, "service", "nat", "rule").items():
        node = f"service nat rule {num}"
        desc = value(sub, "description")
        if desc.startswith(TAG_PREFIX):
            out.append(_obj("nat", NAT_KEYS.get(desc, desc), [node], {node: sub}))
        elif num == str(lay.nat_rule):
            out.append(_obj("nat", "walled-garden", [node], {node: sub}, managed=False))
    out.extend(_read_queues(get(tree, *AQ.split()), lay))
    return out


_LEAF_DESC = re.compile(r"^jasiyo:(up|down)=(.+)$")


def _read_queues(aq: Tree, lay: Layout) -> list[RouterObject]:
    out: list[RouterObject] = []
    for name, sub in get(aq, "queue-type", "fq-codel").items():
        if name.startswith(NAME_PREFIX):
            node = f"{AQ} queue-type fq-codel {name}"
            out.append(_obj("queue-type", name, [node], {node: sub}))
    parts: dict[str, dict[str, tuple[str, Tree]]] = {}
    for level, idkind in (
        ("root", "queue-id"),
        ("branch", "queue-id"),
        ("leaf", "queue-id"),
        ("filters", "match-id"),
    ):
        table = get(aq, level, "match" if level == "filters" else "queue")
        for qid, sub in table.items():
            node = f"{AQ} {level} {'match' if level == 'filters' else 'queue'} {qid}"
            desc = value(sub, "description")
            if not (lay.in_range(qid) and desc.startswith(TAG_PREFIX)):
                out.append(RouterObject(idkind, qid, node, {}, managed=False))
                continue
            m = _LEAF_DESC.match(desc)
            if level == "root" and desc == "jasiyo:root":
                out.append(_obj("root-queue", "root", [node], {node: sub}))
            elif level == "branch" and desc.startswith("jasiyo:branch="):
                out.append(_obj("branch", desc.removeprefix("jasiyo:branch="), [node], {node: sub}))
            elif level in ("leaf", "filters") and m:
                role = f"{m.group(1)}-{'leaf' if level == 'leaf' else 'match'}"
                mine = parts.setdefault(m.group(2), {})
                if role in mine:  # a copy of one of ours: remove it, keep the first
                    out.append(_obj("stray", node, [node], {node: sub}))
                else:
                    mine[role] = (node, sub)
            else:
                out.append(_obj("stray", node, [node], {node: sub}))
    for user, roles in parts.items():
        nodes = [roles[r][0] for r in ("up-leaf", "down-leaf", "up-match", "down-match") if r in roles]
        out.append(_obj("shaper", user, nodes, {n: s for n, s in roles.values()}))
    return out


def node_ids(obj: RouterObject) -> dict[str, str]:
    """Role (``up-leaf``, ``down-match``, ...) -> id, for the parts a shaper has."""
    out: dict[str, str] = {}
    for node in obj.object_id.split("|"):
        m = _LEAF_DESC.match(obj.fields.get(f"{node} description", ""))
        if m:
            level = "leaf" if " leaf queue " in node else "match"
            out[f"{m.group(1)}-{level}"] = node.rsplit(" ", 1)[1]
    return out


# ---------------------------------------------------------------------- desired


@dataclass(frozen=True, slots=True)
class Want:
    nodes: tuple[str, ...]
    fields: dict[str, str]
    subscriber: str | None = None


class _Ids:
    """Free ids of the reserved range, lowest first, never one already present."""

    def __init__(self, used: set[int], lay: Layout, what: str) -> None:
        self.used, self.lay, self.what, self.next = used, lay, what, lay.qmin

    def take(self) -> str:
        while self.next in self.used:
            self.next += 1
        if self.next > self.lay.qmax:
            raise ValidationError(
                f"the reserved {self.what} id range {self.lay.qmin}-{self.lay.qmax} is full; "
                "widen options.queue_ids"
            )
        self.used.add(self.next)
        return str(self.next)


def _ids_in(current: RouterState, kind_of_node: str) -> set[int]:
    used: set[int] = set()
    for obj in current.objects:
        for node in obj.object_id.split("|"):
            if f" {kind_of_node} " in node:
                tail = node.rsplit(" ", 1)[1]
                if tail.isdigit():
                    used.add(int(tail))
    return used


def wanted(
    lay: Layout,
    desired: Sequence[DesiredState],
    current: RouterState,
) -> tuple[dict[tuple[str, str], Want], list[str]]:
    """(kind, key) -> what the router should hold; and the usernames skipped (no IP)."""
    out: dict[tuple[str, str], Want] = {}
    skipped: list[str] = []
    g = lay.group
    out[("queue-type", QUEUE_TYPE)] = Want((f"{AQ} queue-type fq-codel {QUEUE_TYPE}",), {})
    out[("address-group", g)] = Want(
        (f"firewall group address-group {g}",),
        {f"firewall group address-group {g} description": "jasiyo: suspended customers"},
    )
    fw = f"firewall name {lay.firewall_name}"
    if lay.firewall_name.startswith(NAME_PREFIX):
        out[("firewall-name", lay.firewall_name)] = Want(
            (fw,), {f"{fw} default-action": "accept", f"{fw} description": "jasiyo: walled garden"}
        )
    for key, (off, desc) in FW_RULES.items():
        if key == "allow-pay-page" and not lay.pay_page:
            continue
        node = f"{fw} rule {lay.firewall_base + off}"
        f = {f"{node} description": desc, f"{node} source group address-group": g}
        if key == "allow-dns":
            f |= {f"{node} action": "accept", f"{node} protocol": "udp", f"{node} destination port": "53"}
        elif key == "allow-pay-page":
            f |= {f"{node} action": "accept", f"{node} destination address": str(lay.pay_page)}
        else:
            f |= {f"{node} action": "drop"}
        out[("firewall-rule", key)] = Want((node,), f)
    if lay.pay_page:
        node = f"service nat rule {lay.nat_rule}"
        f = {
            f"{node} description": "jasiyo: walled garden",
            f"{node} type": "destination",
            f"{node} protocol": "tcp",
            f"{node} destination port": "80",
            f"{node} source group address-group": g,
            f"{node} inside-address address": lay.pay_page,
            f"{node} inside-address port": str(lay.pay_page_port),
        }
        if lay.lan_interface:
            f[f"{node} inbound-interface"] = lay.lan_interface
        out[("nat", "walled-garden")] = Want((node,), f)

    queues = _Ids(_ids_in(current, "queue"), lay, "queue")
    matches = _Ids(_ids_in(current, "match"), lay, "filter match")

    def qid_of(kind: str, key: str) -> str | None:
        obj = current.managed(kind).get(key)
        return obj.object_id.rsplit(" ", 1)[1] if obj else None

    root = qid_of("root-queue", "root") or queues.take()
    rnode = f"{AQ} root queue {root}"
    out[("root-queue", "root")] = Want(
        (rnode,),
        {
            f"{rnode} attach-to": "global",
            f"{rnode} bandwidth": lay.root_bandwidth,
            f"{rnode} description": "jasiyo:root",
        },
    )
    seen: dict[str, str] = {}
    names: set[str] = set()
    shapers = current.managed("shaper")
    for d in desired:
        if d.username in names:
            raise ValidationError(f"subscriber {d.username!r} appears twice in the desired state")
        names.add(d.username)
        rate = rate_of(d)
        if not d.ip:
            skipped.append(d.username)
            continue
        if d.ip in seen:
            raise ValidationError(
                f"subscribers {seen[d.ip]!r} and {d.username!r} share the "
                f"address {d.ip}; EdgeOS identifies customers by address"
            )
        seen[d.ip] = d.username
        quote(f"jasiyo:branch={d.plan}/up {d.username}")  # refuse now what EdgeOS cannot hold
        branches = {}
        for way in ("up", "down"):
            bkey = f"{d.plan}/{way}"
            if ("branch", bkey) not in out:
                bid = qid_of("branch", bkey) or queues.take()
                bnode = f"{AQ} branch queue {bid}"
                out[("branch", bkey)] = Want(
                    (bnode,),
                    {
                        f"{bnode} bandwidth": lay.root_bandwidth,
                        f"{bnode} parent": root,
                        f"{bnode} description": f"jasiyo:branch={bkey}",
                    },
                )
            branches[way] = out[("branch", bkey)].nodes[0].rsplit(" ", 1)[1]
        have = node_ids(shapers[d.username]) if d.username in shapers else {}
        ids = {
            r: have.get(r) or (queues if r.endswith("leaf") else matches).take()
            for r in ("up-leaf", "down-leaf", "up-match", "down-match")
        }
        fields: dict[str, str] = {}
        nodes = []
        for way, bps, side in (("up", rate.rx, "source"), ("down", rate.tx, "destination")):
            leaf = f"{AQ} leaf queue {ids[f'{way}-leaf']}"
            match = f"{AQ} filters match {ids[f'{way}-match']}"
            nodes += [leaf, match]
            tag = f"jasiyo:{way}={d.username}"
            fields |= {
                f"{leaf} bandwidth": format_bandwidth(bps),
                f"{leaf} parent": branches[way],
                f"{leaf} queue-type": QUEUE_TYPE,
                f"{leaf} description": tag,
                f"{match} attach-to": root,
                f"{match} target": ids[f"{way}-leaf"],
                f"{match} ip {side} address": f"{d.ip}/32",
                f"{match} description": tag,
            }
        out[("shaper", d.username)] = Want(tuple(nodes), fields, d.username)
        if d.access != Access.ALLOW:
            out[("suspended", d.ip)] = Want(
                (f"firewall group address-group {g} address {d.ip}",), {}, d.username
            )
    return out, skipped


# ---------------------------------------------------------------------- the diff


def plan(
    lay: Layout, config: RouterConfig, desired: Sequence[DesiredState], current: RouterState
) -> tuple[Diff, list[str]]:
    """Pure: the ordered changes from ``current`` to ``desired``, and skipped usernames."""
    want, skipped = wanted(lay, desired, current)
    ups: list[tuple[int, int, Change]] = []
    removes: list[tuple[int, int, Change]] = []
    conflicts: list[Conflict] = []
    have: dict[tuple[str, str], RouterObject] = {}
    obj: RouterObject | None
    for seq, obj in enumerate(current.objects):
        if not obj.managed:
            continue
        if (obj.kind, obj.key) in have or (obj.kind, obj.key) not in want:
            reason = "duplicate" if (obj.kind, obj.key) in have else "not desired"
            removes.append(
                (
                    -RANK.get(obj.kind, 3),
                    seq,
                    Change(
                        Action.REMOVE,
                        obj.kind,
                        obj.key,
                        before=dict(obj.fields),
                        object_id=obj.object_id,
                        reason=reason,
                    ),
                )
            )
        else:
            have[(obj.kind, obj.key)] = obj
    fw_exists = lay.firewall_name.startswith(NAME_PREFIX) or (
        lay.firewall_name in current.unmanaged("firewall-name")
    )
    for seq, ((kind, key), w) in enumerate(want.items()):
        obj = have.get((kind, key))
        adopt = False
        if kind == "firewall-rule" and not fw_exists:
            conflicts.append(
                Conflict(
                    kind,
                    key,
                    f"firewall ruleset {lay.firewall_name} does not exist; create it or use a JASIYO_ name",
                )
            )
            continue
        if obj is None and kind in ("nat", "firewall-rule"):
            foreign = current.unmanaged(kind).get(key)
            if foreign is not None:
                if not config.adopt_existing:
                    conflicts.append(
                        Conflict(
                            kind,
                            key,
                            (
                                f"{foreign.object_id} already exists without a jasiyo: description; "
                                "move it, or choose another number in the router's options"
                            ),
                        )
                    )
                    continue
                obj, adopt = foreign, True
        target = "|".join(w.nodes)
        if obj is None:
            ups.append(
                (
                    RANK[kind],
                    seq,
                    Change(
                        Action.ADD,
                        kind,
                        key,
                        fields=dict(w.fields),
                        object_id=target,
                        subscriber=w.subscriber,
                        reason="missing",
                    ),
                )
            )
            continue
        delta = {p: v for p, v in w.fields.items() if norm(p, obj.fields.get(p, "")) != norm(p, v)}
        delta |= {p: "" for p in obj.fields if p not in w.fields}
        for node in w.nodes:  # a part of a shaper deleted by hand, or an emptied node
            if node not in obj.object_id.split("|") and not any(p.startswith(node + " ") for p in w.fields):
                delta[node] = FLAG
        if delta:
            ups.append(
                (
                    RANK[kind],
                    seq,
                    Change(
                        Action.UPDATE,
                        kind,
                        key,
                        fields=delta,
                        before={p: obj.fields.get(p, "") for p in delta},
                        object_id=target,
                        subscriber=w.subscriber,
                        reason="adopt" if adopt else "drift",
                    ),
                )
            )
    ups.sort(key=lambda t: (t[0], t[1]))
    removes.sort(key=lambda t: (t[0], t[1]))
    return Diff(tuple(c for *_, c in ups + removes), tuple(conflicts)), skipped


def commands(change: Change) -> list[str]:
    """The configuration commands (``set ...``/``delete ...``) that carry out ``change``."""
    nodes = (change.object_id or "").split("|")
    if change.action == Action.REMOVE:
        return [f"delete {join(n.split(' '))}" for n in nodes]
    out: list[str] = []
    if change.action == Action.ADD:
        for node in nodes:
            if not any(p.startswith(node + " ") for p in change.fields):
                out.append(f"set {join(node.split(' '))}")
    for path, val in change.fields.items():
        words = path.split(" ")
        if val == "":
            out.append(f"delete {join(words)}")
        elif val == FLAG:
            out.append(f"set {join(words)}")
        else:
            out.append(f"set {join([*words, val])}")
    return out
