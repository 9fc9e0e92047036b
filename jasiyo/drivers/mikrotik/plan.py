"""What the agent keeps on a RouterOS router, and the pure diff from desired to current.

Menus managed (``Kind``), by mode:

- always: ``/queue/simple`` (static-IP customers' rate), ``/ip/firewall/address-list``
  entries in the suspended list (customers with a known IP who are not allowed), and the
  walled garden: ``/ip/firewall/nat`` redirect of HTTP to the pay page and
  ``/ip/firewall/filter`` accept DNS, accept-to-pay-page then drop, for the suspended list;
- with the router option ``portal_url`` (``router add --portal-url``): the hotspot's walled
  garden, ``/ip/hotspot/walled-garden`` (the portal's and payment pages' hosts) and
  ``/ip/hotspot/walled-garden/ip`` (the portal's address), so a device that is not logged
  in can reach the portal and pay;
- ``mode="api"`` also: ``/ppp/secret`` and ``/ip/hotspot/user`` per customer, and one
  ``/ppp/profile`` / ``/ip/hotspot/user/profile`` per plan carrying the plan's rate limit,
  plus a suspended profile (named after the address list) whose ``address-list`` puts every
  suspended customer's dynamic address in the walled garden.

Every object the agent creates carries the comment ``jasiyo:<tag>=<key>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

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
from jasiyo.errors import ValidationError
from jasiyo.network import Access, DesiredState, Rate, Service, parse_bps
from jasiyo.portal.hotspot import walled_garden_hosts


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Kind:
    """One RouterOS menu the driver manages."""

    name: str
    menu: str
    tag: str  # comment is "jasiyo:<tag>=<key>"
    natural: str | None  # property an untagged object could collide on
    fields: tuple[str, ...]  # properties the agent owns (read with .proplist)
    rank: int  # apply order: lower first for add/update, reversed for remove
    api_only: bool = False
    by_list: bool = False  # read only entries of our address list
    ordered: bool = False  # rule order matters: never pipeline these


KINDS: tuple[Kind, ...] = (
    Kind(
        "ppp-profile",
        "/ppp/profile",
        "plan",
        "name",
        ("name", "rate-limit", "address-list"),
        0,
        api_only=True,
    ),
    Kind(
        "hotspot-profile",
        "/ip/hotspot/user/profile",
        "plan",
        "name",
        ("name", "rate-limit", "address-list"),
        0,
        api_only=True,
    ),
    Kind(
        "ppp-secret",
        "/ppp/secret",
        "sub",
        "name",
        ("name", "password", "profile", "service", "remote-address", "disabled"),
        1,
        api_only=True,
    ),
    Kind(
        "hotspot-user",
        "/ip/hotspot/user",
        "sub",
        "name",
        ("name", "password", "profile", "address", "disabled"),
        1,
        api_only=True,
    ),
    Kind(
        "queue",
        "/queue/simple",
        "sub",
        "name",
        (
            "name",
            "target",
            "max-limit",
            "burst-limit",
            "burst-threshold",
            "burst-time",
            "limit-at",
            "disabled",
        ),
        1,
    ),
    Kind(
        "address-list",
        "/ip/firewall/address-list",
        "sub",
        "address",
        ("list", "address", "disabled"),
        1,
        by_list=True,
    ),
    Kind(
        "nat",
        "/ip/firewall/nat",
        "wg",
        None,
        (
            "chain",
            "action",
            "protocol",
            "dst-port",
            "src-address-list",
            "to-addresses",
            "to-ports",
            "disabled",
        ),
        2,
        by_list=True,
        ordered=True,
    ),
    Kind(
        "filter",
        "/ip/firewall/filter",
        "wg",
        None,
        ("chain", "action", "protocol", "dst-port", "src-address-list", "dst-address", "disabled"),
        2,
        by_list=True,
        ordered=True,
    ),
    Kind(
        "hotspot-garden", "/ip/hotspot/walled-garden", "portal", None, ("dst-host", "action", "disabled"), 2
    ),
    Kind(
        "hotspot-garden-ip",
        "/ip/hotspot/walled-garden/ip",
        "portal",
        None,
        ("dst-address", "action", "disabled"),
        2,
    ),
)
KIND_BY_NAME = {k.name: k for k in KINDS}
#: Properties that may be absent: a desired "" means "unset it".
OPTIONAL = {
    "remote-address",
    "address",
    "rate-limit",
    "address-list",
    "to-addresses",
    "to-ports",
    "protocol",
    "dst-port",
    "dst-address",
}


def active_kinds(config: RouterConfig) -> tuple[Kind, ...]:
    return tuple(k for k in KINDS if config.mode == "api" or not k.api_only)


def tag_of(kind: Kind, key: str) -> str:
    return f"{TAG_PREFIX}{kind.tag}={key}"


def parse_tag(kind: Kind, comment: str) -> str | None:
    """The key in a comment ``jasiyo:<tag>=<key> [anything]``, or None if not ours."""
    if not comment.startswith(TAG_PREFIX):
        return None
    head = comment[len(TAG_PREFIX) :].split(None, 1)[0] if comment[len(TAG_PREFIX) :] else ""
    tag, sep, key = head.partition("=")
    return key if sep and tag == kind.tag and key else None


# ---------------------------------------------------------------------- value normalising

_PAIR_RATES = {"max-limit", "burst-limit", "burst-threshold", "limit-at"}


def _pair(value: str) -> list[str]:
    parts = value.split("/")
    return parts * 2 if len(parts) == 1 else parts


@lru_cache(maxsize=4096)
def norm(field: str, value: str | None) -> str:
    """Compare-form of a property, so ``10M/10M`` equals ``10000000/10000000``."""
    if value is None or value == "":
        return ""
    if value in ("yes", "true"):
        return "true"
    if value in ("no", "false"):
        return "false"
    try:
        if field in _PAIR_RATES:
            return "/".join(str(parse_bps(p)) for p in _pair(value))
        if field == "burst-time":
            return "/".join(p.rstrip("s") for p in _pair(value))
    except ValidationError:
        return value
    if field == "target":
        return ",".join(t if "/" in t else f"{t}/32" for t in value.split(","))
    return value


def queue_fields(rate_limit: str) -> dict[str, str]:
    """Simple-queue properties for a ``Mikrotik-Rate-Limit`` value (rx/tx = upload/download)."""
    return dict(_queue_fields(rate_limit))


@lru_cache(maxsize=1024)  # a few distinct plan rates, thousands of subscribers
def _queue_fields(rate_limit: str) -> tuple[tuple[str, str], ...]:
    parts = rate_limit.split()
    if not parts or len(parts) > 6:
        raise ValidationError(f"bad rate limit {rate_limit!r}: expected 'RX/TX [burst...]'")
    for p in parts[:3] + parts[5:6]:
        Rate.parse(p)
    fields = {
        "max-limit": parts[0],
        "burst-limit": "0/0",
        "burst-threshold": "0/0",
        "burst-time": "0s/0s",
        "limit-at": "0/0",
    }
    if len(parts) > 1:
        fields["burst-limit"] = parts[1]
        fields["burst-threshold"] = parts[2] if len(parts) > 2 else parts[0]
        secs = _pair(parts[3]) if len(parts) > 3 else ["1", "1"]
        fields["burst-time"] = "/".join(f"{s.rstrip('s')}s" for s in secs)
    if len(parts) > 5:
        fields["limit-at"] = parts[5]
    return tuple(fields.items())


# ---------------------------------------------------------------------- desired objects

Wanted = dict[tuple[str, str], tuple[dict[str, str], str | None]]


def wanted_objects(config: RouterConfig, desired: Sequence[DesiredState]) -> Wanted:
    """(kind, key) -> (properties, subscriber) for everything the router should have."""
    out: Wanted = {}
    seen: set[str] = set()
    alist = config.address_list
    for d in desired:
        if d.username in seen:
            raise ValidationError(f"subscriber {d.username!r} appears twice in the desired state")
        seen.add(d.username)
        queue_fields(d.rate_limit)  # validates the rate before anything is planned
        allowed = d.access == Access.ALLOW
        if config.mode == "api" and d.service in (Service.PPPOE, Service.HOTSPOT):
            ppp = d.service == Service.PPPOE
            pkind = "ppp-profile" if ppp else "hotspot-profile"
            profile = d.plan if allowed else alist
            out.setdefault(
                (pkind, profile),
                (
                    {"name": profile, "rate-limit": d.rate_limit, "address-list": "" if allowed else alist},
                    None,
                ),
            )
            acct = {
                "name": d.username,
                "profile": profile,
                "disabled": "true" if d.access == Access.REJECT else "false",
            }
            if d.password is not None:
                acct["password"] = d.password
            if ppp:
                acct["service"] = "pppoe"
                acct["remote-address"] = d.ip or ""
            else:
                acct["address"] = d.ip or ""
            out[("ppp-secret" if ppp else "hotspot-user", d.username)] = (acct, d.username)
        if d.service == Service.STATIC:
            if not d.ip:
                raise ValidationError(f"static subscriber {d.username!r} has no IP address")
            out[("queue", d.username)] = (
                {"name": d.username, "target": d.ip, "disabled": "false", **queue_fields(d.rate_limit)},
                d.username,
            )
        if not allowed and d.ip:
            out[("address-list", d.username)] = (
                {"list": alist, "address": d.ip, "disabled": "false"},
                d.username,
            )
    # The walled garden exists once, whether or not anyone is suspended right now.
    if config.pay_page:
        out[("nat", "redirect")] = (
            {
                "chain": "dstnat",
                "action": "dst-nat",
                "protocol": "tcp",
                "dst-port": "80",
                "src-address-list": alist,
                "to-addresses": config.pay_page,
                "to-ports": str(config.pay_page_port),
                "disabled": "false",
            },
            None,
        )
        out[("filter", "allow-pay-page")] = (
            {
                "chain": "forward",
                "action": "accept",
                "src-address-list": alist,
                "dst-address": config.pay_page,
                "disabled": "false",
            },
            None,
        )
        # Without DNS the browser never makes the HTTP request the NAT rule redirects.
        for proto in ("udp", "tcp"):
            out[("filter", f"allow-dns-{proto}")] = (
                {
                    "chain": "forward",
                    "action": "accept",
                    "protocol": proto,
                    "dst-port": "53",
                    "src-address-list": alist,
                    "dst-address": "",
                    "disabled": "false",
                },
                None,
            )
    portal = config.options.get("portal_url", "")
    if portal:
        extra = tuple(u for u in config.options.get("payment_hosts", "").split(",") if u)
        for host in walled_garden_hosts(portal, tuple(f"https://{h}" for h in extra)):
            out[("hotspot-garden", host)] = ({"dst-host": host, "action": "allow", "disabled": "false"}, None)
            if _is_ip(host):
                out[("hotspot-garden-ip", host)] = (
                    {"dst-address": host, "action": "accept", "disabled": "false"},
                    None,
                )
    out[("filter", "drop")] = (
        {
            "chain": "forward",
            "action": "drop",
            "src-address-list": alist,
            "dst-address": "",
            "disabled": "false",
        },
        None,
    )
    return out


# ---------------------------------------------------------------------- the diff


def plan(config: RouterConfig, desired: Sequence[DesiredState], current: RouterState) -> Diff:
    """Pure: the ordered changes from ``current`` to ``desired`` (see RouterDriver.plan)."""
    wanted: dict[str, dict[str, tuple[dict[str, str], str | None]]] = {}
    for (kname, key), value in wanted_objects(config, desired).items():
        wanted.setdefault(kname, {})[key] = value
    ups: list[tuple[int, int, Change]] = []
    removes: list[tuple[int, int, Change]] = []
    conflicts: list[Conflict] = []
    seq = 0
    for kind in active_kinds(config):
        have: dict[str, RouterObject] = {}
        obj: RouterObject | None
        for obj in current.objects:
            if obj.kind != kind.name or not obj.managed:
                continue
            if obj.key in have or obj.key not in wanted.get(kind.name, {}):
                seq += 1
                removes.append(
                    (
                        -kind.rank,
                        seq,
                        Change(
                            Action.REMOVE,
                            kind.name,
                            obj.key,
                            before=dict(obj.fields),
                            object_id=obj.object_id,
                            reason="duplicate" if obj.key in have else "not desired",
                        ),
                    )
                )
                continue
            have[obj.key] = obj
        foreign = current.unmanaged(kind.name)
        for key, (fields, sub) in wanted.get(kind.name, {}).items():
            seq += 1
            obj = have.get(key)
            adopt = False
            if obj is None and kind.natural and fields.get(kind.natural) in foreign:
                obj = foreign[fields[kind.natural]]
                if not config.adopt_existing:
                    conflicts.append(
                        Conflict(
                            kind.name,
                            key,
                            (
                                f"{kind.menu} already has an untagged item with "
                                f"{kind.natural}={fields[kind.natural]}; import it or tag it "
                                f"'{tag_of(kind, key)}'"
                            ),
                        )
                    )
                    continue
                adopt = True
            if (
                obj is not None
                and not adopt
                and kind.natural
                and kind.natural != "name"
                and norm(kind.natural, obj.fields.get(kind.natural))
                != norm(kind.natural, fields.get(kind.natural))
            ):
                # An entry moving to another address: remove + add rather than set, so that
                # two subscribers swapping addresses never collide on the way.
                removes.append(
                    (
                        -kind.rank,
                        seq,
                        Change(
                            Action.REMOVE,
                            kind.name,
                            key,
                            before=dict(obj.fields),
                            object_id=obj.object_id,
                            subscriber=sub,
                            reason="address changed",
                        ),
                    )
                )
                obj = None
            if obj is None:
                add = {k: v for k, v in fields.items() if v != ""}
                add["comment"] = tag_of(kind, key)
                if kind.name == "filter" and key != "drop" and "drop" in have:
                    # A new rule lands at the end of the chain, below our drop: move it up.
                    add["place-before"] = have["drop"].object_id
                ups.append(
                    (
                        kind.rank,
                        seq,
                        Change(Action.ADD, kind.name, key, fields=add, subscriber=sub, reason="missing"),
                    )
                )
                continue
            delta = {k: v for k, v in fields.items() if norm(k, obj.fields.get(k)) != norm(k, v)}
            if adopt:
                delta["comment"] = tag_of(kind, key)
            if delta:
                ups.append(
                    (
                        kind.rank,
                        seq,
                        Change(
                            Action.UPDATE,
                            kind.name,
                            key,
                            fields=delta,
                            before={k: obj.fields.get(k, "") for k in delta},
                            object_id=obj.object_id,
                            subscriber=sub,
                            reason="adopt" if adopt else "drift",
                        ),
                    )
                )
    # Removes of accounts, queues, entries and rules go first, so an address or name moving
    # from one subscriber to another is free before it is taken; profiles are removed last,
    # after the accounts that used them have moved.
    order = [(0 if -rank > 0 else 2, rank, n, c) for rank, n, c in removes]
    order += [(1, rank, n, c) for rank, n, c in ups]
    order.sort(key=lambda t: t[:3])
    return Diff(tuple(t[3] for t in order), tuple(conflicts))


def phases(diff: Diff) -> list[list[Change]]:
    """Groups of changes that may be sent together (pipelined): same action and rank.

    Firewall rules go one per group: a router may run pipelined commands in any order, and
    the accept-to-pay-page rule must stay above the drop rule.
    """
    out: list[list[Change]] = []
    last: tuple[bool, int] | None = None
    for change in diff.changes:
        kind = KIND_BY_NAME[change.kind]
        key = (change.action == Action.REMOVE, kind.rank)
        if key != last or kind.ordered:
            out.append([])
            last = key
        out[-1].append(change)
    return out


def sentences(kind: Kind, change: Change) -> list[tuple[str, list[str]]]:
    """The API commands that carry out one change (an update that clears fields adds an
    ``unset``)."""
    if change.action == Action.ADD:
        return [(f"{kind.menu}/add", [f"={k}={v}" for k, v in change.fields.items()])]
    if change.action == Action.REMOVE:
        return [(f"{kind.menu}/remove", [f"=.id={change.object_id}"])]
    out: list[tuple[str, list[str]]] = []
    sets = {k: v for k, v in change.fields.items() if v != ""}
    unsets = [k for k, v in change.fields.items() if v == ""]
    if sets:
        out.append(
            (f"{kind.menu}/set", [f"=.id={change.object_id}", *(f"={k}={v}" for k, v in sets.items())])
        )
    for name in unsets:  # RouterOS unsets one property per command
        out.append((f"{kind.menu}/unset", [f"=.id={change.object_id}", f"=value-name={name}"]))
    return out
