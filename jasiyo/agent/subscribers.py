"""Subscribers: an ISP's customers and their credentials (sealed at rest)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from jasiyo.agent import plans as plans_mod
from jasiyo.agent import validate
from jasiyo.agent.records import Subscriber
from jasiyo.agent.store import Row, Store
from jasiyo.errors import AlreadyExists, NotFound, ValidationError
from jasiyo.network import Service, Status

_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_SELECT = "SELECT s.*, p.name AS plan FROM subscribers s JOIN plans p ON p.id = s.plan_id"


def generate_password(length: int = 12) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def password_context(username: str) -> str:
    return f"subscriber:{username}:password"


def _from_row(row: Row) -> Subscriber:
    return Subscriber(
        id=row["id"],
        username=row["username"],
        plan=row["plan"],
        service=row["service"],
        status=row["status"],
        ip=row["ip"],
        phone=row["phone"],
        name=row["name"],
        sms_consent=bool(row["sms_consent"]),
        status_reason=row["status_reason"],
        paid_until=row["paid_until"],
        created_at=row["created_at"],
        tax_pin=row["tax_pin"],
        mac=row["mac"],
        clock_pending=bool(row["clock_pending"]),
        home_router=row.get("home_router"),
        home_pop=row.get("home_pop"),
    )


@dataclass(frozen=True, slots=True)
class NewSubscriber:
    """A validated subscriber about to be written."""

    username: str
    password: str
    plan: str
    service: str = "pppoe"
    ip: str | None = None
    phone: str | None = None
    name: str | None = None
    sms_consent: bool = False
    tax_pin: str | None = None
    mac: str | None = None

    @classmethod
    def build(
        cls,
        username: str,
        *,
        password: str,
        plan: str,
        service: str = "pppoe",
        ip: str | None = None,
        phone: str | None = None,
        name: str | None = None,
        sms_consent: bool = False,
        tax_pin: str | None = None,
        country: str = "KE",
        mac: str | None = None,
    ) -> NewSubscriber:
        try:
            svc = Service(service or "pppoe")
        except ValueError:
            raise ValidationError(f"bad service {service!r}: use pppoe, hotspot or static") from None
        address = validate.ipv4(ip)
        if svc is Service.STATIC and not address:
            raise ValidationError("a static subscriber needs --ip")
        return cls(
            username=validate.username(username),
            password=validate.password(password),
            plan=validate.name(plan, "plan name"),
            service=svc.value,
            ip=address,
            phone=validate.phone(phone, country),
            name=validate.text(name, "name"),
            sms_consent=bool(sms_consent),
            tax_pin=validate.tax_pin(tax_pin),
            mac=validate.mac(mac),
        )

    def public(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "plan": self.plan,
            "service": self.service,
            "ip": self.ip,
            "phone": self.phone,
            "name": self.name,
            "sms_consent": self.sms_consent,
            "tax_pin": self.tax_pin,
            "mac": self.mac,
        }


def _plan_id(store: Store, plan: str) -> int:
    return plans_mod.get(store, plan).id


def _check_ip_free(store: Store, ip: str | None, username: str) -> None:
    if ip:
        other = store.scalar(
            "SELECT username FROM subscribers WHERE ip = ? AND username != ?", (ip, username)
        )
        if other:
            raise AlreadyExists(f"IP {ip} is already assigned to {other!r}")


def _insert(
    store: Store,
    new: NewSubscriber,
    plan_id: int,
    actor: str,
    how: str = "cli",
    *,
    status: str = "active",
    reason: str | None = None,
    clock_pending: bool = False,
) -> None:
    now = store.now()
    store.execute(
        "INSERT INTO subscribers (username, password_enc, plan_id, service, ip, phone, name, "
        "sms_consent, tax_pin, mac, clock_pending, status, status_reason, created_at, "
        "updated_at, status_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new.username,
            store.seal(new.password, password_context(new.username)),
            plan_id,
            new.service,
            new.ip,
            new.phone,
            new.name,
            int(new.sms_consent),
            new.tax_pin,
            new.mac,
            int(clock_pending),
            status,
            reason,
            now,
            now,
            now,
        ),
    )
    extra: dict[str, Any] = {"clock_pending": 1} if clock_pending else {}
    if reason:
        extra["status_reason"] = reason
    store.emit(
        "subscriber",
        new.username,
        "upsert",
        {**new.public(), "password": new.password, "status": status, **extra},
    )
    store.audit(actor, "subscriber.add", f"subscriber:{new.username}", **new.public())
    if new.sms_consent:
        from jasiyo.agent import consent

        consent.note(store, new.username, True, how, actor, at=now)


def add(store: Store, new: NewSubscriber, actor: str) -> Subscriber:
    with store.transaction():
        if store.scalar("SELECT 1 FROM subscribers WHERE username = ?", (new.username,)):
            raise AlreadyExists(f"subscriber {new.username!r} already exists")
        plan_id = _plan_id(store, new.plan)
        _check_ip_free(store, new.ip, new.username)
        _insert(store, new, plan_id, actor)
    return get(store, new.username)


def get(store: Store, username: str) -> Subscriber:
    row = store.one(f"{_SELECT} WHERE s.username = ?", (username,))
    if row is None:
        raise NotFound(f"no subscriber named {username!r}")
    return _from_row(row)


def password_of(store: Store, username: str) -> str:
    blob = store.scalar("SELECT password_enc FROM subscribers WHERE username = ?", (username,))
    if blob is None:
        raise NotFound(f"no subscriber named {username!r}")
    return store.unseal(blob, password_context(username))


def _filters(
    store: Store,
    status: str | None,
    search: str | None,
    plan: str | None,
    router: str | None,
    seen_on: str | None = None,
) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if status:
        try:
            Status(status)
        except ValueError:
            raise ValidationError(
                f"bad status {status!r}: use active, grace, suspended or terminated"
            ) from None
        where.append("s.status = ?")
        params.append(status)
    if plan:
        where.append("s.plan_id = ?")
        params.append(_plan_id(store, plan))
    if router or seen_on:
        from jasiyo.agent import routers as routers_mod

        if router:  # homed there (`subscriber add/update/move --router`)
            routers_mod.get(store, router)  # NotFound names an unknown router
            where.append("s.home_router = ?")
            params.append(router)
        if seen_on:
            nas_ip = routers_mod.get(store, seen_on).nas_ip
            # Subscribers seen on that router: the (nas_ip, acct_session_id) index finds them.
            where.append("s.username IN (SELECT username FROM radius_sessions WHERE nas_ip = ?)")
            params.append(nas_ip)
    if search:
        term = search.strip()
        if not term:
            raise ValidationError("--search needs some text")
        like = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        digits = "".join(c for c in term if c.isdigit())
        cond = ["s.username LIKE ? ESCAPE '\\'", "s.name LIKE ? ESCAPE '\\'", "s.tax_pin LIKE ? ESCAPE '\\'"]
        params += [like, like, like]
        if len(digits) >= 4:  # 0712 345 678 finds +254712345678
            cond.append("s.phone LIKE ?")
            params.append("%" + digits.lstrip("0") + "%")
        where.append("(" + " OR ".join(cond) + ")")
    return (" WHERE " + " AND ".join(where) if where else ""), params


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Subscriber]
    total: int
    offset: int


def list_(
    store: Store,
    status: str | None = None,
    *,
    search: str | None = None,
    plan: str | None = None,
    router: str | None = None,
    seen_on: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Subscriber]:
    """Subscribers by username; filters combine (search: username, name, phone, tax PIN;
    ``router``: homed on it; ``seen_on``: with a session recorded from it)."""
    return page(
        store,
        status,
        search=search,
        plan=plan,
        router=router,
        seen_on=seen_on,
        limit=limit,
        offset=offset,
        count=False,
    ).rows


def page(
    store: Store,
    status: str | None = None,
    *,
    search: str | None = None,
    plan: str | None = None,
    router: str | None = None,
    seen_on: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    count: bool = True,
) -> Page:
    """One page of :func:`list_` and (``count``) how many match in all.

    Ordered by the username index, so a page costs the same at 50,000 subscribers as at 50.
    """
    if limit is not None and limit < 1 or offset < 0:
        raise ValidationError("--limit must be at least 1 and --offset not negative")
    where, params = _filters(store, status, search, plan, router, seen_on)
    sql = f"{_SELECT}{where} ORDER BY s.username"
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        rows = store.all(sql, (*params, limit, offset))
    else:
        rows = store.all(sql + " LIMIT -1 OFFSET ?", (*params, offset))
    if count and limit is not None and len(rows) == limit:
        total = int(store.scalar(f"SELECT count(*) FROM subscribers s{where}", tuple(params)))
    else:  # a short (or unlimited) page is the end: no second scan to count
        total = (
            offset + len(rows)
            if rows or not offset
            else int(store.scalar(f"SELECT count(*) FROM subscribers s{where}", tuple(params)))
        )
    return Page([_from_row(r) for r in rows], total, offset)


def details(store: Store, username: str) -> dict[str, Any]:
    """What `subscriber show` prints beyond the profile: money, cycle, usage, sessions."""
    from jasiyo.agent import invoices, ledger, usage

    sub = get(store, username)
    row = store.one(
        "SELECT s.fup_active, p.quota_bytes, p.currency, p.billing, p.fup_rate "
        "FROM subscribers s JOIN plans p ON p.id = s.plan_id WHERE s.id = ?",
        (sub.id,),
    )
    assert row is not None
    now = store.now()
    cycle = invoices.current(store, sub.id, now)
    start = cycle["cycle_start"] if cycle else None
    sessions = store.all(
        "SELECT r.nas_ip, r.acct_session_id, r.framed_ip, r.started_at, r.status, "
        "r.input_octets + r.output_octets AS octets, "
        "(SELECT name FROM routers WHERE nas_ip = r.nas_ip) AS router "
        "FROM radius_sessions r WHERE r.username = ? AND r.status IN ('active', 'stale') "
        "ORDER BY r.started_at",
        (username,),
    )
    return {
        "balance_minor": ledger.balance(store, sub.id),
        "currency": row["currency"],
        "billing": row["billing"],
        "paid_until": sub.paid_until,
        "cycle_start": start,
        "cycle_end": cycle["cycle_end"] if cycle else None,
        "usage_bytes": usage.cycle_usage(store, username, start) if start else None,
        "quota_bytes": row["quota_bytes"],
        "fup_active": bool(row["fup_active"]),
        "open_invoices": int(
            store.scalar(
                "SELECT count(*) FROM invoices WHERE subscriber_id = ? AND status = 'open'", (sub.id,)
            )
        ),
        "sessions": sessions,
    }


_UPDATABLE = ("password", "plan", "service", "ip", "phone", "name", "sms_consent", "tax_pin", "mac")


def update(store: Store, username: str, actor: str, *, how: str = "cli", **changes: Any) -> Subscriber:
    """Change profile fields. A change of SMS consent is recorded (``how``: cli, csv, portal).

    A ``plan`` given here moves the row only, unbilled: that is what billing itself uses.
    Every other plan change goes through :func:`jasiyo.agent.accounts.update` (prorated).
    """
    unknown = set(changes) - set(_UPDATABLE)
    if unknown:
        raise ValidationError(f"cannot update {', '.join(sorted(unknown))}")
    with store.transaction():
        old = get(store, username)
        merged = NewSubscriber.build(
            username,
            password=changes.get("password") or password_of(store, username),
            plan=changes.get("plan", old.plan),
            service=changes.get("service", old.service),
            ip=changes.get("ip", old.ip),
            phone=changes.get("phone", old.phone),
            name=changes.get("name", old.name),
            sms_consent=changes.get("sms_consent", old.sms_consent),
            tax_pin=changes.get("tax_pin", old.tax_pin),
            country=store.country,
            mac=changes.get("mac", old.mac),
        )
        before = {**old.to_dict(), "password": None}
        after = {**merged.public(), "password": changes.get("password")}
        diff = {k: v for k, v in after.items() if k in changes and before.get(k) != v}
        if not diff:
            return old
        sets: dict[str, Any] = {k: v for k, v in diff.items() if k not in ("plan", "password")}
        if "plan" in diff:
            sets["plan_id"] = _plan_id(store, merged.plan)
        if "password" in diff:
            sets["password_enc"] = store.seal(merged.password, password_context(username))
        if "sms_consent" in sets:
            sets["sms_consent"] = int(sets["sms_consent"])
        _check_ip_free(store, merged.ip, username)
        store.execute(
            f"UPDATE subscribers SET {', '.join(f'{k} = ?' for k in sets)}, updated_at = ? "
            "WHERE username = ?",
            (*sets.values(), store.now(), username),
        )
        store.emit("subscriber", username, "upsert", diff)
        store.audit(
            actor,
            "subscriber.update",
            f"subscriber:{username}",
            **{k: ("***" if k == "password" else v) for k, v in diff.items()},
        )
        if "sms_consent" in diff:
            from jasiyo.agent import consent

            consent.note(store, username, bool(diff["sms_consent"]), how, actor)
    return get(store, username)


def set_status(
    store: Store,
    username: str,
    status: Status,
    actor: str,
    reason: str | None = None,
    *,
    manual: bool | None = None,
    at: float | None = None,
) -> Subscriber:
    """Move a subscriber to ``status``; an event and an audit line record who and why.

    ``at`` is when the transition took effect (default now): the billing clock passes the
    due time, so catching up after downtime records the same history as running throughout.
    """
    with store.transaction():
        old = get(store, username)
        sets: dict[str, Any] = {
            "status": status.value,
            "status_reason": reason,
            "status_changed_at": store.now() if at is None else at,
        }
        if manual is not None:
            sets["manual_suspend"] = int(manual)
        store.execute(
            f"UPDATE subscribers SET {', '.join(f'{k} = ?' for k in sets)}, updated_at = ? "
            "WHERE username = ?",
            (*sets.values(), store.now(), username),
        )
        data = {k: v for k, v in sets.items() if k != "status_changed_at"}
        store.emit("subscriber", username, "upsert", data)
        store.audit(
            actor,
            "subscriber.status",
            f"subscriber:{username}",
            old=old.status,
            new=status.value,
            reason=reason,
        )
    return get(store, username)


def suspend(store: Store, username: str, actor: str, reason: str | None = None) -> Subscriber:
    """Suspend by hand. Already suspended by hand: refused, the first reason is kept.

    A subscriber the billing clock suspended becomes suspended by hand too (a payment then
    no longer restores them); the billing reason stays in the audit log.
    """
    with store.transaction():
        sub = get(store, username)
        if sub.status == Status.TERMINATED:
            raise ValidationError(f"{username!r} is terminated; it cannot be suspended")
        manual = store.scalar("SELECT manual_suspend FROM subscribers WHERE username = ?", (username,))
        if sub.status == Status.SUSPENDED and manual:
            raise ValidationError(
                f"{username!r} is already suspended (reason: {sub.status_reason or 'none'}); nothing changed"
            )
        return set_status(store, username, Status.SUSPENDED, actor, reason or "manual", manual=True)


def resume(store: Store, username: str, actor: str) -> Subscriber:
    sub = get(store, username)
    if sub.status == Status.ACTIVE:
        raise ValidationError(f"{username!r} is already active")
    return set_status(store, username, Status.ACTIVE, actor, "resumed", manual=False)


def remove(store: Store, username: str, actor: str) -> None:
    with store.transaction():
        sub = get(store, username)
        money = store.scalar("SELECT count(*) FROM ledger WHERE subscriber_id = ?", (sub.id,))
        if money:
            raise ValidationError(
                f"{username!r} has {money} ledger entries; money records are kept. "
                f"Use `jasiyo subscriber suspend` instead"
            )
        store.execute("DELETE FROM subscribers WHERE id = ?", (sub.id,))
        store.emit("subscriber", username, "delete", {})
        store.audit(actor, "subscriber.remove", f"subscriber:{username}")
