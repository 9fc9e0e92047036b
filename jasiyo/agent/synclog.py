"""The agent store seen by the sync client as its event log (``EventLog``)."""

from __future__ import annotations

from jasiyo.agent.fold import apply_events
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.sync.client import QUARANTINE, LocalEvent, Quarantined, RemoteEvent


class AgentLog:
    """The agent store seen by :class:`jasiyo.sync.client.SyncClient` (its ``EventLog``)."""

    def __init__(self, store: Store, cfg: Config | None = None) -> None:
        self.store = store
        #: With a config, the dashboard's requests are carried out after each batch.
        self.cfg = cfg

    @property
    def agent_id(self) -> str:
        return self.store.agent_id

    def outbox(self, limit: int) -> list[LocalEvent]:
        rows = self.store.all(
            "SELECT id, hlc, origin, entity, key, op, data, created_at FROM events "
            "WHERE pushed_at IS NULL ORDER BY rowid LIMIT ?",
            (limit,),
        )
        return [
            LocalEvent(
                r["id"],
                r["hlc"],
                r["origin"],
                r["entity"],
                r["key"],
                r["op"],
                self.store.event_data(r),
                r["created_at"],
            )
            for r in rows
        ]

    def mark_pushed(self, ids: list[str]) -> None:
        with self.store.transaction():
            self.store.executemany(
                "UPDATE events SET pushed_at = ? WHERE id = ?", [(self.store.now(), i) for i in ids]
            )

    def backlog(self) -> tuple[int, float | None]:
        row = self.store.one(
            "SELECT count(*) AS n, min(created_at) AS oldest FROM events WHERE pushed_at IS NULL"
        )
        return (row["n"], row["oldest"]) if row else (0, None)

    def get(self, key: str) -> str | None:
        return self.store.meta(key)

    def put(self, values: dict[str, str]) -> None:
        with self.store.transaction():
            for k, v in values.items():
                self.store.set_meta(k, v)

    def apply(self, events: list[RemoteEvent], meta: dict[str, str] | None = None) -> int:
        """Apply and, in the same transaction, advance the cursor (``meta``)."""
        with self.store.transaction():
            n = apply_events(self.store, events)
            for k, v in (meta or {}).items():
                self.store.set_meta(k, v)
        if any(e.op == "erase" for e in events):
            from jasiyo.agent.erase import flush_files

            flush_files(self.store)  # the erased person's old pages leave the WAL too
        if self.cfg is not None:
            from jasiyo.agent import requests

            requests.run(self.store, self.cfg)  # never raises: see requests._guarded
        return n

    def quarantined(self) -> list[Quarantined]:
        rows = self.store.all(
            "SELECT value FROM meta WHERE substr(key, 1, ?) = ?", (len(QUARANTINE), QUARANTINE)
        )
        return sorted((Quarantined.from_json(r["value"]) for r in rows), key=lambda q: q.seq)

    def release(self, ids: list[str]) -> None:
        with self.store.transaction():
            self.store.executemany("DELETE FROM meta WHERE key = ?", [(QUARANTINE + i,) for i in ids])

    # Erasure (jasiyo.agent.erase): cloud copies still to be replaced or dropped.

    def redactions(self, limit: int) -> tuple[list[LocalEvent], list[str]]:
        from jasiyo.agent.erase import pending_redactions

        rows, hooks = pending_redactions(self.store, limit)
        return [
            LocalEvent(
                r["id"], r["hlc"], r["origin"], r["entity"], r["key"], r["op"], self.store.event_data(r)
            )
            for r in rows
        ], hooks

    def mark_redacted(self, ids: list[str], hooks: list[str]) -> None:
        from jasiyo.agent.erase import redacted

        redacted(self.store, ids, hooks)

    def redactions_owed(self) -> int:
        """Non-zero if :meth:`redactions` has anything (one query, nothing unsealed: the
        pusher asks every poll)."""
        from jasiyo.agent.erase import redactions_owed

        return redactions_owed(self.store)
