"""Unmatched payments as synced state: the ``suspense`` entity (key = the reference).

Money that matched nobody (``payment_suspense``, :mod:`.collect`) is published whole when it
is kept and again when it is allocated, so the dashboard lists it and every POP has the row:
a dashboard's allocation runs at the subscriber's home POP (:mod:`.requests`), which need
not be the POP that received the money (a callback registered by another POP is only kept
there as ``other_pop``, never processed). Every event carries the whole record: the fold
drops a row whose record is incomplete, so a partial upsert would delete it.

A conflict between POPs (one receipt recorded for two subscribers, :mod:`.fold`) is listed
by every POP from the payments themselves and is not published until it is allocated.
"""

from __future__ import annotations

from typing import Any

from jasiyo.agent.store import Store

#: The row's columns an event carries (``pop`` is added: the POP that received the money).
FIELDS = (
    "reference",
    "provider",
    "amount_minor",
    "currency",
    "account",
    "phone",
    "reason",
    "received_at",
    "status",
    "allocated_to",
    "allocated_at",
    "allocated_by",
)


def publish(store: Store, reference: str) -> dict[str, Any] | None:
    """Emit the suspense row of ``reference`` as it is now (inside the caller's transaction)."""
    from jasiyo.agent import fold, popname

    row = store.one(f"SELECT {', '.join(FIELDS)} FROM payment_suspense WHERE reference = ?", (reference,))
    if row is None:
        return None
    earlier, _stamps, _exists = fold.folded(store, "suspense", reference)
    data = {**row, "pop": earlier.get("pop") or store.meta(popname.NAME_KEY)}
    store.emit("suspense", reference, "upsert", data)
    return data


def backfill(store: Store) -> int:
    """Publish the unmatched payments kept before they were synced (once each; cheap after)."""
    rows = store.all(
        "SELECT reference FROM payment_suspense p WHERE (inbox_id IS NOT NULL OR reason NOT LIKE "
        "'conflict:%') AND NOT EXISTS (SELECT 1 FROM events e WHERE e.entity = 'suspense' "
        "AND e.key = p.reference) ORDER BY id LIMIT 500"
    )
    if not rows:
        return 0
    with store.transaction():
        for r in rows:
            publish(store, r["reference"])
    return len(rows)
