"""From billing state to desired network state (core idea 1 of the design).

RADIUS replies, router drivers and CoA all read :func:`desired_state`; nothing else decides
what a subscriber's network access should be.
"""

from __future__ import annotations

from jasiyo.agent.store import Row, Store
from jasiyo.config import RadiusSection
from jasiyo.network import Access, DesiredState, Service, Status, mikrotik_rate_limit

#: Columns :func:`desired_state` needs; a query selecting them can feed it directly.
DESIRED_SQL = (
    "SELECT s.username, s.service, s.status, s.ip, p.name AS plan, p.rate, p.burst, "
    "p.fup_rate, COALESCE(s.fup_active, 0) AS fup_active "
    "FROM subscribers s JOIN plans p ON p.id = s.plan_id"
)


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
            username=row["username"], service=service, access=Access.ALLOW, rate_limit=rate,
            plan=row["plan"], ip=row["ip"], interim_interval=radius.interim_interval,
        )
    if status is Status.SUSPENDED and radius.suspended_action == "walled_garden":
        return DesiredState(
            username=row["username"], service=service, access=Access.WALLED_GARDEN,
            rate_limit=mikrotik_rate_limit(radius.walled_garden_rate), plan=row["plan"],
            ip=row["ip"], address_list=radius.suspended_address_list,
            interim_interval=radius.interim_interval,
        )
    return DesiredState(
        username=row["username"], service=service, access=Access.REJECT,
        rate_limit=mikrotik_rate_limit(radius.walled_garden_rate), plan=row["plan"],
        ip=row["ip"], address_list=radius.suspended_address_list,
    )


def for_subscriber(store: Store, username: str, radius: RadiusSection) -> DesiredState | None:
    row = store.one(f"{DESIRED_SQL} WHERE s.username = ?", (username,))
    return desired_state(row, radius) if row else None


def all_states(store: Store, radius: RadiusSection) -> list[DesiredState]:
    return [desired_state(r, radius) for r in store.all(f"{DESIRED_SQL} ORDER BY s.username")]
