"""Retention: personal data kept only as long as ``[privacy]`` says, pruned once a day.

Each class has its limit in days (0 keeps it for ever):

=================  ==========================================================  ==============
class              what goes                                                   limit
=================  ==========================================================  ==============
accounting         raw Accounting-Requests (and finished enforcement jobs)     [radius]
                                                                               accounting_
                                                                               retention_days
sessions           RADIUS sessions that ended (framed IP, MAC)                 session_days
events             sync events every field of which a later event overwrote    event_days
                   (or that a later delete cancelled): the current state is
                   never touched; invoice events kept money_retention_years,
                   the one event of an immutable record (payment) for ever
audit              audit lines                                                 audit_days
sms                finished messages (text, phone) and processed incoming SMS  sms_days
webhooks           processed payment callbacks (here, and their bodies in the  webhook_days
                   cloud, dropped by the pusher)
=================  ==========================================================  ==============

Money records (payments, ledger, invoices, credit notes, the suspense list) are never
deleted; :func:`report` says how long they have been held.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from jasiyo.agent import sessions
from jasiyo.agent.fold import ENTITIES
from jasiyo.agent.store import Row, Store
from jasiyo.config import Config
from jasiyo.log import event, get_logger

log = get_logger(__name__)
DAY = 86400.0
YEAR = 365.25 * DAY
#: Events of these entities are money: kept at least ``money_retention_years``.
MONEY_ENTITIES = ("payment", "ledger", "invoice", "credit_note")
_MONEY_TABLES = ("payments", "ledger", "invoices", "credit_notes", "payment_suspense")


def _cutoff(now: float, days: int) -> float | None:
    return now - days * DAY if days else None


def supersession(store: Store, rows: Iterable[Row]) -> Iterator[tuple[Row, dict[str, Any], bool]]:
    """Each of one row's events (given newest first) with its data and whether later events
    supersede it: every field set again later, or a later delete. Dropping such an event
    changes no fold: the rule retention drops by and a snapshot keeps by."""
    later: set[str] = set()
    deleted_after = False
    for r in rows:
        data = store.event_data(r)
        fields = set() if r["op"] == "delete" else set(data)
        yield r, data, deleted_after or (r["op"] != "delete" and fields <= later)
        if r["op"] == "delete":
            deleted_after = True
        later |= fields


def _superseded(store: Store, entity: str, key: str, cutoff: float) -> list[str]:
    """Ids of pushed events older than ``cutoff`` that later events of the same row
    supersede (:func:`supersession`)."""
    rows = store.all(
        "SELECT id, op, data, created_at, pushed_at FROM events WHERE entity = ? "
        "AND key = ? ORDER BY hlc DESC, id DESC",
        (entity, key),
    )
    return [
        r["id"]
        for r, _data, superseded in supersession(store, rows)
        if superseded and r["created_at"] < cutoff and r["pushed_at"] is not None
    ]


def prune_events(store: Store, cfg: Config, now: float) -> int:
    """Drop superseded sync events of state rows (never an immutable record's event)."""
    days = cfg.privacy.event_days
    if not days:
        return 0
    cutoff = now - days * DAY
    money_cutoff = min(cutoff, now - cfg.privacy.money_retention_years * YEAR)
    doomed: list[str] = []
    for r in store.all(
        "SELECT DISTINCT entity, key FROM events WHERE created_at < ? AND pushed_at IS NOT NULL", (cutoff,)
    ):
        spec = ENTITIES.get(r["entity"])
        if spec is None:
            continue
        limit = money_cutoff if r["entity"] in MONEY_ENTITIES else cutoff
        # Immutable records (payments, ledger entries, consent) keep their one event: it is
        # what a snapshot carries to a rebuilt POP (jasiyo.agent.snapshot).
        if spec.kind == "state":
            doomed += _superseded(store, r["entity"], r["key"], limit)
    with store.transaction():
        store.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in doomed])
    return len(doomed)


