"""POPs: which agent bills, reminds, enforces and reconciles which subscriber.

Each agent is one POP of its tenant, named by ``[agent] pop`` (else ``[agent] name``, else
the host name it was initialised on); the name is kept in ``meta['pop.name']``, which the
store's triggers read. A router belongs to the POP that added it (``routers.pop``). A
subscriber has a home router (``subscribers.home_router``: set with ``--router``, a CSV
``router`` column, or learned from its first accounting Start) and so a home POP
(``subscribers.home_pop``, the home router's POP, carried on the subscriber so that every
POP agrees even before the router has synced).

The rule: the billing clock, reminders, fair-usage throttle and router reconcile for a
subscriber run only at its home POP. Every POP still authenticates every subscriber, and a
roaming session is disconnected by the POP whose NAS holds it. A subscriber without a home
(or homed on a router from before POPs) is handled by every POP, as before POPs; and an
agent that is not enrolled in a cloud is the only POP there is and handles everyone.

A POP announces itself with a ``pop`` event (name, agent id); ``jasiyo pop list`` shows
the POPs and flags a name another agent claims. ``jasiyo pop retire NAME --to ROUTER``
hands every subscriber of a POP that is gone to a router of a POP that is not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from jasiyo.agent import popname
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import NotFound, ValidationError
from jasiyo.log import event, get_logger

log = get_logger(__name__)

NAME_KEY = popname.NAME_KEY


local = popname.local
owned_sql = popname.owned_sql


def owns(store: Store, username: str) -> bool:
    """Does this POP run the billing clock (reminders, throttle) for ``username``?"""
    row = store.one("SELECT home_pop FROM subscribers WHERE username = ?", (username,))
    me = local(store)
    return row is None or me is None or row["home_pop"] in (None, me)


def router_is_local(store: Store, pop: str | None) -> bool:
    """Does this POP drive a router whose ``routers.pop`` is ``pop``?"""
    me = local(store)
    return me is None or pop is None or pop == me


def homed_elsewhere(store: Store, router: str) -> set[str]:
    """Usernames whose home is a router other than ``router`` (not its to configure). A home
    on a router that was removed counts as none: such a subscriber is every router's."""
    rows = store.execute(
        "SELECT username FROM subscribers WHERE home_router IS NOT NULL AND home_router != ? "
        "AND home_router IN (SELECT name FROM routers)",
        (router,),
    ).fetchall()
    return {r[0] for r in rows}


def _materialize(store: Store, entity: str, key: str) -> None:
    from jasiyo.agent import fold

    fold.materialize(store, entity, key)


# ------------------------------------------------------------------ homes


def _router_pop(store: Store, router: str) -> str | None:
    row = store.one("SELECT pop FROM routers WHERE name = ?", (router,))
    if row is None:
        raise NotFound(f"no router named {router!r} (see `jasiyo router list`)")
    return row["pop"]


def set_home(
    store: Store, username: str, router: str | None, actor: str, *, how: str = "cli"
) -> dict[str, Any]:
    """Make ``router`` (None: no home) the subscriber's home; an event tells every POP."""
    with store.transaction():
        row = store.one("SELECT home_router, home_pop FROM subscribers WHERE username = ?", (username,))
        if row is None:
            raise NotFound(f"no subscriber named {username!r}")
        pop = _router_pop(store, router) if router else None
        if (row["home_router"], row["home_pop"]) == (router, pop):
            return {"username": username, "router": router, "pop": pop, "changed": False}
        store.execute(
            "UPDATE subscribers SET home_router = ?, home_pop = ?, updated_at = ? WHERE username = ?",
            (router, pop, store.now(), username),
        )
        store.emit("subscriber", username, "upsert", {"home_router": router, "home_pop": pop})
        store.audit(
            actor,
            "subscriber.home",
            f"subscriber:{username}",
            router=router,
            pop=pop,
            was_router=row["home_router"],
            was_pop=row["home_pop"],
            how=how,
        )
    event(log, "pop.home", user=username, router=router, pop=pop, how=how)
    return {
        "username": username,
        "router": router,
        "pop": pop,
        "changed": True,
        "from_router": row["home_router"],
        "from_pop": row["home_pop"],
    }


