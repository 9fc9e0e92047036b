"""Data usage per billing cycle, from accounting, and the fair-usage throttle.

Usage in a cycle is the traffic (input + output octets, gigawords included) of every
session seen during it, minus what a session that began before the cycle had already
counted then (its last accounting record received before the cycle start). When a
quota plan's usage reaches ``quota_bytes``, ``subscribers.fup_active`` is set and the
desired rate becomes the plan's fair-usage rate (a store trigger queues the CoA). A new
cycle (renewal or invoice) lifts it again.
"""

from __future__ import annotations

from jasiyo.agent import invoices
from jasiyo.agent.store import Store
from jasiyo.log import event, get_logger

log = get_logger(__name__)

_CURSOR = "billing.quota_checked_at"


def cycle_usage(store: Store, username: str, start: float) -> int:
    """Octets ``username`` used since ``start`` (both directions)."""
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
    rows = store.all(
        "SELECT s.id, s.username, s.phone, s.sms_consent, p.name AS plan, p.quota_bytes "
        "FROM subscribers s JOIN plans p ON p.id = s.plan_id "
        "WHERE p.quota_bytes IS NOT NULL AND s.fup_active = 0 "
        "AND s.status IN ('active', 'grace') AND s.username IN ("
        "  SELECT username FROM radius_sessions WHERE last_update_at >= ?)",
        (since,),
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