def prune(store: Store, cfg: Config, now: float | None = None) -> dict[str, int]:
    """One retention pass over every class; rows removed per class."""
    now = store.now() if now is None else now
    p = cfg.privacy
    out = {"accounting": 0, "sessions": 0, "jobs": 0, **sessions.prune(store, cfg, now)}
    with store.transaction():
        cut = _cutoff(now, p.session_days)
        if cut is not None:
            out["sessions"] += store.execute(
                "DELETE FROM radius_sessions WHERE status <> 'active' AND "
                "COALESCE(stopped_at, last_update_at) < ?",
                (cut,),
            ).rowcount
        cut = _cutoff(now, p.audit_days)
        out["audit"] = (
            store.execute("DELETE FROM audit WHERE at < ?", (cut,)).rowcount if cut is not None else 0
        )
        cut = _cutoff(now, p.sms_days)
        out["sms"] = 0
        if cut is not None:
            out["sms"] = (
                store.execute(
                    "DELETE FROM notifications WHERE status NOT IN ('queued', 'sending') AND created_at < ?",
                    (cut,),
                ).rowcount
                + store.execute(
                    "DELETE FROM sms_inbox WHERE status <> 'new' AND received_at < ?", (cut,)
                ).rowcount
            )
        cut = _cutoff(now, p.webhook_days)
        out["webhooks"] = 0
        if cut is not None:
            gone = store.all(
                "SELECT id, source FROM payment_inbox WHERE status NOT IN ('new', 'retry') "
                "AND received_at < ? AND id NOT IN (SELECT inbox_id FROM payment_suspense "
                "WHERE inbox_id IS NOT NULL)",
                (cut,),
            )
            store.executemany("DELETE FROM payment_inbox WHERE id = ?", [(g["id"],) for g in gone])
            store.executemany(  # the cloud drops its copy of the body too (sent by the pusher)
                "INSERT OR IGNORE INTO cloud_redactions (kind, id) VALUES ('hook', ?)",
                [(g["source"].removeprefix("cloud:"),) for g in gone if g["source"].startswith("cloud:")],
            )
            out["webhooks"] = len(gone)
    out["events"] = prune_events(store, cfg, now)
    if any(out.values()):
        event(log, "retention.pruned", **out)
    return out


@dataclass(frozen=True)
class Held:
    """One class of data: how much is held, since when, and how long it is kept."""

    kind: str
    rows: int
    oldest: float | None
    keep_days: int | None  # None: never deleted
    note: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def report(store: Store, cfg: Config) -> list[Held]:
    """What this POP holds, for how long (``jasiyo privacy report``)."""
    p = cfg.privacy

    def held(kind: str, sql: str, keep: int | None, note: str) -> Held:
        row = store.one(sql) or {}
        return Held(kind, int(row.get("n") or 0), row.get("oldest"), keep, note)

    money_days = int(p.money_retention_years * 365.25)
    out = [
        held(
            "subscribers",
            "SELECT count(*) AS n, min(created_at) AS oldest FROM subscribers",
            None,
            "until erased (`jasiyo subscriber erase`)",
        ),
        held(
            "accounting",
            "SELECT count(*) AS n, min(received_at) AS oldest FROM accounting",
            cfg.radius.accounting_retention_days or None,
            "[radius] accounting_retention_days",
        ),
        held(
            "sessions",
            "SELECT count(*) AS n, min(started_at) AS oldest FROM radius_sessions",
            p.session_days or None,
            "ended sessions: [privacy] session_days",
        ),
        held(
            "events",
            "SELECT count(*) AS n, min(created_at) AS oldest FROM events",
            p.event_days or None,
            "superseded events: [privacy] event_days (invoices' at "
            f"least {p.money_retention_years} years; a payment's own event for ever)",
        ),
        held(
            "audit",
            "SELECT count(*) AS n, min(at) AS oldest FROM audit",
            p.audit_days or None,
            "[privacy] audit_days",
        ),
        held(
            "sms",
            "SELECT count(*) AS n, min(created_at) AS oldest FROM notifications",
            p.sms_days or None,
            "finished messages: [privacy] sms_days",
        ),
        held(
            "webhooks",
            "SELECT count(*) AS n, min(received_at) AS oldest FROM payment_inbox",
            p.webhook_days or None,
            "processed callbacks: [privacy] webhook_days",
        ),
    ]
    for table in _MONEY_TABLES:
        col = {
            "ledger": "at",
            "payments": "received_at",
            "invoices": "issued_at",
            "credit_notes": "issued_at",
            "payment_suspense": "received_at",
        }[table]
        out.append(
            held(
                table,
                f"SELECT count(*) AS n, min({col}) AS oldest FROM {table}",
                None,
                f"money: never deleted (legal minimum {money_days} days)",
            )
        )
    return out
