"""Hotspot packages: portal purchases, clocks that start at the first login, limits.

A package bought on the portal is a subscriber like any other (so the money path is the
usual one): :func:`pending_purchase` makes one on the plan, bound to the buyer's device,
suspended ``awaiting payment`` and with its clock not started. The payment (allocated by
the account reference = the username; each period bought keyed ``BUY:<ref>#n``) buys
the period and restores it; the first Accounting-Start then moves the paid-through time
to one period from that login (:func:`start_clock`).

:func:`enforce_limits` (run with the billing tick) queues a Disconnect for sessions
whose package is over: a voucher past its time or data, a subscriber past its data. The
RADIUS reply already carries Session-Timeout and MikroTik's Total-Limit, so this is the
backstop for a NAS that ignored them.
"""

from __future__ import annotations

import secrets
from zoneinfo import ZoneInfo

from jasiyo.agent import plans as plans_mod
from jasiyo.agent import subscribers as subs
from jasiyo.agent import validate
from jasiyo.agent import vouchers as vouchers_mod
from jasiyo.agent.cycles import period_end
from jasiyo.agent.desired import AWAITING_PAYMENT
from jasiyo.agent.store import Store
from jasiyo.agent.vouchers import ALPHABET, Access
from jasiyo.config import Config
from jasiyo.errors import ValidationError
from jasiyo.log import event, get_logger

log = get_logger(__name__)

#: A portal purchase's username: ``HS`` and 8 characters (the M-Pesa account reference
#: allows 12; ``S`` is not in the voucher alphabet, so it never reads as a voucher).
PREFIX = "HS"


def pending_purchase(store: Store, cfg: Config, *, plan: str, phone: str, mac: str | None) -> Access:
    """A hotspot subscriber for a package about to be paid on the portal.

    ``plan`` must be sold on the portal. The subscriber is suspended (``awaiting
    payment``: RADIUS refuses it with that message) until a payment names its username as
    the account; its clock starts at the first login. Returns the credentials the portal
    logs the device in with once paid (username = the payment's account reference).
    """
    p = plans_mod.get(store, plan)
    if not p.portal:
        raise ValidationError(f"plan {plan!r} is not sold on the portal")
    if p.billing != "prepaid":
        raise ValidationError(f"plan {plan!r} is postpaid: the portal sells prepaid packages")
    number = validate.phone(phone, cfg.billing.country)
    if not number:
        raise ValidationError("a phone number is needed to pay")
    device = validate.mac(mac) if mac else None
    with store.transaction():
        while True:
            username = PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(8))
            if not store.scalar("SELECT 1 FROM subscribers WHERE username = ?", (username,)):
                break
        password = subs.generate_password(16)
        new = subs.NewSubscriber.build(
            username,
            password=password,
            plan=p.name,
            service="hotspot",
            phone=number,
            mac=device,
            country=cfg.billing.country,
        )
        subs._insert(
            store,
            new,
            p.id,
            "portal",
            "portal",
            status="suspended",
            reason=AWAITING_PAYMENT,
            clock_pending=True,
        )
    event(log, "hotspot.purchase_pending", user=username, plan=p.name)
    return Access(username=username, password=password, plan=p.name)


def start_clock(store: Store, cfg: Config, username: str, mac: str | None, at: float) -> bool:
    """The first Accounting-Start of ``username`` (a voucher, or a subscriber whose clock
    waits for the first login). Runs in the accounting writer's transaction; cheap when
    there is nothing to start (one indexed read). True if a clock started."""
    code = vouchers_mod.canonical(username)
    if code is not None and code == username and vouchers_mod.note_use(store, code, mac, at):
        return True
    row = store.one(
        "SELECT s.id, s.paid_until, p.period FROM subscribers s JOIN plans p ON p.id = s.plan_id "
        "WHERE s.username = ? AND s.clock_pending = 1",
        (username,),
    )
    if row is None or row["paid_until"] is None:
        return False  # not paid yet: the clock waits for a login after payment
    end = max(row["paid_until"], period_end(at, row["period"], ZoneInfo(cfg.billing.timezone)))
    store.execute(
        "UPDATE subscribers SET clock_pending = 0, paid_until = ?, updated_at = ? WHERE id = ?",
        (end, store.now(), row["id"]),
    )
    store.emit("subscriber", username, "upsert", {"clock_pending": 0, "paid_until": end})
    return True


def enforce_limits(store: Store, now: float) -> int:
    """Queue Disconnects for open sessions of packages that are over. Returns how many."""
    with store.transaction():
        return _enforce_limits(store, now)


def _enforce_limits(store: Store, now: float) -> int:
    n = 0
    for r in store.all(
        "SELECT DISTINCT v.code FROM radius_sessions r JOIN vouchers v ON v.code = r.username "
        "WHERE r.status = 'active'"
    ):
        v = vouchers_mod.get(store, r["code"])
        if v.status in ("used", "revoked", "expired"):
            n += vouchers_mod._disconnect(store, v.code, f"voucher {v.status}")
    from jasiyo.agent.desired import DESIRED_SQL
    from jasiyo.agent.usage import cycle_usage

    for s in store.all(
        f"{DESIRED_SQL} WHERE p.data_bytes IS NOT NULL AND s.status IN ('active', 'grace') "
        "AND s.username IN (SELECT username FROM radius_sessions WHERE status = 'active')"
    ):
        if cycle_usage(store, s["username"], s["data_since"]) >= s["data_bytes"]:
            n += vouchers_mod._disconnect(store, s["username"], "package data used up")
    if n:
        event(log, "hotspot.limits_enforced", disconnects=n)
    return n


__all__ = ["Access", "enforce_limits", "pending_purchase", "start_clock"]
