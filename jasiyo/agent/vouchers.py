"""Vouchers: prepaid codes sold on paper or redeemed on the portal (issue 12).

A voucher is a code for one package (a plan): typed at the MikroTik hotspot login page it
is both the username and the password (RADIUS ``User-Name`` = the code, and the password
is the same code, typed the same way: CHAP hashes what was typed, so the password must be
the very text of the username box; the portal sends the canonical code in both). It is
not a subscriber: it has no account, no billing clock and no money path, only a package
that starts at its first login (the first Accounting-Start) and ends at the plan's period
or data amount, whichever comes first.

Codes are ``CODE_LEN`` characters from :data:`ALPHABET` (no look-alikes such as 0/O, 1/I/L,
2/Z, 5/S, 8/B), drawn with :mod:`secrets`: 25^10, about 46 bits, far beyond guessing over
RADIUS or a rate-limited form. They are printed as ``ABCDE-FGHJK``; any case, spaces and
dashes are accepted and mean the same code.

Sync. A voucher is a state entity (``voucher``, key = code: plan, status, valid_until,
mac). Its first use is an immutable ``voucher_use`` record (key = code): one code is used
once, ever. If two POPs start the same code before they sync, every POP keeps the earliest
use (hybrid clock, then event id: the same answer everywhere) and disconnects the loser's
sessions from another device (:func:`converge_use`).
"""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jasiyo.agent import plans as plans_mod
from jasiyo.agent import validate
from jasiyo.agent.desired import period_seconds
from jasiyo.agent.store import Row, Store
from jasiyo.config import Config, RadiusSection
from jasiyo.errors import NotFound, ValidationError
from jasiyo.log import event, get_logger
from jasiyo.money import format_money
from jasiyo.network import Access as NetAccess
from jasiyo.network import DesiredState, Service, mikrotik_rate_limit

log = get_logger(__name__)

#: Upper-case letters and digits that cannot be mistaken for one another when printed.
ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
CODE_LEN = 10
#: Most codes one ``generate`` call makes.
MAX_COUNT = 100_000
STATUSES = ("new", "active", "used", "expired", "revoked")
_ALPHABET_SET = frozenset(ALPHABET)


class VoucherRefused(ValidationError):
    """A voucher cannot be used; ``str()`` is a sentence for the customer."""


@dataclass(frozen=True, slots=True)
class Access:
    """What logs a device in: the credentials to post to the hotspot and the plan."""

    username: str
    password: str
    plan: str


@dataclass(frozen=True, slots=True)
class Voucher:
    code: str
    plan: str
    status: str  # new, active, used, expired, revoked
    price: str
    period: str
    data_bytes: int | None
    valid_until: float | None
    started_at: float | None
    ends_at: float | None
    mac: str | None
    batch: str | None
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


# ---------------------------------------------------------------- codes


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LEN))


@lru_cache(maxsize=65536)  # accounting asks for every record's user name
def canonical(text: str | None) -> str | None:
    """The code ``text`` means (upper case, no spaces or dashes), or None if it cannot be one."""
    if not text or len(text) > 40:
        return None
    code = "".join(c for c in text.upper() if c not in " -")
    if len(code) != CODE_LEN or not _ALPHABET_SET.issuperset(code):
        return None
    return code


def display(code: str) -> str:
    """``ABCDEFGHJK`` -> ``ABCDE-FGHJK``."""
    half = CODE_LEN // 2
    return f"{code[:half]}-{code[half:]}"


# ---------------------------------------------------------------- reading

_SELECT = (
    "SELECT v.code, v.status AS vstatus, v.valid_until, v.mac, v.batch, v.created_at, "
    "p.name AS plan, p.rate, p.burst, p.period, p.price_minor, p.currency, p.data_bytes, "
    "p.devices, u.started_at, u.mac AS used_mac "
    "FROM vouchers v JOIN plans p ON p.id = v.plan_id "
    "LEFT JOIN voucher_uses u ON u.code = v.code"
)


