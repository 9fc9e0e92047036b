"""Data usage per billing cycle, from accounting, and the fair-usage throttle.

Usage in a cycle is the traffic (input + output octets, gigawords included) of every
session seen during it, minus what a session that began before the cycle had already
counted then (its last accounting record received before the cycle start), at every
POP: this agent's accounting plus the summaries other agents published for the cycle
(:mod:`.usage_sync`). When a
quota plan's usage reaches ``quota_bytes``, ``subscribers.fup_active`` is set and the
desired rate becomes the plan's fair-usage rate (a store trigger queues the CoA). A new
cycle (renewal or invoice) lifts it again.
"""

from __future__ import annotations

from dataclasses import dataclass

from jasiyo.agent import invoices, popname
from jasiyo.agent.store import Store
from jasiyo.log import event, get_logger

log = get_logger(__name__)

_CURSOR = "billing.quota_checked_at"
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




def cycle_usage(store: Store, username: str, start: float) -> int:
    """Octets ``username`` used since ``start`` (both directions), at every POP: this
    agent's accounting plus the other agents' summaries (:mod:`.usage_sync` shares them)."""
    return _local_octets(store, username, start) + remote_usage(store, username, start).octets


def _local_octets(store: Store, username: str, start: float) -> int:
    return int(store.scalar(
        "SELECT COALESCE(SUM(r.input_octets + r.output_octets - COALESCE(("
        "  SELECT MAX(a.input_octets + a.output_octets) FROM accounting a"
        "  WHERE a.nas_ip = r.nas_ip AND a.acct_session_id = r.acct_session_id"
        "  AND a.received_at < ?), 0)), 0) "
        "FROM radius_sessions r WHERE r.username = ? AND r.last_update_at >= ?",
        (start, username, start),
    ))


def check_quotas(store: Store, now: float) -> int:
    """Turn the throttle on for quota subscribers whose cycle usage reached the quota.

    Looks only at subscribers with sessions updated since the last check (an indexed
    range), so the cost follows accounting traffic, not the number of subscribers.
    Returns how many were throttled.
    """
    since = float(store.meta(_CURSOR) or 0)
    me = popname.local(store)
    # Subscribers homed here only (the home POP throttles), with usage that moved here or
    # was reported by another POP since the last check.
    rows = store.all(
        "SELECT s.id, s.username, s.phone, s.sms_consent, p.name AS plan, p.quota_bytes "
        "FROM subscribers s JOIN plans p ON p.id = s.plan_id "
        "WHERE p.quota_bytes IS NOT NULL AND s.fup_active = 0 "
        f"AND s.status IN ('active', 'grace') AND {popname.owned_sql('s')} AND s.username IN ("
        "  SELECT username FROM radius_sessions WHERE last_update_at >= ? "
        "  UNION SELECT username FROM usage_summaries WHERE updated_at >= ?)",
        (me, me, since, since),
    )
    throttled = 0
    with store.transaction():
        for row in rows:
            cycle = invoices.current(store, row["id"], now)
            if cycle is None:
                continue
            used = cycle_usage(store, row["username"], cycle["cycle_start"])
            if used < row["quota_bytes"]:
                continue
            store.execute(
                "UPDATE subscribers SET fup_active = 1, updated_at = ? WHERE id = ?",
                (store.now(), row["id"]),
            )
            # The throttle ends with this cycle: the billing clock must wake up then.
            store.execute(
                "UPDATE billing_state SET fup_until = ?, next_action_at = "
                "MIN(COALESCE(next_action_at, ?), ?) WHERE subscriber_id = ?",
                (cycle["cycle_end"], cycle["cycle_end"], cycle["cycle_end"], row["id"]),
            )
            store.emit("subscriber", row["username"], "upsert", {"fup_active": True})
            store.audit("billing", "subscriber.fup", f"subscriber:{row['username']}",
                        active=True, used_bytes=used, quota_bytes=row["quota_bytes"])
            event(log, "billing.fup", user=row["username"], used=used, quota=row["quota_bytes"])
            throttled += 1
        # Sessions updated while we looked are seen again next time (>= since).
        store.set_meta(_CURSOR, repr(now))
    return throttled
