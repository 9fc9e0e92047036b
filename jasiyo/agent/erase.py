"""``jasiyo subscriber erase``: write the erasure event, apply it here, and what the cloud is
owed afterwards. How a POP applies an erasure (here and on every other) is :mod:`.scrub`."""

from __future__ import annotations

import secrets

from jasiyo.agent.fold import materialize
from jasiyo.agent.scrub import PERSONAL, Erased, apply_erasure, subject_of
from jasiyo.agent.store import Row, Store
from jasiyo.errors import NotFound, ValidationError

__all__ = [
    "Erased",
    "apply_erasure",
    "erase",
    "flush_files",
    "pending_redactions",
    "redacted",
    "redactions_owed",
]


def erase(store: Store, username: str, actor: str, reason: str = "") -> Erased:
    """Erase a subscriber's personal data here, and (by its event) on every other POP."""
    if len(reason) > 500:
        raise ValidationError("--reason: at most 500 characters")
    with store.transaction():
        if store.scalar("SELECT 1 FROM subscribers WHERE username = ?", (username,)) is None:
            raise NotFound(f"no subscriber named {username!r}")
        if username.startswith("erased-"):
            raise ValidationError(f"{username} is already erased")
        pseudonym = f"erased-{secrets.token_hex(6)}"
        now = store.now()
        data = {
            "subject": subject_of(username),
            "reason": reason,
            "by": actor,
            "at": now,
            "password": secrets.token_urlsafe(24),
            "status": "terminated",
            "status_reason": "erased",
            "sms_consent": False,
            **{k: None for k in PERSONAL},
        }
        event_id = store.emit("subscriber", pseudonym, "erase", data)
        rewritten = apply_erasure(store, event_id, pseudonym, data)
        materialize(store, "subscriber", pseudonym)
        store.audit(
            actor, "subscriber.erase", f"subscriber:{pseudonym}", reason=reason, events_rewritten=rewritten
        )
    flush_files(store)
    return Erased(pseudonym, actor, reason, now, rewritten)


def flush_files(store: Store) -> None:
    """Checkpoint the WAL into the main file and truncate it: the old pages go with it."""
    store.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def pending_redactions(store: Store, limit: int = 500) -> tuple[list[Row], list[str]]:
    """(event rows to re-send scrubbed, webhook ids to drop) still owed to the cloud."""
    events = store.all(
        "SELECT e.id, e.hlc, e.origin, e.entity, e.key, e.op, e.data "
        "FROM cloud_redactions r JOIN events e ON e.id = r.id "
        "WHERE r.kind = 'event' AND e.pushed_at IS NOT NULL LIMIT ?",
        (limit,),
    )
    hooks = [
        r["id"] for r in store.all("SELECT id FROM cloud_redactions WHERE kind = 'hook' LIMIT ?", (limit,))
    ]
    return events, hooks


def redactions_owed(store: Store) -> int:
    """How many kinds (events, hooks) :func:`pending_redactions` would return some of."""
    return int(
        store.scalar(
            "SELECT EXISTS (SELECT 1 FROM cloud_redactions r JOIN events e ON e.id = r.id "
            "WHERE r.kind = 'event' AND e.pushed_at IS NOT NULL) "
            "+ EXISTS (SELECT 1 FROM cloud_redactions WHERE kind = 'hook')"
        )
        or 0
    )


def redacted(store: Store, event_ids: list[str], hook_ids: list[str]) -> None:
    with store.transaction():
        store.executemany(
            "DELETE FROM cloud_redactions WHERE kind = 'event' AND id = ?", [(i,) for i in event_ids]
        )
        store.executemany(
            "DELETE FROM cloud_redactions WHERE kind = 'hook' AND id = ?", [(i,) for i in hook_ids]
        )