def _used_bytes(store: Store, code: str, since: float) -> int:
    from jasiyo.agent.usage import cycle_usage

    return cycle_usage(store, code, since)


def _status(row: Row, now: float, used_bytes: int | None) -> str:
    if row["vstatus"] == "revoked":
        return "revoked"
    if row["started_at"] is None:
        return "expired" if row["valid_until"] is not None and now > row["valid_until"] else "new"
    if now >= row["started_at"] + period_seconds(row["period"]):
        return "used"
    if row["data_bytes"] is not None and used_bytes is not None and used_bytes >= row["data_bytes"]:
        return "used"
    return "active"


def _from_row(store: Store, row: Row, now: float) -> Voucher:
    used = (
        _used_bytes(store, row["code"], row["started_at"])
        if row["started_at"] is not None and row["data_bytes"] is not None
        else None
    )
    started = row["started_at"]
    return Voucher(
        code=row["code"],
        plan=row["plan"],
        status=_status(row, now, used),
        price=format_money(row["price_minor"], row["currency"]),
        period=row["period"],
        data_bytes=row["data_bytes"],
        valid_until=row["valid_until"],
        started_at=started,
        ends_at=started + period_seconds(row["period"]) if started is not None else None,
        mac=row["mac"] or row["used_mac"],
        batch=row["batch"],
        created_at=row["created_at"],
    )


def _row(store: Store, code: str) -> Row | None:
    return store.one(f"{_SELECT} WHERE v.code = ?", (code,))


def get(store: Store, code: str) -> Voucher:
    c = canonical(code)
    row = _row(store, c) if c else None
    if row is None:
        raise NotFound(f"no voucher {code!r} (see `jasiyo voucher list`)")
    return _from_row(store, row, store.now())


def list_(
    store: Store, status: str | None = None, *, batch: str | None = None, limit: int | None = None
) -> list[Voucher]:
    if status is not None and status not in STATUSES:
        raise ValidationError(f"bad status {status!r}: use {', '.join(STATUSES)}")
    sql, params = _SELECT, []
    if batch:
        sql += " WHERE v.batch = ?"
        params.append(batch)
    now = store.now()
    out = [_from_row(store, r, now) for r in store.all(sql + " ORDER BY v.id", tuple(params))]
    if status:
        out = [v for v in out if v.status == status]
    return out[:limit] if limit else out


def export_csv(vouchers: list[Voucher], tz: str) -> str:
    """CSV of vouchers (times in the tenant's zone, ISO 8601 with the offset)."""
    zone = ZoneInfo(tz)

    def t(ts: float | None) -> str:
        return datetime.fromtimestamp(ts, zone).isoformat(timespec="seconds") if ts else ""

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        [
            "code",
            "plan",
            "price",
            "period",
            "data_bytes",
            "status",
            "valid_until",
            "started_at",
            "ends_at",
            "mac",
            "batch",
        ]
    )
    for v in vouchers:
        w.writerow(
            [
                display(v.code),
                v.plan,
                v.price,
                v.period,
                v.data_bytes or "",
                v.status,
                t(v.valid_until),
                t(v.started_at),
                t(v.ends_at),
                v.mac or "",
                v.batch or "",
            ]
        )
    return buf.getvalue()


# ---------------------------------------------------------------- writing


