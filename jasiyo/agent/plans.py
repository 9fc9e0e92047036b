"""Plans: what a subscriber buys (rate, price, period, billing rules)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from jasiyo.agent import validate
from jasiyo.agent.records import Plan
from jasiyo.agent.store import Row, Store
from jasiyo.errors import AlreadyExists, NotFound, ValidationError
from jasiyo.money import check_currency, parse_money
from jasiyo.network import Rate, mikrotik_rate_limit

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]?)B?$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``100G`` / ``500MB`` -> bytes (decimal units, as ISPs sell them)."""
    m = _SIZE.match((text or "").strip())
    if not m:
        raise ValidationError(f"bad size {text!r}: use e.g. 500M or 100G")
    factor = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}[m.group(2).upper()]
    value = int(float(m.group(1)) * factor)
    if value <= 0:
        raise ValidationError(f"bad size {text!r}: must be above zero")
    return value


def parse_tax_rate(text: str | float) -> int:
    """``16`` or ``16.5`` percent -> basis points (1600 / 1650)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValidationError(f"bad tax rate {text!r}: use a percentage like 16") from None
    if not 0 <= value <= 100:
        raise ValidationError(f"bad tax rate {text!r}: must be between 0 and 100 percent")
    bp = round(value * 100)
    if abs(bp - value * 100) > 1e-6:
        raise ValidationError(f"bad tax rate {text!r}: at most two decimal places")
    return bp


def _from_row(row: Row) -> Plan:
    return Plan(
        id=row["id"],
        name=row["name"],
        rate=row["rate"],
        burst=row["burst"],
        price_minor=row["price_minor"],
        currency=row["currency"],
        period=row["period"],
        billing=row["billing"],
        grace_days=row["grace_days"],
        tax_rate_bp=row["tax_rate_bp"],
        quota_bytes=row["quota_bytes"],
        fup_rate=row["fup_rate"],
        tax_inclusive=bool(row["tax_inclusive"]),
        data_bytes=row["data_bytes"],
        devices=row["devices"],
        portal=bool(row["portal"]),
    )


def check_burst(text: str, base: Rate) -> str:
    """A new burst must be complete and mean something on a MikroTik queue.

    ``RATE THRESHOLD SECONDS``: the burst rate above the plan rate, the threshold below it
    (bursting is allowed while the average over SECONDS stays under the threshold; at or
    above the plan rate a burst would never end) and the averaging time.
    """
    from jasiyo.network import Burst

    fields = text.split()
    if len(fields) != 3:
        example = f"{Rate(base.rx * 2, base.tx * 2)} {Rate(base.rx * 3 // 4, base.tx * 3 // 4)} 16/16"
        raise ValidationError(
            f"bad burst {text!r}: give all three of RATE THRESHOLD SECONDS, e.g. '{example}' "
            "(burst to RATE while the average over SECONDS is under THRESHOLD)"
        )
    burst = Burst.parse(text, base)
    if burst.rate.rx <= base.rx and burst.rate.tx <= base.tx:
        raise ValidationError(f"bad burst {text!r}: the burst rate must be above the plan rate {base}")
    if burst.threshold.rx >= base.rx or burst.threshold.tx >= base.tx:
        raise ValidationError(
            f"bad burst {text!r}: the threshold must be below the plan rate {base} (else a burst never ends)"
        )
    return str(burst)


def _check(plan: Plan, changed: set[str] | None = None) -> Plan:
    """Validate a plan; ``changed`` (on update) limits the checks of new-input rules to the
    fields given, so an older plan stays editable."""
    validate.name(plan.name, "plan name")
    base = Rate.parse(plan.rate)
    rate = str(base)
    mikrotik_rate_limit(rate, plan.burst)  # validates the burst against the rate
    fresh = changed is None
    if plan.burst and (fresh or {"burst", "rate"} & (changed or set())):
        plan = replace(plan, burst=check_burst(plan.burst, base))
    if plan.billing not in ("prepaid", "postpaid"):
        raise ValidationError(f"bad billing {plan.billing!r}: use prepaid or postpaid")
    if plan.price_minor < 0:
        raise ValidationError("bad price: cannot be negative")
    if plan.grace_days is not None and not 0 <= plan.grace_days <= 365:
        raise ValidationError(f"bad grace {plan.grace_days} days: must be 0-365")
    if plan.fup_rate is not None:
        fup = Rate.parse(plan.fup_rate)
        if (fresh or {"fup_rate", "rate"} & (changed or set())) and (fup.rx >= base.rx or fup.tx >= base.tx):
            raise ValidationError(
                f"bad fair-usage rate {plan.fup_rate!r}: must be below the plan rate {base} "
                "(it is the slower speed once the quota is used)"
            )
        if plan.quota_bytes is None:
            raise ValidationError("a fair-usage rate (--fup-rate) needs a quota (--quota)")
    if plan.data_bytes is not None and plan.data_bytes <= 0:
        raise ValidationError("bad data amount: must be above zero, e.g. --data 2G")
    if not isinstance(plan.devices, int) or not 1 <= plan.devices <= 100:
        raise ValidationError(f"bad devices {plan.devices!r}: sessions at once, 1-100")
    if plan.quota_bytes is not None and plan.fup_rate is None:
        raise ValidationError("a quota (--quota) needs a fair-usage rate (--fup-rate)")
    return replace(
        plan,
        rate=rate,
        currency=check_currency(plan.currency),
        period=validate.period(plan.period),
    )


def build(
    name: str,
    *,
    rate: str,
    price: str,
    currency: str = "KES",
    period: str = "30d",
    burst: str | None = None,
    billing: str = "prepaid",
    grace: str | None = None,
    tax_rate: str | None = None,
    quota: str | None = None,
    fup_rate: str | None = None,
    tax_inclusive: bool = False,
    data: str | None = None,
    devices: int = 1,
    portal: bool = False,
) -> Plan:
    """A validated Plan from the strings an engineer types."""
    currency = check_currency(currency)
    return _check(
        Plan(
            name=name,
            rate=rate,
            burst=burst or None,
            price_minor=parse_money(price, currency),
            currency=currency,
            period=period,
            billing=billing,
            grace_days=validate.grace_days(grace) if grace else None,
            tax_rate_bp=parse_tax_rate(tax_rate) if tax_rate is not None else 0,
            quota_bytes=parse_size(quota) if quota else None,
            fup_rate=fup_rate or None,
            tax_inclusive=bool(tax_inclusive),
            data_bytes=parse_size(data) if data else None,
            devices=devices,
            portal=bool(portal),
        )
    )


def _fields(plan: Plan) -> dict[str, Any]:
    d = plan.to_dict()
    d.pop("id")
    d["tax_inclusive"] = int(d["tax_inclusive"])
    d["portal"] = int(d["portal"])
    return d


def add(store: Store, plan: Plan, actor: str) -> Plan:
    plan = _check(plan)
    now = store.now()
    with store.transaction():
        if store.scalar("SELECT 1 FROM plans WHERE name = ?", (plan.name,)):
            raise AlreadyExists(f"plan {plan.name!r} already exists")
        fields = _fields(plan)
        cur = store.execute(
            f"INSERT INTO plans ({', '.join(fields)}, created_at, updated_at) "
            f"VALUES ({', '.join('?' * len(fields))}, ?, ?)",
            (*fields.values(), now, now),
        )
        store.emit("plan", plan.name, "upsert", fields)
        store.audit(actor, "plan.add", f"plan:{plan.name}", **fields)
    return replace(plan, id=cur.lastrowid or 0)


def get(store: Store, name: str) -> Plan:
    row = store.one("SELECT * FROM plans WHERE name = ?", (name,))
    if row is None:
        raise NotFound(f"no plan named {name!r} (see `jasiyo plan list`)")
    return _from_row(row)


def list_(store: Store) -> list[Plan]:
    return [_from_row(r) for r in store.all("SELECT * FROM plans ORDER BY name")]


def update(
    store: Store,
    name: str,
    actor: str,
    *,
    rate: str | None = None,
    price: str | None = None,
    currency: str | None = None,
    period: str | None = None,
    burst: str | None = None,
    billing: str | None = None,
    grace: str | None = None,
    tax_rate: str | None = None,
    quota: str | None = None,
    fup_rate: str | None = None,
    tax_inclusive: bool | None = None,
    data: str | None = None,
    devices: int | None = None,
    portal: bool | None = None,
) -> Plan:
    """Change some fields of a plan, given as :func:`build` takes them (``None``: keep).

    ``burst``, ``quota``, ``fup_rate`` and ``data`` ``""`` clear (clearing the quota
    clears the fair-usage rate too); a new ``currency`` needs the ``price`` in it.
    """
    with store.transaction():
        old = get(store, name)
        changes = _changes(
            old,
            rate=rate,
            price=price,
            currency=currency,
            period=period,
            burst=burst,
            billing=billing,
            grace=grace,
            tax_rate=tax_rate,
            quota=quota,
            fup_rate=fup_rate,
            tax_inclusive=tax_inclusive,
        )
        if data is not None:
            changes["data_bytes"] = parse_size(data) if data else None
        if devices is not None:
            changes["devices"] = devices
        if portal is not None:
            changes["portal"] = bool(portal)
        if not changes:
            raise ValidationError("nothing to change: give at least one option")
        new = _check(replace(old, **changes), set(changes))
        diff = {k: v for k, v in _fields(new).items() if _fields(old)[k] != v}
        if not diff:
            return old
        if "name" in diff:
            raise ValidationError("a plan cannot be renamed; add a new plan and move subscribers")
        if {"billing", "period", "currency"} & set(diff):
            users = store.scalar("SELECT count(*) FROM subscribers WHERE plan_id = ?", (old.id,))
            if users:
                raise ValidationError(
                    f"plan {name!r} has {users} subscriber(s): its billing mode, period and currency "
                    "cannot change under them; add a new plan and move them with "
                    "`jasiyo subscriber update USERNAME --plan NEW` (prorated)"
                )
        store.execute(
            f"UPDATE plans SET {', '.join(f'{k} = ?' for k in diff)}, updated_at = ? WHERE id = ?",
            (*diff.values(), store.now(), old.id),
        )
        store.emit("plan", name, "upsert", diff)
        store.audit(actor, "plan.update", f"plan:{name}", **diff)
    return new


def _changes(
    old: Plan,
    *,
    rate: str | None,
    price: str | None,
    currency: str | None,
    period: str | None,
    burst: str | None,
    billing: str | None,
    grace: str | None,
    tax_rate: str | None,
    quota: str | None,
    fup_rate: str | None,
    tax_inclusive: bool | None,
) -> dict[str, Any]:
    """The Plan fields that the strings of :func:`update` change."""
    out: dict[str, Any] = {}
    if currency is not None and price is None:
        raise ValidationError("--currency needs --price in the new currency")
    cur = check_currency(currency) if currency is not None else old.currency
    if rate is not None:
        out["rate"] = rate
    if price is not None:
        out["price_minor"] = parse_money(price, cur)
    if currency is not None:
        out["currency"] = cur
    if period is not None:
        out["period"] = period
    if burst is not None:
        out["burst"] = burst or None
    if billing is not None:
        out["billing"] = billing
    if grace is not None:
        out["grace_days"] = validate.grace_days(grace)
    if tax_rate is not None:
        out["tax_rate_bp"] = parse_tax_rate(tax_rate)
    if quota is not None:
        out["quota_bytes"] = parse_size(quota) if quota else None
        if not quota:
            out["fup_rate"] = None
    if fup_rate is not None:
        out["fup_rate"] = fup_rate or None
    if tax_inclusive is not None:
        out["tax_inclusive"] = tax_inclusive
    return out


def remove(store: Store, name: str, actor: str) -> None:
    with store.transaction():
        plan = get(store, name)
        users = store.scalar("SELECT count(*) FROM subscribers WHERE plan_id = ?", (plan.id,))
        if users:
            raise ValidationError(
                f"plan {name!r} still has {users} subscriber(s); move them to another plan first"
            )
        store.execute("DELETE FROM plans WHERE id = ?", (plan.id,))
        store.emit("plan", name, "delete", {})
        store.audit(actor, "plan.remove", f"plan:{name}")
