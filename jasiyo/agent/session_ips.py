"""Addresses of dynamic-IP customers, learned from accounting, for drivers that work by IP.

An EdgeRouter shapes (advanced-queue filters) and fences (the suspended address-group) a
customer by address. A static customer's address is in the store; a dynamic PPPoE
customer's is only known once the router reports the session (Framed-IP-Address in its
accounting). :func:`with_session_addresses` fills it in, and
:func:`queue_address_reconcile` asks for a reconcile of the router when such an address
appears or goes away, so the shaper and the wall follow the session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from jasiyo.agent.store import Store
from jasiyo.network import DesiredState, Service

#: Drivers that identify customers by address (and so need dynamic sessions' addresses).
BY_ADDRESS = frozenset({"ubiquiti", "edgeos"})


def with_session_addresses(store: Store, states: Sequence[DesiredState], nas_ip: str) -> list[DesiredState]:
    """``states`` with each dynamic PPPoE subscriber that has an active session on the NAS
    at ``nas_ip`` given that session's address (the newest, if several). Subscribers with
    an address of their own, and those offline, are left as they are; an address two
    open sessions claim goes to the newer one."""
    rows = store.all(
        "SELECT username, framed_ip FROM radius_sessions WHERE nas_ip = ? AND status = "
        "'active' AND framed_ip IS NOT NULL ORDER BY started_at",
        (nas_ip,),
    )
    # An address is one customer's: a session the NAS never reported closed must not keep
    # the address the NAS has since given someone else, nor shadow a static customer's.
    holder = {r["framed_ip"]: r["username"] for r in rows}  # the newest session wins
    for s in states:
        if s.ip is not None:
            holder.pop(s.ip, None)
    address = {user: ip for ip, user in holder.items()}
    if not address:
        return list(states)
    return [
        replace(s, ip=address[s.username])
        if s.ip is None and s.service is Service.PPPOE and s.username in address
        else s
        for s in states
    ]


_BY_ADDRESS_ROUTERS = (
    f"FROM routers WHERE driver IN ({', '.join('?' * len(BY_ADDRESS))}) "
    "AND username IS NOT NULL AND password_enc IS NOT NULL"
)


def address_nases(store: Store) -> frozenset[str]:
    """The NAS addresses :func:`queue_address_reconcile` queues reconciles for: routers
    whose driver works by address and whose credentials the agent has. The accounting
    writer reads this once per change of ``auth_rev`` (any change to routers moves it)."""
    rows = store.all(f"SELECT nas_ip {_BY_ADDRESS_ROUTERS}", tuple(sorted(BY_ADDRESS)))
    return frozenset(r["nas_ip"] for r in rows)


def queue_address_reconcile(store: Store, nas_ip: str, now: float, reason: str) -> None:
    """Queue a reconcile of the router at ``nas_ip`` if its driver works by address and
    the agent has its credentials (at most one pending per router, as everywhere). Runs in
    the caller's transaction."""
    store.execute(
        "INSERT OR IGNORE INTO enforce_jobs (username, action, router, reason, "
        f"next_attempt_at, created_at) SELECT '*', 'reconcile', name, ?, ?, ? {_BY_ADDRESS_ROUTERS} "
        "AND nas_ip = ?",
        (reason, now, now, *sorted(BY_ADDRESS), nas_ip),
    )
