"""Subscribers: an ISP's customers and their credentials (sealed at rest)."""

from __future__ import annotations

import csv
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jasiyo.agent import plans as plans_mod
from jasiyo.agent import validate
from jasiyo.agent.models import Subscriber
from jasiyo.agent.store import Row, Store
from jasiyo.errors import AlreadyExists, NotFound, ValidationError
from jasiyo.models import Service, Status

_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_SELECT = (
    "SELECT s.*, p.name AS plan FROM subscribers s JOIN plans p ON p.id = s.plan_id"
)


def generate_password(length: int = 12) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def password_context(username: str) -> str:
    return f"subscriber:{username}:password"


def _from_row(row: Row) -> Subscriber:
    return Subscriber(
        id=row["id"], username=row["username"], plan=row["plan"], service=row["service"],
        status=row["status"], ip=row["ip"], phone=row["phone"], name=row["name"],
        sms_consent=bool(row["sms_consent"]), status_reason=row["status_reason"],
        paid_until=row["paid_until"], created_at=row["created_at"],
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

    @classmethod
    def build(
        cls, username: str, *, password: str, plan: str, service: str = "pppoe",
        ip: str | None = None, phone: str | None = None, name: str | None = None,
        sms_consent: bool = False, country: str = "KE",
    ) -> NewSubscriber:
        try:
            svc = Service(service or "pppoe")
        except ValueError:
            raise ValidationError(f"bad service {service!r}: use pppoe, hotspot or static") from None
        address = validate.ipv4(ip)
        if svc is Service.STATIC and not address:
            raise ValidationError("a static subscriber needs --ip")
        return cls(
            username=validate.username(username), password=validate.password(password),
            plan=validate.name(plan, "plan name"), service=svc.value, ip=address,
            phone=validate.phone(phone, country), name=validate.text(name, "name"),
            sms_consent=bool(sms_consent),
        )

    def public(self) -> dict[str, Any]:
        return {
            "username": self.username, "plan": self.plan, "service": self.service,
            "ip": self.ip, "phone": self.phone, "name": self.name,
            "sms_consent": self.sms_consent,
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


def _insert(store: Store, new: NewSubscriber, plan_id: int, actor: str,
            how: str = "cli") -> None:
    now = store.now()
    store.conn.execute(
        "INSERT INTO subscribers (username, password_enc, plan_id, service, ip, phone, name, "
        "sms_consent, status, created_at, updated_at, status_changed_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?)",
        (new.username, store.seal(new.password, password_context(new.username)), plan_id,
         new.service, new.ip, new.phone, new.name, int(new.sms_consent), now, now, now),
    )
    store.emit("subscriber", new.username, "upsert",
               {**new.public(), "password": new.password, "status": "active"})
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


def list_(store: Store, status: str | None = None) -> list[Subscriber]:
    if status:
        try:
            Status(status)
        except ValueError:
            raise ValidationError(
                f"bad status {status!r}: use active, grace, suspended or terminated"
            ) from None
        rows = store.all(f"{_SELECT} WHERE s.status = ? ORDER BY s.username", (status,))
    else:
        rows = store.all(f"{_SELECT} ORDER BY s.username")
    return [_from_row(r) for r in rows]


_UPDATABLE = ("password", "plan", "service", "ip", "phone", "name", "sms_consent")


def update(store: Store, username: str, actor: str, *, how: str = "cli",
           **changes: Any) -> Subscriber:
    """Change profile fields. A plan change here is immediate; billing prorates separately.
    A change of SMS consent is recorded (``how``: cli, csv, portal)."""
    unknown = set(changes) - set(_UPDATABLE)
    if unknown:
        raise ValidationError(f"cannot update {', '.join(sorted(unknown))}")
    with store.transaction():
        old = get(store, username)
        merged = NewSubscriber.build(
            username,
            password=changes.get("password") or password_of(store, username),
            plan=changes.get("plan", old.plan), service=changes.get("service", old.service),
            ip=changes.get("ip", old.ip), phone=changes.get("phone", old.phone),
            name=changes.get("name", old.name),
            sms_consent=changes.get("sms_consent", old.sms_consent), country=store.country,
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
        store.conn.execute(
            f"UPDATE subscribers SET {', '.join(f'{k} = ?' for k in sets)}, updated_at = ? "
            "WHERE username = ?",
            (*sets.values(), store.now(), username),
        )
        store.emit("subscriber", username, "upsert", diff)
        store.audit(actor, "subscriber.update", f"subscriber:{username}",
                    **{k: ("***" if k == "password" else v) for k, v in diff.items()})
        if "sms_consent" in diff:
            from jasiyo.agent import consent

            consent.note(store, username, bool(diff["sms_consent"]), how, actor)
    return get(store, username)


def set_status(
    store: Store, username: str, status: Status, actor: str, reason: str | None = None,
    *, manual: bool | None = None, at: float | None = None,
) -> Subscriber:
    """Move a subscriber to ``status``; an event and an audit line record who and why.

    ``at`` is when the transition took effect (default now): the billing clock passes the
    due time, so catching up after downtime records the same history as running throughout.
    """
    with store.transaction():
        old = get(store, username)
        sets: dict[str, Any] = {"status": status.value, "status_reason": reason,
                                "status_changed_at": store.now() if at is None else at}
        if manual is not None:
            sets["manual_suspend"] = int(manual)
        store.conn.execute(
            f"UPDATE subscribers SET {', '.join(f'{k} = ?' for k in sets)}, updated_at = ? "
            "WHERE username = ?",
            (*sets.values(), store.now(), username),
        )
        data = {k: v for k, v in sets.items() if k != "status_changed_at"}
        store.emit("subscriber", username, "upsert", data)
        store.audit(actor, "subscriber.status", f"subscriber:{username}",
                    old=old.status, new=status.value, reason=reason)
    return get(store, username)


def suspend(store: Store, username: str, actor: str, reason: str | None = None) -> Subscriber:
    sub = get(store, username)
    if sub.status == Status.TERMINATED:
        raise ValidationError(f"{username!r} is terminated; it cannot be suspended")
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
        store.conn.execute("DELETE FROM subscribers WHERE id = ?", (sub.id,))
        store.emit("subscriber", username, "delete", {})
        store.audit(actor, "subscriber.remove", f"subscriber:{username}")


# ------------------------------------------------------------------ CSV import

REQUIRED_COLUMNS = ("username", "password", "plan")
OPTIONAL_COLUMNS = ("service", "ip", "phone", "name", "sms_consent")
_YES, _NO = ("1", "yes", "y", "true", "ndiyo"), ("", "0", "no", "n", "false", "hapana")


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int


def read_csv(path: Path, country: str = "KE") -> tuple[list[NewSubscriber], frozenset[str]]:
    """Parse and validate every row; raise one error naming each bad row (up to 10).

    Returns the rows and the columns the file has (an import changes only those).
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [(h or "").strip().lower() for h in reader.fieldnames or []]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise ValidationError(f"{path}: missing column(s) {', '.join(missing)}")
            unknown = [c or "(empty)" for c in header
                       if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
            if unknown:
                raise ValidationError(f"{path}: unknown column(s) {', '.join(unknown)}")
            repeated = sorted({c for c in header if header.count(c) > 1})
            if repeated:
                raise ValidationError(f"{path}: repeated column(s) {', '.join(repeated)}")
            reader.fieldnames = header
            rows = []
            for row in reader:
                if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                    continue  # a blank line
                if None in row:
                    raise ValidationError(
                        f"{path}: line {reader.line_num} has more fields than the header"
                    )
                rows.append((reader.line_num, row))
    except FileNotFoundError:
        raise ValidationError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValidationError(f"{path}: cannot read: {exc}") from None
    out: list[NewSubscriber] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for lineno, row in rows:
        clean = {k: (v or "").strip() for k, v in row.items() if k}
        consent = clean.get("sms_consent", "").lower()
        if consent not in _YES + _NO:
            errors.append(f"line {lineno}: sms_consent {clean['sms_consent']!r} is not yes or no")
            continue
        try:
            sub = NewSubscriber.build(
                clean["username"], password=clean["password"], plan=clean["plan"],
                service=clean.get("service") or "pppoe", ip=clean.get("ip") or None,
                phone=clean.get("phone") or None, name=clean.get("name") or None,
                sms_consent=consent in _YES, country=country,
            )
        except ValidationError as exc:
            errors.append(f"line {lineno}: {exc}")
            continue
        if sub.username in seen:
            errors.append(f"line {lineno}: username {sub.username!r} repeats line {seen[sub.username]}")
            continue
        seen[sub.username] = lineno
        out.append(sub)
    if errors:
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise ValidationError(f"{path}: nothing imported; " + "; ".join(errors[:10]) + more)
    return out, frozenset(header)


def import_rows(
    store: Store, rows: Iterable[NewSubscriber], actor: str,
    progress: Callable[[int], None] | None = None, *,
    columns: frozenset[str] | None = None, cfg: Any = None,
) -> ImportResult:
    """Create or update every row in one transaction; rows already identical are skipped.

    For an existing subscriber only ``columns`` (default: all) are compared and changed, so
    a file without a phone column leaves phones alone. A plan change goes through billing
    (prorated), exactly as ``subscriber update --plan`` does.
    """
    from jasiyo.agent.billing import change_plan

    compared = set(columns) if columns is not None else set(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
    rows = list(rows)
    created = updated = unchanged = 0
    with store.transaction():
        plan_ids = {p.name: p.id for p in plans_mod.list_(store)}
        missing = sorted({r.plan for r in rows} - set(plan_ids))
        if missing:
            raise NotFound(f"unknown plan(s) {', '.join(missing)}: nothing imported")
        ips: dict[str, str] = {}
        for r in rows:
            if r.ip and ips.setdefault(r.ip, r.username) != r.username:
                raise AlreadyExists(f"IP {r.ip} appears for {ips[r.ip]!r} and {r.username!r}")
        for i, r in enumerate(rows):
            existing = store.one(f"{_SELECT} WHERE s.username = ?", (r.username,))
            if existing is None:
                _check_ip_free(store, r.ip, r.username)
                _insert(store, r, plan_ids[r.plan], actor, how="csv")
                created += 1
            else:
                current = _from_row(existing)
                pw = store.unseal(existing["password_enc"], password_context(r.username))
                wanted = r.public()
                have = {k: getattr(current, k) for k in wanted}
                changes = {k: v for k, v in wanted.items()
                           if k in compared and have[k] != v}
                if "password" in compared and pw != r.password:
                    changes["password"] = r.password
                if changes:
                    new_plan = changes.pop("plan", None)
                    if new_plan is not None:
                        change_plan(store, r.username, new_plan, actor, cfg=cfg)
                    if changes:
                        update(store, r.username, actor, how="csv", **changes)
                    updated += 1
                else:
                    unchanged += 1
            if progress:
                progress(i + 1)
    return ImportResult(created, updated, unchanged)