def move(store: Store, username: str, router: str, actor: str) -> dict[str, Any]:
    """Hand a subscriber over to ``router`` (and its POP).

    The old home stops billing it as soon as it hears of the move, the new one starts from
    what the synced invoices, paid-through time and ledger say; reminders already due stay
    the old home's. A cycle billed at both in the meantime is one charge (its charge is
    keyed by the cycle, see ``billing``), so nothing is charged twice.
    """
    return set_home(store, username, router, actor, how="move")


def learn_home(store: Store, username: str | None, nas_ip: str) -> bool:
    """On an accounting Start: a subscriber without a home gets the NAS's router as home.

    Called inside the accounting transaction; one indexed read when there is nothing to do.
    """
    if not username:
        return False
    row = store.one("SELECT home_router FROM subscribers WHERE username = ?", (username,))
    if row is None or row["home_router"] is not None:
        return False
    router = store.one("SELECT name, pop FROM routers WHERE nas_ip = ?", (nas_ip,))
    if router is None:
        return False
    store.execute(
        "UPDATE subscribers SET home_router = ?, home_pop = ?, updated_at = ? WHERE username = ?",
        (router["name"], router["pop"], store.now(), username),
    )
    store.emit("subscriber", username, "upsert", {"home_router": router["name"], "home_pop": router["pop"]})
    store.audit(
        "radius",
        "subscriber.home",
        f"subscriber:{username}",
        router=router["name"],
        pop=router["pop"],
        how="accounting",
    )
    return True


# ------------------------------------------------------------------ the POPs of a tenant


@dataclass(frozen=True, slots=True)
class Pop:
    name: str
    agent_id: str | None
    agent_name: str | None
    retired: bool
    retired_to: str | None
    routers: int
    subscribers: int
    this: bool
    #: Another agent announced this name after this one did (or: this agent's name taken).
    conflict: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_(store: Store) -> list[Pop]:
    me = store.meta(NAME_KEY)
    names = {
        r[0]
        for r in store.execute(
            "SELECT name FROM pops UNION SELECT pop FROM routers WHERE pop IS NOT NULL "
            "UNION SELECT home_pop FROM subscribers WHERE home_pop IS NOT NULL"
        )
    }
    from jasiyo.agent.invoices import code_of

    codes: dict[str, list[str]] = {}
    for name in names:
        codes.setdefault(code_of(name), []).append(name)
    out = []
    for name in sorted(names):
        row = store.one("SELECT * FROM pops WHERE name = ?", (name,)) or {}
        conflict = None
        twins = sorted(set(codes[code_of(name)]) - {name})
        if name == me and row.get("agent_id") and row["agent_id"] != store.agent_id:
            conflict = (
                f"agent {row['agent_id']} announced this POP name after this agent "
                "did: POP names must be unique in the tenant (set [agent] pop)"
            )
        elif twins:
            conflict = (
                f"its invoice numbers (INV-{code_of(name)}-...) are also those of POP "
                f"{', '.join(twins)}: give each POP its own [agent] pop"
            )
        out.append(
            Pop(
                name=name,
                agent_id=row.get("agent_id"),
                agent_name=row.get("agent_name"),
                retired=bool(row.get("retired")),
                retired_to=row.get("retired_to"),
                routers=store.scalar("SELECT count(*) FROM routers WHERE pop = ?", (name,)),
                subscribers=store.scalar("SELECT count(*) FROM subscribers WHERE home_pop = ?", (name,)),
                this=name == me,
                conflict=conflict,
            )
        )
    return out


def retire(store: Store, name: str, to_router: str, actor: str) -> dict[str, Any]:
    """A POP that is gone: every subscriber homed there moves to ``to_router``."""
    me = store.meta(NAME_KEY)
    with store.transaction():
        known = store.scalar(
            "SELECT 1 FROM pops WHERE name = ? UNION SELECT 1 FROM routers WHERE pop = ? "
            "UNION SELECT 1 FROM subscribers WHERE home_pop = ?",
            (name, name, name),
        )
        if not known:
            raise NotFound(f"no POP named {name!r} (see `jasiyo pop list`)")
        target = _router_pop(store, to_router)
        if target == name:
            raise ValidationError(f"router {to_router!r} belongs to the POP being retired")
        if name == me:
            raise ValidationError("this agent is that POP: retire it from another POP")
        users = [
            r[0]
            for r in store.execute(
                "SELECT username FROM subscribers WHERE home_pop = ? ORDER BY username", (name,)
            )
        ]
        for u in users:
            set_home(store, u, to_router, actor, how="retire")
        store.emit("pop", name, "upsert", {"retired": True, "retired_to": to_router})
        _materialize(store, "pop", name)
        store.audit(actor, "pop.retire", f"pop:{name}", to_router=to_router, moved=len(users))
    event(log, "pop.retired", pop=name, to_router=to_router, moved=len(users))
    return {"pop": name, "to_router": to_router, "to_pop": target, "moved": len(users)}