def generate(
    store: Store, plan: str, count: int, actor: str, *, valid_for: str = "90d", batch: str | None = None
) -> list[str]:
    """Make ``count`` new codes for ``plan``, to be first used within ``valid_for``."""
    if not 1 <= count <= MAX_COUNT:
        raise ValidationError(f"bad --count {count}: make 1 to {MAX_COUNT} vouchers at a time")
    valid_s = validate.duration_seconds(valid_for, "--valid")
    p = plans_mod.get(store, plan)
    now = store.now()
    batch = batch or f"{datetime.fromtimestamp(now):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    validate.name(batch, "batch name")
    valid_until = now + valid_s
    codes: list[str] = []
    with store.transaction():
        taken = {r["code"] for r in store.all("SELECT code FROM vouchers")} if count > 1 else set()
        while len(codes) < count:
            code = new_code()
            if code in taken or (
                count == 1 and store.scalar("SELECT 1 FROM vouchers WHERE code = ?", (code,))
            ):
                continue
            taken.add(code)
            codes.append(code)
        store.executemany(
            "INSERT INTO vouchers (code, plan_id, status, valid_until, batch, created_at, "
            "updated_at) VALUES (?, ?, 'new', ?, ?, ?, ?)",
            [(c, p.id, valid_until, batch, now, now) for c in codes],
        )
        for c in codes:
            store.emit(
                "voucher",
                c,
                "upsert",
                {"plan": p.name, "status": "new", "valid_until": valid_until, "batch": batch},
            )
        store.audit(
            actor, "voucher.generate", f"plan:{p.name}", count=count, batch=batch, valid_until=valid_until
        )
    return codes


def revoke(store: Store, code: str, actor: str) -> Voucher:
    with store.transaction():
        v = get(store, code)
        if v.status == "revoked":
            raise ValidationError(f"voucher {display(v.code)} is already revoked")
        store.execute(
            "UPDATE vouchers SET status = 'revoked', updated_at = ? WHERE code = ?", (store.now(), v.code)
        )
        store.emit("voucher", v.code, "upsert", {"status": "revoked"})
        store.audit(actor, "voucher.revoke", f"voucher:{v.code}", was=v.status)
        _disconnect(store, v.code, "voucher revoked")
    return get(store, v.code)


def _disconnect(store: Store, code: str, reason: str, *, except_mac: str | None = None) -> int:
    """Queue a Disconnect for each open session of ``code`` (but a device ``except_mac``)."""
    from jasiyo.network import normalize_mac

    rows = store.all(
        "SELECT nas_ip, acct_session_id, framed_ip, calling_station_id "
        "FROM radius_sessions WHERE username = ? AND status IN ('active', 'stale')",
        (code,),
    )
    now = store.now()
    n = 0
    for r in rows:
        if except_mac and normalize_mac(r["calling_station_id"]) == except_mac:
            continue
        cur = store.execute(
            "INSERT INTO enforce_jobs (username, action, nas_ip, acct_session_id, framed_ip, "
            "reason, next_attempt_at, created_at) SELECT ?, 'disconnect', ?, ?, ?, ?, ?, ? "
            "WHERE NOT EXISTS (SELECT 1 FROM enforce_jobs WHERE status = 'pending' AND "
            "action = 'disconnect' AND nas_ip = ? AND acct_session_id = ?)",
            (
                code,
                r["nas_ip"],
                r["acct_session_id"],
                r["framed_ip"],
                reason,
                now,
                now,
                r["nas_ip"],
                r["acct_session_id"],
            ),
        )
        n += cur.rowcount  # not a job already waiting for that session
    return n


# ---------------------------------------------------------------- the portal


def check_usable(store: Store, code: str) -> Voucher:
    """The voucher ``code`` if it can log a device in; VoucherRefused (a sentence for the
    customer) if it is unknown, used up, revoked or expired."""
    c = canonical(code)
    row = _row(store, c) if c else None
    if row is None:
        raise VoucherRefused("That voucher code is not valid: check it and try again")
    v = _from_row(store, row, store.now())
    if v.status == "revoked":
        raise VoucherRefused("This voucher has been cancelled")
    if v.status == "used":
        raise VoucherRefused("This voucher is used up")
    if v.status == "expired":
        raise VoucherRefused("This voucher has expired")
    return v


