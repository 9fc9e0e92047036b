"""Usage that follows the customer: per-cycle usage summaries shared between POPs.

Raw accounting stays where it was recorded (it is large, and personal). What travels is
one ``usage`` event per subscriber, billing cycle and recording agent, carrying that
agent's totals for the cycle (input and output octets, session seconds): a state entity,
upserted again whenever the totals grow (:func:`publish`, every minute from the agent's
scheduler), so the latest summary replaces the earlier ones. A POP then counts, for a
subscriber's cycle, its own raw accounting plus every *other* agent's summary: quotas,
fair usage and data packages hold wherever the customer connects. (:func:`publish` says
how often.)

Summaries are keyed by the agent, not the POP: a POP rebuilt with ``agent restore
--from-cloud`` is a new agent whose raw accounting starts empty, and it counts its former
self's summary (restored from the log) like any other agent's, so the cycle's usage
survives the rebuild without being counted twice.
"""

from __future__ import annotations

import json

from jasiyo.agent import invoices
from jasiyo.agent.store import Store
from jasiyo.agent.usage import Usage, local_usage, remote_usage
from jasiyo.log import event, get_logger

log = get_logger(__name__)

_CURSOR_ID = "usage.accounting_id"
_DEFERRED = "usage.deferred"
#: How often the scheduler looks (seconds).
PUBLISH_EVERY = 60.0
#: A subscriber's summary is rewritten at most this often (seconds) ...
SUMMARY_GAP = 900.0
#: ... unless its cycle's usage at every POP has reached this share of its quota.
NEAR_QUOTA = 0.8
#: Subscribers per transaction.
BATCH = 200


def summary_key(username: str, cycle_start: float, agent: str) -> str:
    return f"{username}|{int(cycle_start)}|{agent}"


def _candidates(store: Store) -> tuple[list[str], int]:
    """Subscribers with accounting since the last run (by accounting row id, so a record
    that arrived late, or said it was delayed, is never skipped) plus those deferred."""
    last = int(store.meta(_CURSOR_ID) or 0)
    top = int(store.scalar("SELECT COALESCE(MAX(id), 0) FROM accounting") or 0)
    users = {r[0] for r in store.execute(
        "SELECT DISTINCT username FROM accounting WHERE id > ? AND id <= ? "
        "AND username IS NOT NULL", (last, top))}
    users |= set(json.loads(store.meta(_DEFERRED) or "[]"))
    return sorted(users), top


def publish(store: Store, now: float | None = None) -> int:
    """Emit a summary for subscribers whose usage here changed. Returns how many were written.

    A subscriber's summary is rewritten at most every :data:`SUMMARY_GAP` seconds, sooner
    when it is its cycle's first or the subscriber is near its quota (at
    :data:`NEAR_QUOTA` of it, counting every POP): the home POP then throttles within a
    minute, while a customer streaming all day costs a few events an hour, not one a
    minute. Superseded usage events are dropped from the local log once pushed (each
    summary is the whole record, so only the newest matters to the fold).

    Nothing is published by a stand-alone agent (no other POP to tell).
    """
    from jasiyo.agent import pops

    if pops.local(store) is None:
        return 0
    now = store.now() if now is None else now
    users, top = _candidates(store)
    written = 0
    deferred: list[str] = []
    # In batches, each its own short transaction: RADIUS accounting shares the write lock.
    for i in range(0, len(users), BATCH):
        with store.transaction():
            for username in users[i:i + BATCH]:
                w = _publish_one(store, username, now)
                written += w is True
                if w is None:
                    deferred.append(username)
    with store.transaction():
        store.set_meta(_CURSOR_ID, str(top))
        store.set_meta(_DEFERRED, json.dumps(deferred))
        prune_superseded(store)
    if written:
        event(log, "usage.published", summaries=written, deferred=len(deferred))
    return written


def _publish_one(store: Store, username: str, now: float) -> bool | None:
    """True: written; False: nothing to write; None: changed, but deferred."""
    from jasiyo.agent import fold, pops

    sub = store.one("SELECT s.id, p.quota_bytes FROM subscribers s JOIN plans p "
                    "ON p.id = s.plan_id WHERE s.username = ?", (username,))
    if sub is None:
        return False
    cycle = invoices.current(store, sub["id"], now)
    if cycle is None:
        return False
    start = float(cycle["cycle_start"])
    mine = local_usage(store, username, start)
    key = summary_key(username, start, store.agent_id)
    old = store.one("SELECT input_octets, output_octets, session_time, updated_at "
                    "FROM usage_summaries WHERE key = ?", (key,))
    if old is not None and Usage(old["input_octets"], old["output_octets"],
                                 old["session_time"]) == mine:
        return False
    quota = sub["quota_bytes"]
    near = bool(quota) and (
        mine.octets + remote_usage(store, username, start).octets >= NEAR_QUOTA * quota)
    if old is not None and not near and now - old["updated_at"] < SUMMARY_GAP:
        return None
    store.emit("usage", key, "upsert", {
        "username": username, "cycle_start": start, "agent": store.agent_id,
        "pop": store.meta(pops.NAME_KEY), "input_octets": mine.input_octets,
        "output_octets": mine.output_octets, "session_time": mine.session_time})
    fold.materialize(store, "usage", key)
    return True


def prune_superseded(store: Store) -> int:
    """Drop usage events a newer one of the same summary replaces, once pushed. Safe for a
    state entity whose every upsert carries the whole record: the fold of what is left is
    the same, and a replay of a dropped event is older than what is kept."""
    cur = store.execute(
        "DELETE FROM events WHERE entity = 'usage' AND pushed_at IS NOT NULL AND EXISTS ("
        "  SELECT 1 FROM events e WHERE e.entity = 'usage' AND e.key = events.key "
        "  AND (e.hlc > events.hlc OR (e.hlc = events.hlc AND e.id > events.id)))")
    return cur.rowcount