def adopt(store: Store, router: str, actor: str) -> dict[str, Any]:
    """This POP takes ``router`` over: a router from before POPs (no POP), or one of a POP
    that handed it on. Its homed subscribers follow it to this POP."""
    me = store.meta(NAME_KEY)
    if not me:
        raise ValidationError("this agent has no POP name yet; set [agent] pop")
    with store.transaction():
        old = _router_pop(store, router)
        if old == me:
            return {"router": router, "pop": me, "changed": False, "subscribers": 0}
        store.execute("UPDATE routers SET pop = ?, updated_at = ? WHERE name = ?", (me, store.now(), router))
        store.emit("router", router, "upsert", {"pop": me})
        users = [
            r[0]
            for r in store.execute(
                "SELECT username FROM subscribers WHERE home_router = ? ORDER BY username", (router,)
            )
        ]
        for u in users:
            set_home(store, u, router, actor, how="adopt")
        store.audit(actor, "router.adopt", f"router:{router}", pop=me, was=old, subscribers=len(users))
    event(log, "pop.adopted", router=router, pop=me, was=old, subscribers=len(users))
    return {"router": router, "pop": me, "from_pop": old, "changed": True, "subscribers": len(users)}


# ------------------------------------------------------------------ what a POP tells the others

#: The POP's published facts are rewritten at most this often (seconds), and only if changed.
PUBLISH_GAP = 300.0
_PUBLISHED = "pop.published"


def facts(store: Store, cfg: Config, now: float | None = None) -> dict[str, Any]:
    """What this POP publishes on its ``pop`` event for the dashboard: its agent, zone,
    currency (the one most of its plans use), SMS outbox counts and version. ``sms``:
    ``queued`` is what waits now; ``sent`` and ``failed`` are today's (local day)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from jasiyo import __version__

    tz = ZoneInfo(cfg.billing.timezone)
    now = store.now() if now is None else now
    midnight = datetime.fromtimestamp(now, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    day = midnight.timestamp()
    sms = (
        store.one(
            "SELECT COALESCE(sum(status IN ('queued', 'sending')), 0) AS queued, "
            "COALESCE(sum(status IN ('sent', 'delivered') AND sent_at >= ?), 0) AS sent, "
            "COALESCE(sum(status = 'failed' AND COALESCE(finished_at, created_at) >= ?), 0) AS failed "
            "FROM notifications",
            (day, day),
        )
        or {}
    )
    currency = store.scalar(
        "SELECT currency FROM plans GROUP BY currency ORDER BY count(*) DESC, currency LIMIT 1"
    )
    return {
        "agent_id": store.agent_id,
        "timezone": cfg.billing.timezone,
        "currency": currency,
        "sms": {k: int(sms.get(k) or 0) for k in ("queued", "sent", "failed")},
        "version": __version__,
    }


def publish(store: Store, cfg: Config, now: float | None = None) -> bool:
    """Look at this POP's facts (:func:`facts`) at most every :data:`PUBLISH_GAP` seconds and
    emit them if they changed. Nothing for a stand-alone agent. True if an event was written."""
    import json

    from jasiyo.agent import suspense_sync

    me = local(store)
    if me is None:
        return False
    now = store.now() if now is None else now
    last = json.loads(store.meta(_PUBLISHED) or "{}")
    if now - float(last.get("at") or 0) < PUBLISH_GAP:
        return False
    suspense_sync.backfill(store)  # unmatched payments kept before they were synced
    data = facts(store, cfg, now)
    changed = last.get("facts") != data
    with store.transaction():
        if changed:
            store.emit("pop", me, "upsert", data)
            _materialize(store, "pop", me)
        store.set_meta(_PUBLISHED, json.dumps({"at": now, "facts": data}, sort_keys=True))
    if not changed:
        return False
    event(log, "pop.published", pop=me, **{k: v for k, v in data.items() if k != "sms"})
    return True
