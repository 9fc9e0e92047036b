"""SMS consent as a record: when, how (cli, csv, portal, keyword), by whom, from where.

The subscriber's ``sms_consent`` flag is the current value (every path that queues a
message checks it, ``notify.queue``); each change of it writes one ``sms_consent`` row and
one ``sms_consent`` sync event, so every POP holds the same history. Withdrawing consent
also drops the subscriber's queued messages at once: nothing already waiting goes out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from jasiyo.agent.store import Store
from jasiyo.errors import NotFound, ValidationError
from jasiyo.log import event, get_logger
from jasiyo.sync.ids import uuid7

log = get_logger(__name__)
HOW = ("cli", "csv", "portal", "keyword")


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    username: str
    given: bool
    how: str
    actor: str
    source: str
    at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def note(
    store: Store, username: str, given: bool, how: str, actor: str, source: str = "", at: float | None = None
) -> ConsentRecord:
    """Record a change of consent that the caller has written to ``subscribers`` already
    (in the caller's transaction): the history row, its sync event, queued messages dropped."""
    if how not in HOW:
        raise ValidationError(f"consent can be given by {', '.join(HOW)}, not {how!r}")
    sub_id = store.scalar("SELECT id FROM subscribers WHERE username = ?", (username,))
    if sub_id is None:
        raise NotFound(f"no subscriber named {username!r}")
    now = store.now() if at is None else at
    ref = uuid7(int(now * 1000))
    rec = ConsentRecord(username, bool(given), how, actor[:120], source[:200], now)
    store.execute(
        "INSERT INTO sms_consent (ref, subscriber_id, given, how, actor, source, at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (ref, sub_id, int(rec.given), rec.how, rec.actor, rec.source, now),
    )
    store.emit("sms_consent", ref, "append", rec.to_dict())
    store.audit(
        actor, "subscriber.sms_consent", f"subscriber:{username}", given=rec.given, how=how, source=source
    )
    if not given:
        store.execute(
            "UPDATE notifications SET status = 'dropped', detail = 'consent withdrawn', "
            "finished_at = ? WHERE username = ? AND status = 'queued'",
            (now, username),
        )
    return rec


def set_consent(
    store: Store, username: str, given: bool, how: str, actor: str, source: str = "", at: float | None = None
) -> ConsentRecord | None:
    """Give or withdraw consent now; None when it already was so (nothing recorded)."""
    with store.transaction():
        row = store.one("SELECT sms_consent FROM subscribers WHERE username = ?", (username,))
        if row is None:
            raise NotFound(f"no subscriber named {username!r}")
        if bool(row["sms_consent"]) == bool(given):
            return None
        now = store.now() if at is None else at
        store.execute(
            "UPDATE subscribers SET sms_consent = ?, updated_at = ? WHERE username = ?",
            (int(given), now, username),
        )
        store.emit("subscriber", username, "upsert", {"sms_consent": bool(given)})
        rec = note(store, username, given, how, actor, source, now)
    event(log, "sms.consent", user=username, given=given, how=how)
    return rec


def history(store: Store, username: str, limit: int = 50) -> list[ConsentRecord]:
    rows = store.all(
        "SELECT c.*, s.username FROM sms_consent c JOIN subscribers s ON s.id = c.subscriber_id "
        "WHERE s.username = ? ORDER BY c.at DESC, c.id DESC LIMIT ?",
        (username, limit),
    )
    return [
        ConsentRecord(r["username"], bool(r["given"]), r["how"], r["actor"], r["source"], r["at"])
        for r in rows
    ]


def latest(store: Store, username: str) -> ConsentRecord | None:
    got = history(store, username, 1)
    return got[0] if got else None
