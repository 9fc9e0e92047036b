"""The cloud's storage: one set of queries over two backends (SQLite, PostgreSQL).

Every operation on a tenant's rows runs in :meth:`Storage.tx` with that tenant named; on
PostgreSQL this sets ``jasiyo.tenant`` for the transaction, which the Row Level Security
policies compare against, so isolation does not depend on each query's ``WHERE`` clause.
Queries are written once with ``?`` placeholders; the PostgreSQL backend converts them.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from jasiyo.errors import CloudError
from jasiyo.migrations import unknown_message

#: Nonces older than this are forgotten: a request that old is refused as stale anyway.
NONCE_TTL = 900


#: What an enrolled key speaks for: a POP's agent, or a browser's dashboard.
KINDS = ("agent", "dashboard")


@dataclass(frozen=True)
class AgentRecord:
    id: str
    tenant_id: str
    name: str
    public_key: str
    revoked_at: float | None
    kind: str = "agent"
    #: Its last signed request, and the last seq the cloud sent it: recorded at most
    #: every :data:`jasiyo.cloud.dashboard_api.SEEN_EVERY` seconds.
    last_seen: float | None = None
    cursor: int | None = None
    created_at: float | None = None


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    id: str
    origin: str
    envelope: str
    #: When the cloud stored it (the cloud's clock): bounds how far ahead its clock may be.
    received_at: float = 0.0


@dataclass(frozen=True)
class PushResult:
    accepted: int
    duplicates: int
    head: int


class Tx(ABC):
    """One open transaction: run statements, get rows as tuples."""

    @abstractmethod
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]: ...

    @abstractmethod
    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute; the number of rows changed."""

    @abstractmethod
    def many(self, sql: str, seq: Sequence[Sequence[Any]]) -> None: ...

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        found = self.rows(sql, params)
        return found[0] if found else None


