"""From billing state to desired network state (core idea 1 of the design).

RADIUS replies, router drivers and CoA all read :func:`desired_state`; nothing else decides
what a subscriber's network access should be.
"""

from __future__ import annotations

from jasiyo.agent.cycles import DAY, fixed_seconds
from jasiyo.agent.store import Row, Store
from jasiyo.config import RadiusSection
from jasiyo.network import Access, DesiredState, Service, Status, mikrotik_rate_limit

#: Columns :func:`desired_state` needs; a query selecting them can feed it directly.
#: ``data_since``: where a data package's usage is counted from (its current period).
DESIRED_SQL = (
    "SELECT s.username, s.service, s.status, s.ip, p.name AS plan, p.rate, p.burst, "
    "p.fup_rate, COALESCE(s.fup_active, 0) AS fup_active, s.paid_until, s.status_changed_at, "
    "s.status_reason, s.mac, s.clock_pending, p.period, p.billing, p.grace_days, "
    "p.data_bytes, p.devices, CASE WHEN p.data_bytes IS NULL THEN NULL ELSE COALESCE(("
    "SELECT MAX(i.cycle_start) FROM invoices i WHERE i.subscriber_id = s.id "
    "AND i.status != 'void'), s.created_at) END AS data_since "
    "FROM subscribers s JOIN plans p ON p.id = s.plan_id"
)


def period_seconds(period: str) -> int:
    """A period's length; a calendar month counts as 30 days (a package's first login)."""
    return fixed_seconds(period) or int(period.rstrip("mo") or 1) * 30 * DAY


def _limits(row: Row, status: Status) -> dict:
    """Session limits of an allowed subscriber: paid-through time, data, devices, MAC."""
    out: dict = {
        "data_limit": row.get("data_bytes"),
        "data_since": row.get("data_since"),
        "simultaneous_use": row.get("devices"),
        "mac": row.get("mac"),
    }
    if row.get("billing") != "prepaid" or row.get("paid_until") is None:
        return out
    grace = (row.get("grace_days") or 0) * DAY
    if row.get("clock_pending"):
        out["duration"] = period_seconds(row["period"])  # starts at the first login
    elif status is Status.GRACE:
        out["ends_at"] = (row.get("status_changed_at") or row["paid_until"]) + grace
    else:
        out["ends_at"] = row["paid_until"] + grace
    return out


def _note(row: Row, status: Status) -> str:
    if row.get("status_reason") == AWAITING_PAYMENT:
        return "Waiting for your payment"
    if status is Status.TERMINATED:
        return "This account is closed"
    return "Your package has ended: please pay to reconnect"


#: ``status_reason`` of a portal purchase not paid yet.
AWAITING_PAYMENT = "awaiting payment"


def desired_state(row: Row, radius: RadiusSection) -> DesiredState:
    """The desired state for one ``DESIRED_SQL`` row."""
    status = Status(row["status"])
    service = Service(row["service"])
    if status in (Status.ACTIVE, Status.GRACE):
        if row.get("fup_active") and row.get("fup_rate"):
            rate = mikrotik_rate_limit(row["fup_rate"])
        else:
            rate = mikrotik_rate_limit(row["rate"], row["burst"])
        return DesiredState(
            username=row["username"],
            service=service,
            access=Access.ALLOW,
            rate_limit=rate,
            plan=row["plan"],
            ip=row["ip"],
            interim_interval=radius.interim_interval,
            **_limits(row, status),
        )
    if (
        status is Status.SUSPENDED
        and radius.suspended_action == "walled_garden"
        and service is not Service.HOTSPOT
    ):  # a hotspot walls off the unauthenticated
        return DesiredState(
            username=row["username"],
            service=service,
            access=Access.WALLED_GARDEN,
            rate_limit=mikrotik_rate_limit(radius.walled_garden_rate),
            plan=row["plan"],
            ip=row["ip"],
            address_list=radius.suspended_address_list,
            interim_interval=radius.interim_interval,
        )
    return DesiredState(
        username=row["username"],
        service=service,
        access=Access.REJECT,
        rate_limit=mikrotik_rate_limit(radius.walled_garden_rate),
        plan=row["plan"],
        ip=row["ip"],
        address_list=radius.suspended_address_list,
        note=_note(row, status),
    )


def for_subscriber(store: Store, username: str, radius: RadiusSection) -> DesiredState | None:
    row = store.one(f"{DESIRED_SQL} WHERE s.username = ?", (username,))
    return desired_state(row, radius) if row else None


def all_states(store: Store, radius: RadiusSection) -> list[DesiredState]:
    return [desired_state(r, radius) for r in store.all(f"{DESIRED_SQL} ORDER BY s.username")]