def redeem(store: Store, cfg: Config, code: str, *, mac: str | None, ip: str | None) -> Access:
    """A voucher entered on the portal: the credentials that log the device in.

    The voucher's clock starts at that login (the first Accounting-Start), not here. A
    fresh voucher redeemed with the device's ``mac`` is bound to that device (nobody who
    saw the code over a shoulder can use it elsewhere); a voucher already in use may be
    redeemed again from its own device (after a reconnect). ``ip`` is for the log only.
    """
    v = check_usable(store, code)
    device = validate.mac(mac) if mac else None
    if v.mac and device and device != v.mac:
        raise VoucherRefused("This voucher is already in use on another device")
    if device and not v.mac:
        with store.transaction():
            store.execute(
                "UPDATE vouchers SET mac = ?, updated_at = ? WHERE code = ?", (device, store.now(), v.code)
            )
            store.emit("voucher", v.code, "upsert", {"mac": device})
    event(log, "voucher.redeemed", code=display(v.code)[:3] + "...", plan=v.plan, ip=ip or None)
    return Access(username=v.code, password=v.code, plan=v.plan)


# ---------------------------------------------------------------- RADIUS


def state(row: Row, radius: RadiusSection) -> DesiredState:
    """The desired state of a voucher (a ``_SELECT`` row) for RADIUS."""
    common: dict[str, Any] = {"username": row["code"], "service": Service.HOTSPOT, "plan": row["plan"]}
    if row["vstatus"] == "revoked":
        return DesiredState(
            access=NetAccess.REJECT, rate_limit="", note="This voucher has been cancelled", **common
        )
    length = period_seconds(row["period"])
    limits: dict[str, Any] = {
        "data_limit": row["data_bytes"],
        "simultaneous_use": row["devices"],
        "mac": row["mac"],
        "hard_end": True,
    }
    if row["started_at"] is None:
        limits.update(duration=length, starts_by=row["valid_until"])
    else:
        limits.update(ends_at=row["started_at"] + length, data_since=row["started_at"])
    return DesiredState(
        access=NetAccess.ALLOW,
        rate_limit=mikrotik_rate_limit(row["rate"], row["burst"]),
        interim_interval=radius.interim_interval,
        **common,
        **limits,
    )


def subject_row(store: Store, username: str) -> Row | None:
    """The voucher a RADIUS ``User-Name`` names, if any (one indexed read)."""
    code = canonical(username)
    return _row(store, code) if code else None


def account_name(store: Store, username: str) -> str:
    """The name accounting keeps a session under: a voucher typed in another form
    (``abcde-fghjk``) is kept under its code; everything else as sent."""
    code = canonical(username)
    if code is None or code == username:
        return username
    if store.scalar("SELECT 1 FROM subscribers WHERE username = ?", (username,)):
        return username
    return code if store.scalar("SELECT 1 FROM vouchers WHERE code = ?", (code,)) else username


def note_use(store: Store, code: str, mac: str | None, at: float) -> bool:
    """Accounting-Start for ``code``: its first use starts its clock (once). True if it did."""
    if store.scalar("SELECT 1 FROM voucher_uses WHERE code = ?", (code,)):
        return False
    if not store.scalar("SELECT 1 FROM vouchers WHERE code = ?", (code,)):
        return False
    from jasiyo.network import normalize_mac

    data = {"code": code, "started_at": at, "mac": normalize_mac(mac), "pop": store.agent_id}
    store.execute(
        "INSERT INTO voucher_uses (code, started_at, mac, pop) VALUES (?, ?, ?, ?)",
        (code, at, data["mac"], data["pop"]),
    )
    store.emit("voucher_use", code, "append", data)
    return True


def converge_use(store: Store, code: str, winner: dict[str, Any]) -> None:
    """Sync: keep the earliest use of ``code`` (``winner``) on every POP. A POP that had
    recorded its own, later, use replaces it and disconnects that device's sessions."""
    row = store.one("SELECT started_at, mac, pop FROM voucher_uses WHERE code = ?", (code,))
    if row is None or (row["started_at"], row["mac"], row["pop"]) == (
        winner.get("started_at"),
        winner.get("mac"),
        winner.get("pop"),
    ):
        return
    store.execute("DELETE FROM voucher_uses WHERE code = ?", (code,))
    n = _disconnect(store, code, "voucher first used at another POP", except_mac=winner.get("mac"))
    event(
        log,
        "sync.voucher_conflict",
        level=30,
        code=display(code)[:3] + "...",
        kept=winner.get("pop"),
        dropped=row["pop"],
        disconnects=n,
    )
