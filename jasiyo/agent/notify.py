"""The notifications outbox: messages for the SMS sender, written with the change they tell.

Only subscribers who gave SMS consent (and have a phone number) get rows. Each message has
a unique key (a reminder for one expiry and one lead time, a receipt for one payment), so
a retried tick or a replayed payment never queues it twice. ``not_after`` tells the sender
when a message has gone stale (a reminder after the expiry it warns about).
"""

from __future__ import annotations

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def queue(
    store: Store, sub: Row, kind: str, key: str, message: str, at: float,
    not_after: float | None = None,
) -> bool:
    """Queue one message for ``sub`` (in the caller's transaction). True if a row was added.

    Nothing is queued without SMS consent and a phone number, or when ``key`` is queued.
    """
    if not sub["sms_consent"] or not sub["phone"]:
        return False
    cur = store.conn.execute(
        "INSERT OR IGNORE INTO notifications (key, username, phone, kind, message, created_at, "
        "not_after) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (key, sub["username"], sub["phone"], kind, message, at, not_after),
    )
    return cur.rowcount > 0


def pending(store: Store, now: float | None = None, limit: int = 100) -> list[Notification]:
    """Unsent messages that are not stale, oldest first (what the SMS sender takes)."""
    now = store.now() if now is None else now
    rows = store.all(
        "SELECT * FROM notifications WHERE sent_at IS NULL "
        "AND (not_after IS NULL OR not_after > ?) ORDER BY created_at, id LIMIT ?",
        (now, limit),
    )
    return [_from_row(r) for r in rows]


def list_(store: Store, username: str | None = None, limit: int = 1000) -> list[Notification]:
    if username:
        rows = store.all("SELECT * FROM notifications WHERE username = ? "
                         "ORDER BY created_at, id LIMIT ?", (username, limit))
    else:
        rows = store.all("SELECT * FROM notifications ORDER BY created_at, id LIMIT ?", (limit,))
    return [_from_row(r) for r in rows]


def mark_sent(store: Store, key: str, at: float | None = None) -> None:
    with store.transaction():
        store.conn.execute("UPDATE notifications SET sent_at = ? WHERE key = ?",
                           (store.now() if at is None else at, key))


def _from_row(row: Row) -> Notification:
    return Notification(
        key=row["key"], username=row["username"], phone=row["phone"], kind=row["kind"],
        message=row["message"], created_at=row["created_at"], not_after=row["not_after"],
        sent_at=row["sent_at"],
    )
