"""The notifications outbox: messages for the SMS sender, written with the change they tell.

Only subscribers who gave SMS consent (and have a phone number) get rows. Each message has
a unique key (a reminder for one expiry and one lead time, a receipt for one payment), so
a retried tick or a replayed payment never queues it twice. ``not_after`` tells the sender
when a message has gone stale (a reminder after the expiry it warns about).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from jasiyo.agent.store import Row, Store


@dataclass(frozen=True, slots=True)
class Notification:
    key: str
    username: str
    phone: str
    kind: str
    message: str
    created_at: float
    not_after: float | None
    sent_at: float | None
    #: queued, sending, sent, delivered, failed, dropped (the SMS sender, :mod:`.smswork`).
    status: str = "queued"
    attempts: int = 0
    parts: int | None = None
    encoding: str | None = None
    cost_minor: int | None = None
    cost_currency: str | None = None
    message_id: str | None = None
    finished_at: float | None = None
    detail: str | None = None
    id: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def queue(
    store: Store,
    sub: Row,
    kind: str,
    key: str,
    message: str,
    at: float,
    not_after: float | None = None,
    values: dict[str, Any] | None = None,
) -> bool:
    """Queue one message for ``sub`` (in the caller's transaction). True if a row was added.

    Nothing is queued without SMS consent and a phone number, or when ``key`` is queued.
    ``values`` are the template variables (``jasiyo.sms.templates``): the sender renders
    the configured template of ``kind`` with them; ``message`` is the text otherwise.
    """
    if not sub["sms_consent"] or not sub["phone"]:
        return False
    cur = store.execute(
        "INSERT OR IGNORE INTO notifications (key, username, phone, kind, message, created_at, "
        "not_after, vars, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            key,
            sub["username"],
            sub["phone"],
            kind,
            message,
            at,
            not_after,
            json.dumps(values, default=str) if values is not None else None,
            at,
        ),
    )
    return cur.rowcount > 0


def pending(store: Store, now: float | None = None, limit: int = 100) -> list[Notification]:
    """Unsent messages that are not stale, oldest first (what the SMS sender takes)."""
    now = store.now() if now is None else now
    rows = store.all(
        "SELECT * FROM notifications WHERE status = 'queued' "
        "AND (not_after IS NULL OR not_after > ?) ORDER BY created_at, id LIMIT ?",
        (now, limit),
    )
    return [_from_row(r) for r in rows]


def list_(
    store: Store, username: str | None = None, limit: int = 1000, status: str | None = None
) -> list[Notification]:
    where, args = [], []
    if username:
        where.append("username = ?")
        args.append(username)
    if status:
        where.append("status = ?")
        args.append(status)
    sql = "SELECT * FROM notifications"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = store.all(sql + " ORDER BY created_at, id LIMIT ?", (*args, limit))
    return [_from_row(r) for r in rows]


def mark_sent(store: Store, key: str, at: float | None = None) -> None:
    with store.transaction():
        store.execute(
            "UPDATE notifications SET sent_at = ?, status = 'sent' WHERE key = ?",
            (store.now() if at is None else at, key),
        )


def _from_row(row: Row) -> Notification:
    return Notification(
        key=row["key"],
        username=row["username"],
        phone=row["phone"],
        kind=row["kind"],
        message=row["text_sent"] or row["message"],
        created_at=row["created_at"],
        not_after=row["not_after"],
        sent_at=row["sent_at"],
        status=row["status"],
        attempts=row["attempts"],
        parts=row["parts"],
        encoding=row["encoding"],
        cost_minor=row["cost_minor"],
        cost_currency=row["cost_currency"],
        message_id=row["message_id"],
        finished_at=row["finished_at"],
        detail=row["detail"],
        id=row["id"],
    )
