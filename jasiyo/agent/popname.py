"""This agent's POP name, kept in the store for its triggers, and which subscribers it
bills (see :mod:`.pops`).

Apart from :mod:`.pops` because :meth:`Store.open` records the name and the billing clock
and quota checks ask who is theirs: this module needs nothing of the agent but the store it
is given.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from jasiyo.config import Config
from jasiyo.log import event, get_logger

if TYPE_CHECKING:
    from jasiyo.agent.store import Store

log = get_logger(__name__)

NAME_KEY = "pop.name"
ANNOUNCED_KEY = "pop.announced"


def local(store: Store) -> str | None:
    """This POP's name, or None when the agent is stand-alone (it then handles everyone)."""
    if not store.meta("sync.tenant_id"):
        return None
    return store.meta(NAME_KEY)


def owned_sql(alias: str = "s") -> str:
    """A WHERE fragment (two ``?``, both :func:`local`) for subscribers this POP bills:
    homed here, homeless, or every one when stand-alone."""
    return f"(? IS NULL OR {alias}.home_pop IS NULL OR {alias}.home_pop = ?)"


def pop_name(cfg: Config, store: Store | None = None) -> str:
    """This agent's POP name from the config (``[agent] pop``, else ``name``, else host)."""
    name = cfg.agent.pop or cfg.agent.name
    if not name and store is not None:
        name = store.meta("agent_name") or ""
    return name or socket.gethostname()


def ensure(store: Store, cfg: Config) -> str:
    """Record this POP's name in the store if it is new or changed, and, once the agent is
    enrolled in a cloud, announce it to the other POPs (a ``pop`` event and its row).

    Cheap when nothing changed (three reads), so every :meth:`Store.open` calls it. A
    stand-alone agent writes no event (it is the only POP there is).
    """
    name = pop_name(cfg, store)
    old = store.meta(NAME_KEY)
    announce = bool(store.meta("sync.tenant_id")) and store.meta(ANNOUNCED_KEY) != name
    if (old == name and not announce) or not store.agent_id:
        return name
    with store.transaction():
        store.set_meta(NAME_KEY, name)
        if announce:
            store.set_meta(ANNOUNCED_KEY, name)
            agent_name = store.meta("agent_name") or name
            store.emit("pop", name, "upsert", {
                "agent_id": store.agent_id, "agent_name": agent_name, "retired": False})
            # The row as the fold makes it: this event is the newest of its key.
            now = store.now()
            store.execute(
                "INSERT INTO pops (name, agent_id, agent_name, retired, created_at, updated_at) "
                "VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                "agent_id = excluded.agent_id, agent_name = excluded.agent_name, retired = 0, "
                "updated_at = excluded.updated_at", (name, store.agent_id, agent_name, now, now))
    if old and old != name:
        event(log, "pop.renamed", level=30, old=old, new=name,
              note=f"subscribers homed at {old!r} are not billed here any more; hand them "
                   f"over with `jasiyo pop retire {old} --to ROUTER`")
    return name