class Storage(ABC):
    """Operations the API needs. Subclasses provide transactions and dialect details."""

    backend = "abstract"
    for_update = ""
    #: The names of this backend's migrations (:mod:`jasiyo.cloud.migrations`).
    migration_names: tuple[str, ...] = ()

    @abstractmethod
    def tx(self, tenant: str | None, *, write: bool = True) -> AbstractContextManager[Tx]:
        """A transaction scoped to ``tenant`` (None: no tenant rows are visible)."""

    @abstractmethod
    def migrate(self) -> list[str]:
        """Apply pending migrations; the names applied."""

    @abstractmethod
    def close(self) -> None: ...

    def check_migrations(self) -> None:
        """CloudError if a newer Jasiyo migrated the database: this code would not know its
        schema. (``migrate`` checks as well; this is for a service that does not migrate.)"""
        with self.tx(None, write=False) as t:
            applied = {r[0] for r in t.rows("SELECT name FROM jasiyo_migrations")}
        unknown = applied - set(self.migration_names)
        if unknown:
            raise CloudError(unknown_message("the cloud database", unknown))

    def in_list(self, column: str, values: Sequence[str]) -> tuple[str, list[Any]]:
        return f"{column} IN ({','.join('?' * len(values))})", list(values)

    def after_push(self, tx: Tx, tenant: str) -> None:
        """Run inside a transaction that appended events or webhooks, or revoked an agent:
        waiting long-polls of the tenant must look again (PostgreSQL: NOTIFY)."""
        return None

    def is_integrity_error(self, exc: BaseException) -> bool:
        return False

    # ------------------------------------------------------------ operators and tenants

    def health(self) -> None:
        with self.tx(None, write=False) as t:
            t.rows("SELECT 1")

    def add_operator(self, op_id: str, token_hash: str, now: float) -> bool:
        with self.tx(None) as t:
            if t.one("SELECT 1 FROM operators WHERE token_hash = ?", (token_hash,)):
                return False
            t.run(
                "INSERT INTO operators (id, token_hash, created_at) VALUES (?, ?, ?)",
                (op_id, token_hash, now),
            )
            return True

    def operators(self) -> list[tuple[str, str, float]]:
        """(id, token hash, created) of every operator token (the tables' owner only)."""
        with self.tx(None, write=False) as t:
            return [
                (r[0], r[1], float(r[2]))
                for r in t.rows("SELECT id, token_hash, created_at FROM operators ORDER BY created_at")
            ]

    def revoke_operator(self, op_id: str) -> bool:
        """Forget an operator token: it is refused from now on (the tables' owner only)."""
        with self.tx(None) as t:
            return t.run("DELETE FROM operators WHERE id = ?", (op_id,)) == 1

    def delete_tenant(self, tenant: str) -> dict[str, int]:
        """Remove every row of the tenant from every table (its log, webhooks, agents, keys
        ids, nonces, the tenant itself): rows deleted per table. The tables' owner only."""
        from jasiyo.cloud.migrations import TENANT_TABLES

        counts: dict[str, int] = {}
        with self.tx(tenant) as t:
            for table in reversed(TENANT_TABLES):  # children first, tenants last
                column = "id" if table == "tenants" else "tenant_id"
                counts[table] = t.run(f"DELETE FROM {table} WHERE {column} = ?", (tenant,))
        return counts

    def is_operator(self, token_hash: str) -> bool:
        with self.tx(None, write=False) as t:
            return t.one("SELECT 1 FROM operators WHERE token_hash = ?", (token_hash,)) is not None

    def create_tenant(self, tenant: str, name: str, admin_hash: str, now: float) -> None:
        with self.tx(tenant) as t:
            t.run(
                "INSERT INTO tenants (id, tenant_id, name, admin_token_hash, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (tenant, tenant, name, admin_hash, now),
            )

    def is_admin(self, tenant: str, admin_hash: str) -> bool:
        with self.tx(tenant, write=False) as t:
            row = t.one("SELECT 1 FROM tenants WHERE id = ? AND admin_token_hash = ?", (tenant, admin_hash))
            return row is not None

    def add_enrolment(self, tenant: str, token_hash: str, expires_at: float, now: float) -> None:
        with self.tx(tenant) as t:
            t.run(
                "INSERT INTO enrolments (token_hash, tenant_id, expires_at, created_at) VALUES (?, ?, ?, ?)",
                (token_hash, tenant, expires_at, now),
            )

    def enroll(self, tenant: str, token_hash: str, agent: AgentRecord, now: float) -> str:
        """Consume a one-time token and register the agent: 'ok', 'invalid' or 'conflict'."""
        try:
            with self.tx(tenant) as t:
                used = t.run(
                    "UPDATE enrolments SET used_at = ?, agent_id = ? WHERE tenant_id = ? "
                    "AND token_hash = ? AND used_at IS NULL AND expires_at > ?",
                    (now, agent.id, tenant, token_hash, now),
                )
                if used != 1:
                    return "invalid"
                t.run(
                    "INSERT INTO agents (id, tenant_id, name, public_key, created_at, kind) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (agent.id, tenant, agent.name, agent.public_key, now, agent.kind),
                )
        except Exception as exc:
            # A duplicate agent id (possibly another tenant's: RLS hides the row, not the key).
            if self.is_integrity_error(exc):
                return "conflict"
            raise
        return "ok"

    _AGENT_COLUMNS = "id, tenant_id, name, public_key, revoked_at, kind, last_seen, cursor, created_at"

    @staticmethod
    def _agent(row: tuple) -> AgentRecord:
        return AgentRecord(
            row[0],
            row[1],
            row[2],
            row[3],
            None if row[4] is None else float(row[4]),
            row[5],
            None if row[6] is None else float(row[6]),
            None if row[7] is None else int(row[7]),
            None if row[8] is None else float(row[8]),
        )

    def get_agent(self, tenant: str, agent_id: str) -> AgentRecord | None:
        with self.tx(tenant, write=False) as t:
            row = t.one(
                f"SELECT {self._AGENT_COLUMNS} FROM agents WHERE tenant_id = ? AND id = ?",
                (tenant, agent_id),
            )
        return self._agent(row) if row else None

    def agents(self, tenant: str) -> tuple[list[AgentRecord], int]:
        """Every agent and dashboard of the tenant, oldest first; and the tenant's head."""
        with self.tx(tenant, write=False) as t:
            rows = t.rows(
                f"SELECT {self._AGENT_COLUMNS} FROM agents WHERE tenant_id = ? ORDER BY created_at, id",
                (tenant,),
            )
            head = t.one("SELECT last_seq FROM tenants WHERE id = ?", (tenant,))
        return [self._agent(r) for r in rows], int(head[0]) if head else 0

    def note_seen(self, tenant: str, agent_id: str, seen: float, cursor: int | None) -> None:
        """Record an agent's last request and pull cursor (neither ever moves back)."""
        sets, params = (
            ["last_seen = CASE WHEN last_seen IS NULL OR last_seen < ? THEN ? ELSE last_seen END"],
            [
                seen,
                seen,
            ],
        )
        if cursor is not None:
            sets.append("cursor = CASE WHEN cursor IS NULL OR cursor < ? THEN ? ELSE cursor END")
            params += [cursor, cursor]
        with self.tx(tenant) as t:
            t.run(
                f"UPDATE agents SET {', '.join(sets)} WHERE tenant_id = ? AND id = ?",
                [*params, tenant, agent_id],
            )

    def revoke_agent(self, tenant: str, agent_id: str, now: float) -> bool:
        """Refuse the agent's requests from now on. False if no such (active) agent."""
        with self.tx(tenant) as t:
            done = (
                t.run(
                    "UPDATE agents SET revoked_at = ? WHERE tenant_id = ? AND id = ? AND revoked_at IS NULL",
                    (now, tenant, agent_id),
                )
                == 1
            )
            if done:  # its webhook endpoints close with it: their URLs answer 404 from now
                t.run(
                    "UPDATE hook_endpoints SET closed_at = ? WHERE tenant_id = ? AND "
                    "agent_id = ? AND closed_at IS NULL",
                    (now, tenant, agent_id),
                )
                self.after_push(t, tenant)  # other cloud processes wake their waiting polls
            return done

    def use_nonce(self, tenant: str, agent_id: str, nonce: str, now: float) -> bool:
        """Remember a request nonce; False if it was already used (a replay)."""
        with self.tx(tenant) as t:
            fresh = t.run(
                "INSERT INTO nonces (tenant_id, agent_id, nonce, seen_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (tenant, agent_id, nonce, now),
            )
            if random.random() < 0.01:  # amortised cleanup; no background job needed
                t.run("DELETE FROM nonces WHERE tenant_id = ? AND seen_at < ?", (tenant, now - NONCE_TTL))
        return fresh == 1

    def add_kid(self, tenant: str, kid: str, now: float) -> None:
        with self.tx(tenant) as t:
            t.run(
                "INSERT INTO key_ids (tenant_id, kid, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (tenant, kid, now),
            )

    def kids(self, tenant: str) -> set[str]:
        with self.tx(tenant, write=False) as t:
            return {r[0] for r in t.rows("SELECT kid FROM key_ids WHERE tenant_id = ?", (tenant,))}

    # ------------------------------------------------------------ the wrapped keyring

    def put_wrapped_key(self, tenant: str, doc: str, now: float) -> None:
        """Store (replace) the tenant's passphrase-wrapped keyring, an opaque document."""
        with self.tx(tenant) as t:
            t.run(
                "INSERT INTO wrapped_keys (tenant_id, doc, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (tenant_id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at",
                (tenant, doc, now),
            )

    def wrapped_key(self, tenant: str) -> tuple[str, float] | None:
        """(document, when stored) of the tenant's wrapped keyring, or None."""
        with self.tx(tenant, write=False) as t:
            row = t.one("SELECT doc, updated_at FROM wrapped_keys WHERE tenant_id = ?", (tenant,))
        return (row[0], float(row[1])) if row else None

    # ------------------------------------------------------------ the log

    def push(self, tenant: str, events: Sequence[tuple[str, str, str]], now: float) -> PushResult:
        """Append ``(id, origin, envelope)`` events not already held; idempotent on id.

        The tenant row is locked first, so sequence numbers are assigned and committed in
        order: a reader that has seen ``seq`` n will never later find an event below n.
        """
        with self.tx(tenant) as t:
            row = t.one(f"SELECT last_seq FROM tenants WHERE id = ?{self.for_update}", (tenant,))
            if row is None:
                raise CloudError("unknown tenant")
            head = int(row[0])
            seen: set[str] = set()
            if events:
                cond, params = self.in_list("id", [e[0] for e in events])
                seen = {
                    r[0]
                    for r in t.rows(
                        f"SELECT id FROM events WHERE tenant_id = ? AND {cond}", [tenant, *params]
                    )
                }
            new = []
            for ev_id, origin, envelope in events:
                if ev_id in seen:
                    continue
                seen.add(ev_id)
                head += 1
                new.append((tenant, head, ev_id, origin, envelope, now))
            if new:
                t.many(
                    "INSERT INTO events (tenant_id, seq, id, origin, envelope, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    new,
                )
                t.run("UPDATE tenants SET last_seq = ? WHERE id = ?", (head, tenant))
                self.after_push(t, tenant)
        return PushResult(len(new), len(events) - len(new), head)

    def pull(self, tenant: str, after: int, limit: int) -> tuple[list[StoredEvent], int]:
        """Events with ``seq > after`` in order, at most ``limit``; and the tenant's head."""
        with self.tx(tenant, write=False) as t:
            rows = t.rows(
                "SELECT seq, id, origin, envelope, received_at FROM events "
                "WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (tenant, after, limit),
            )
            head_row = t.one("SELECT last_seq FROM tenants WHERE id = ?", (tenant,))
        return [StoredEvent(int(r[0]), r[1], r[2], r[3], float(r[4])) for r in rows], int(
            head_row[0] if head_row else 0
        )

    # ------------------------------------------------------------ webhooks

    def add_hook_endpoint(
        self,
        tenant: str,
        token_hash: str,
        provider: str,
        public_key: str,
        now: float,
        agent_id: str | None = None,
    ) -> None:
        with self.tx(tenant) as t:
            t.run(
                "INSERT INTO hook_endpoints (tenant_id, token_hash, provider, public_key, "
                "created_at, agent_id) VALUES (?, ?, ?, ?, ?, ?)",
                (tenant, token_hash, provider, public_key, now, agent_id),
            )

    def hook_endpoint(self, tenant: str, token_hash: str) -> tuple[str, str] | None:
        """(provider, tenant public key) of an open webhook endpoint, or None."""
        with self.tx(tenant, write=False) as t:
            row = t.one(
                "SELECT provider, public_key FROM hook_endpoints "
                "WHERE tenant_id = ? AND token_hash = ? AND closed_at IS NULL",
                (tenant, token_hash),
            )
        return (row[0], row[1]) if row else None

    def add_webhook(self, tenant: str, hook_id: str, provider: str, sealed: str, now: float) -> int:
        with self.tx(tenant) as t:
            # The tenant row lock orders webhook sequence numbers as it does events.
            t.rows(f"SELECT id FROM tenants WHERE id = ?{self.for_update}", (tenant,))
            row = t.one("SELECT max(seq) FROM webhooks WHERE tenant_id = ?", (tenant,))
            seq = int(row[0] or 0) + 1 if row else 1
            t.run(
                "INSERT INTO webhooks (tenant_id, seq, id, provider, sealed, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (tenant, seq, hook_id, provider, sealed, now),
            )
            self.after_push(t, tenant)  # wakes hook long-polls in every cloud process
        return seq

    def webhooks(self, tenant: str, after: int, limit: int) -> list[tuple[int, str, str, str]]:
        """(seq, id, provider, sealed) after ``after``, in order."""
        with self.tx(tenant, write=False) as t:
            rows = t.rows(
                "SELECT seq, id, provider, sealed FROM webhooks WHERE tenant_id = ? "
                "AND seq > ? ORDER BY seq LIMIT ?",
                (tenant, after, limit),
            )
        return [(int(r[0]), r[1], r[2], r[3]) for r in rows]

    # ------------------------------------------------------------ privacy

    def redact(
        self, tenant: str, events: Sequence[tuple[str, str, str]], hooks: Sequence[str]
    ) -> tuple[int, int]:
        """Replace the envelopes of held events (``(id, origin, envelope)``: the same event,
        re-sealed by an agent without the personal data an erasure removed) and drop
        webhook bodies. Sequence numbers stay; unknown ids are ignored. (replaced, dropped)
        """
        replaced = dropped = 0
        with self.tx(tenant) as t:
            for ev_id, origin, envelope in events:
                replaced += t.run(
                    "UPDATE events SET envelope = ? WHERE tenant_id = ? AND id = ? AND origin = ?",
                    (envelope, tenant, ev_id, origin),
                )
            for hook_id in hooks:
                dropped += t.run("DELETE FROM webhooks WHERE tenant_id = ? AND id = ?", (tenant, hook_id))
        return replaced, dropped

    # ------------------------------------------------------------ snapshots and compaction

    def put_snapshot_part(
        self,
        tenant: str,
        snap_id: str,
        origin: str,
        seq: int,
        parts: int,
        part: int,
        envelope: str,
        now: float,
    ) -> None:
        """Store one part of a snapshot being written (idempotent)."""
        with self.tx(tenant) as t:
            t.run(
                "INSERT INTO snapshots (tenant_id, id, origin, seq, parts, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (tenant, snap_id, origin, seq, parts, now),
            )
            t.run(
                "INSERT INTO snapshot_parts (tenant_id, snapshot_id, part, envelope) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (tenant, snap_id, part, envelope),
            )

    def commit_snapshot(
        self, tenant: str, snap_id: str, origin: str, keep: Sequence[str], now: float
    ) -> int | None:
        """Make a complete snapshot the newest; drop the events it covers (but ``keep``) and
        older snapshots. The number of events dropped; None if parts are missing."""
        with self.tx(tenant) as t:
            t.rows(f"SELECT id FROM tenants WHERE id = ?{self.for_update}", (tenant,))
            row = t.one(
                "SELECT seq, parts FROM snapshots WHERE tenant_id = ? AND id = ? AND origin = ?",
                (tenant, snap_id, origin),
            )
            if row is None:
                return None
            seq, parts = int(row[0]), int(row[1])
            have = t.one(
                "SELECT count(*) FROM snapshot_parts WHERE tenant_id = ? AND snapshot_id = ?",
                (tenant, snap_id),
            )
            if int(have[0] if have else 0) != parts:
                return None
            t.run(
                "UPDATE snapshots SET committed_at = ? WHERE tenant_id = ? AND id = ?", (now, tenant, snap_id)
            )
            keep_set = set(keep)
            doomed = [
                r[0]
                for r in t.rows("SELECT id FROM events WHERE tenant_id = ? AND seq <= ?", (tenant, seq))
                if r[0] not in keep_set
            ]
            for i in range(0, len(doomed), 500):
                cond, params = self.in_list("id", doomed[i : i + 500])
                t.run(f"DELETE FROM events WHERE tenant_id = ? AND {cond}", [tenant, *params])
            older = [
                r[0]
                for r in t.rows(
                    "SELECT id FROM snapshots WHERE tenant_id = ? AND id <> ? AND (seq <= ? OR "
                    "committed_at IS NULL AND created_at < ?)",
                    (tenant, snap_id, seq, now - 86400),
                )
            ]
            for old in older:
                t.run("DELETE FROM snapshot_parts WHERE tenant_id = ? AND snapshot_id = ?", (tenant, old))
                t.run("DELETE FROM snapshots WHERE tenant_id = ? AND id = ?", (tenant, old))
            t.run("UPDATE tenants SET floor_seq = ? WHERE id = ? AND floor_seq < ?", (seq, tenant, seq))
            return len(doomed)

    def latest_snapshot(self, tenant: str) -> tuple[str, str, int, int] | None:
        """(id, origin, seq, parts) of the newest committed snapshot."""
        with self.tx(tenant, write=False) as t:
            row = t.one(
                "SELECT id, origin, seq, parts FROM snapshots WHERE tenant_id = ? AND "
                "committed_at IS NOT NULL ORDER BY seq DESC LIMIT 1",
                (tenant,),
            )
        return (row[0], row[1], int(row[2]), int(row[3])) if row else None

    def snapshot_part(self, tenant: str, snap_id: str, part: int) -> str | None:
        with self.tx(tenant, write=False) as t:
            row = t.one(
                "SELECT envelope FROM snapshot_parts WHERE tenant_id = ? AND snapshot_id = ? AND part = ?",
                (tenant, snap_id, part),
            )
        return row[0] if row else None

    def floor(self, tenant: str) -> int:
        """Events at or below this seq were compacted into a snapshot."""
        with self.tx(tenant, write=False) as t:
            row = t.one("SELECT floor_seq FROM tenants WHERE id = ?", (tenant,))
        return int(row[0]) if row else 0

    def tenant_bytes(self, tenant: str) -> dict[str, int]:
        """Ciphertext held for the tenant, by kind (for bench/restore.py and operators)."""
        with self.tx(tenant, write=False) as t:
            ev = t.one(
                "SELECT count(*), COALESCE(sum(length(envelope)), 0) FROM events WHERE tenant_id = ?",
                (tenant,),
            )
            sn = t.one(
                "SELECT COALESCE(sum(length(envelope)), 0) FROM snapshot_parts WHERE tenant_id = ?", (tenant,)
            )
            wh = t.one("SELECT COALESCE(sum(length(sealed)), 0) FROM webhooks WHERE tenant_id = ?", (tenant,))
        assert ev is not None and sn is not None and wh is not None  # aggregates: one row
        return {
            "events": int(ev[0]),
            "event_bytes": int(ev[1]),
            "snapshot_bytes": int(sn[0]),
            "webhook_bytes": int(wh[0]),
        }
