"""Usage that follows the customer: per-cycle usage summaries shared between POPs.

Raw accounting stays where it was recorded (it is large, and personal). What travels is
one ``usage`` event per subscriber, billing cycle and recording agent, carrying that
agent's totals for the cycle (input and output octets, session seconds): a state entity,
upserted again whenever the totals grow (:func:`publish`, every minute from the agent's
scheduler), so the latest summary replaces the earlier ones. A POP then counts, for a
subscriber's cycle, its own raw accounting plus every *other* agent's summary: quotas,
fair usage and data packages hold wherever the customer connects.

Summaries are keyed by the agent, not the POP: a POP rebuilt with ``agent restore
--from-cloud`` is a new agent whose raw accounting starts empty, and it counts its former
self's summary (restored from the log) like any other agent's, so the cycle's usage
survives the rebuild without being counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from jasiyo.agent import invoices
from jasiyo.agent.store import Store
from jasiyo.log import event, get_logger

log = get_logger(__name__)

_CURSOR = "usage.published_at"
#: How often the scheduler publishes (seconds): quotas lag across POPs by at most this plus
#: a sync round trip.
PUBLISH_EVERY = 60.0
#: Cycle starts match within this many seconds (they are the same synced invoice value).
_SLACK = 1.0


@dataclass(frozen=True, slots=True)
class Usage:
    input_octets: int = 0
    output_octets: int = 0
    session_time: int = 0

    @property
    def octets(self) -> int:
        return self.input_octets + self.output_octets

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_octets + other.input_octets,
                     self.output_octets + other.output_octets,
                     self.session_time + other.session_time)


def local_usage(store: Store, username: str, start: float) -> Usage:
    """This agent's raw accounting for ``username`` since ``start`` (what it had counted
    before ``start`` subtracted for sessions that began earlier)."""
    row = store.one(
        "SELECT COALESCE(SUM(r.input_octets - COALESCE((SELECT MAX(a.input_octets) "
        "  FROM accounting a WHERE a.nas_ip = r.nas_ip AND a.acct_session_id = "
        "  r.acct_session_id AND a.received_at < ?), 0)), 0) AS i, "
        "COALESCE(SUM(r.output_octets - COALESCE((SELECT MAX(a.output_octets) "
        "  FROM accounting a WHERE a.nas_ip = r.nas_ip AND a.acct_session_id = "
        "  r.acct_session_id AND a.received_at < ?), 0)), 0) AS o, "
        "COALESCE(SUM(r.session_time - COALESCE((SELECT MAX(a.session_time) "
        "  FROM accounting a WHERE a.nas_ip = r.nas_ip AND a.acct_session_id = "
        "  r.acct_session_id AND a.received_at < ?), 0)), 0) AS t "
        "FROM radius_sessions r WHERE r.username = ? AND r.last_update_at >= ?",
        (start, start, start, username, start))
    assert row is not None
    return Usage(int(row["i"]), int(row["o"]), int(row["t"]))


def remote_usage(store: Store, username: str, start: float) -> Usage:
    """What other agents reported for ``username``'s cycle starting at ``start``."""
    row = store.one(
        "SELECT COALESCE(SUM(input_octets), 0) AS i, COALESCE(SUM(output_octets), 0) AS o, "
        "COALESCE(SUM(session_time), 0) AS t FROM usage_summaries WHERE username = ? "
        "AND cycle_start BETWEEN ? AND ? AND agent != ?",
        (username, start - _SLACK, start + _SLACK, store.agent_id))
    assert row is not None
    return Usage(int(row["i"]), int(row["o"]), int(row["t"]))


def cycle_total(store: Store, username: str, start: float) -> Usage:
    """Usage in the cycle from ``start``, at every POP."""
    return local_usage(store, username, start) + remote_usage(store, username, start)


def summary_key(username: str, cycle_start: float, agent: str) -> str:
    return f"{username}|{int(cycle_start)}|{agent}"


def publish(store: Store, now: float | None = None) -> int:
    """Emit a summary for every subscriber whose local sessions moved since the last run
    and whose totals changed. Returns how many summaries were written.

    Nothing is published by a stand-alone agent (no other POP to tell).
    """
    from jasiyo.agent import apply, pops

    if pops.local(store) is None:
        return 0
    now = store.now() if now is None else now
    since = float(store.meta(_CURSOR) or 0)
    users = [r[0] for r in store.conn.execute(
        "SELECT DISTINCT username FROM radius_sessions WHERE last_update_at >= ?", (since,))]
    written = 0
    with store.transaction():
        for username in users:
            sub_id = store.scalar("SELECT id FROM subscribers WHERE username = ?", (username,))
            if sub_id is None:
                continue
            cycle = invoices.current(store, sub_id, now)
            if cycle is None:
                continue
            start = float(cycle["cycle_start"])
            mine = local_usage(store, username, start)
            key = summary_key(username, start, store.agent_id)
            old = store.one("SELECT input_octets, output_octets, session_time FROM "
                            "usage_summaries WHERE key = ?", (key,))
            if old is not None and Usage(**old) == mine:
                continue
            store.emit("usage", key, "upsert", {
                "username": username, "cycle_start": start, "agent": store.agent_id,
                "pop": store.meta(pops.NAME_KEY), "input_octets": mine.input_octets,
                "output_octets": mine.output_octets, "session_time": mine.session_time})
            apply.materialize(store, "usage", key)
            written += 1
        store.set_meta(_CURSOR, repr(now))
    if written:
        event(log, "usage.published", summaries=written)
    return written
