"""The agent's local store: SQLite (WAL), and the one place its errors become ours.

One :class:`Store` per thread (SQLite connections are not shared). Every change goes through
:meth:`Store.transaction` and records, in the same transaction, an event (for sync) and an
audit line (who changed what). Secrets are sealed with the agent key (:mod:`.keys`).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jasiyo.agent.keys import SecretBox, create_key, load_key
from jasiyo.agent.schema_names import MIGRATION_SET, NAMES
from jasiyo.config import Config
from jasiyo.errors import (
    AlreadyExists,
    ConfigError,
    JasiyoError,
    StoreError,
    ValidationError,
    WrongKey,
)
from jasiyo.migrations import SqliteLedger, UnknownMigrations, unknown_message
from jasiyo.sync.hlc import HybridClock
from jasiyo.sync.ids import uuid7

BUSY_TIMEOUT_MS = 5000

Row = dict[str, Any]
#: What the database and the sqlite3 module raise that :func:`store_error` converts. Not
#: ProgrammingError or InterfaceError: those are bugs in a query, and show as such.
_CONVERTED = (sqlite3.IntegrityError, sqlite3.OperationalError, sqlite3.DataError,
              sqlite3.DatabaseError, OverflowError)


def store_error(exc: BaseException) -> JasiyoError:
    """The error of ours for what SQLite raised: the one place the store's errors convert.

    A unique value taken -> AlreadyExists; another broken constraint (CHECK, NOT NULL,
    FOREIGN KEY, a trigger's RAISE) or a value SQLite cannot hold (an integer beyond 64 bits,
    a string too large) -> ValidationError; a busy or failing database -> StoreError.
    """
    text = str(exc)
    if isinstance(exc, sqlite3.IntegrityError):
        if text.startswith("UNIQUE constraint failed: "):
            cols = text.removeprefix("UNIQUE constraint failed: ")
            return AlreadyExists(f"already exists: another row has the same {cols}")
        return ValidationError(f"the store refused the change: {text}")
    if isinstance(exc, OverflowError):
        return ValidationError("a number given is too large")
    if isinstance(exc, sqlite3.DataError):
        return ValidationError(f"a value given is too large for the store: {text}")
    if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
        return StoreError(f"the store is busy (another process holds a lock): {text}")
    return StoreError(f"the store failed: {text}")


def connect(path: Path, *, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """A connection in WAL mode with a busy timeout and foreign keys on.

    ``isolation_level=None``: we issue BEGIN IMMEDIATE ourselves, so a writer never has to
    upgrade a read lock (the classic SQLITE_BUSY deadlock under concurrency).
    """
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        # Deleted and overwritten content is zeroed, not left in free pages: an erased
        # person's name must not survive in the file (see jasiyo.agent.erase).
        conn.execute("PRAGMA secure_delete=ON")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store {path}: {exc}") from None
    return conn


class Store:
    """A connection to the agent store plus the agent's identity, key and clocks."""

    def __init__(
        self,
        path: Path,
        box: SecretBox,
        *,
        synchronous: str = "NORMAL",
        now: Callable[[], float] = time.time,
    ) -> None:
        if not path.exists():
            raise ConfigError(f"store {path} does not exist; run `jasiyo init` first")
        self.path = path
        self.box = box
        self.now = now
        self.conn = connect(path, synchronous=synchronous)
        migrated = self._pending_migrations()
        if migrated:
            self.migrate()
        check = self.scalar("SELECT value FROM meta WHERE key = 'key_check'")
        if check is not None:
            try:
                box.open(bytes.fromhex(check), "key-check")
            except StoreError:
                self.conn.close()
                raise WrongKey(
                    f"the agent key does not belong to the store {path}: restore the "
                    "agent.key that was created with it (a new key cannot read its secrets)"
                ) from None
        if migrated and check is not None:
            from jasiyo.agent.audit import seal_legacy

            seal_legacy(self)  # lines from before audit details were sealed (needs the key)
        #: How local phone numbers are read (``[billing] country``; set by ``open``).
        self.country = "KE"
        self.agent_id = self.meta("agent_id") or ""
        self.clock = HybridClock(self.agent_id or "local", lambda: int(self.now() * 1000))

    @classmethod
    def open(cls, cfg: Config, **kw: Any) -> Store:
        store = cls(cfg.db_path, SecretBox(load_key(cfg.key_path)), **kw)
        store.country = cfg.billing.country.upper()
        from jasiyo.agent import popname  # the POP name, for triggers and billing

        popname.ensure(store, cfg)
        return store

    def close(self) -> None:
        self.conn.close()

    @property
    def db(self) -> Any:
        """The connection as a sqlite-utils ``Database`` (imported on first use)."""
        from sqlite_utils import Database

        return Database(self.conn, execute_plugins=False)

    def _pending_migrations(self) -> bool:
        try:
            applied = {r[0] for r in self.conn.execute(
                "SELECT name FROM _sqlite_migrations WHERE migration_set = ?", (MIGRATION_SET,))}
        except sqlite3.OperationalError:  # a new store: no migrations table yet
            return True
        except sqlite3.DatabaseError as exc:
            raise store_error(exc) from None
        unknown = applied - set(NAMES)
        if unknown:
            self.conn.close()
            raise StoreError(unknown_message(f"the store {self.path}", unknown))
        return not applied.issuperset(NAMES)

    def migrate(self) -> list[str]:
        """Apply the pending migrations (:mod:`.schema`); returns their names."""
        from jasiyo.agent.schema import migrations

        try:
            return migrations.apply(SqliteLedger(self.conn), f"the store {self.path}")
        except UnknownMigrations as exc:
            raise StoreError(str(exc)) from None
        except sqlite3.Error as exc:
            raise StoreError(f"migrating the store failed: {exc}") from None

    # ------------------------------------------------------------ transactions

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """BEGIN IMMEDIATE ... COMMIT; rolls back on any exception. Nests as a savepoint."""
        if self.conn.in_transaction:
            name = f"sp_{uuid7().replace('-', '')}"
            self.conn.execute(f"SAVEPOINT {name}")
            try:
                yield self
            except BaseException:
                self.conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                self.conn.execute(f"RELEASE SAVEPOINT {name}")
                raise
            self.conn.execute(f"RELEASE SAVEPOINT {name}")
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"the store is busy or unavailable: {exc}") from None
        try:
            yield self
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except _CONVERTED as exc:  # e.g. a deferred constraint, or the disk
            self.conn.execute("ROLLBACK")
            raise store_error(exc) from None

    # ------------------------------------------------------------ queries
    #
    # Every query of the agent goes through these methods, so that SQLite's errors become
    # ours (:func:`store_error`) in one place.

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        """Run one statement (a write, usually); the cursor gives ``rowcount``/``lastrowid``."""
        try:
            return self.conn.execute(sql, params)
        except _CONVERTED as exc:
            raise store_error(exc) from None

    def executemany(self, sql: str, rows: Iterable[tuple | dict]) -> sqlite3.Cursor:
        try:
            return self.conn.executemany(sql, rows)
        except _CONVERTED as exc:
            raise store_error(exc) from None

    def one(self, sql: str, params: tuple | dict = ()) -> Row | None:
        try:
            cur = self.conn.execute(sql, params)
            row = cur.fetchone()
        except _CONVERTED as exc:
            raise store_error(exc) from None
        if row is None:
            return None
        return dict(zip([c[0] for c in cur.description], row, strict=True))

    def all(self, sql: str, params: tuple | dict = ()) -> list[Row]:
        try:
            cur = self.conn.execute(sql, params)
            rows = cur.fetchall()
        except _CONVERTED as exc:
            raise store_error(exc) from None
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def scalar(self, sql: str, params: tuple | dict = ()) -> Any:
        try:
            row = self.conn.execute(sql, params).fetchone()
        except _CONVERTED as exc:
            raise store_error(exc) from None
        return row[0] if row else None

    def meta(self, key: str) -> str | None:
        return self.scalar("SELECT value FROM meta WHERE key = ?", (key,))

    def set_meta(self, key: str, value: str) -> None:
        self.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # ------------------------------------------------------------ secrets

    def seal(self, value: str, context: str) -> bytes:
        return self.box.seal(value, context)

    def unseal(self, blob: bytes, context: str) -> str:
        return self.box.open_str(blob, context)

    # ------------------------------------------------------------ events and audit

    def emit(self, entity: str, key: str, op: str, data: dict[str, Any]) -> str:
        """Record an event for a change made in the current transaction.

        ``op`` is ``upsert`` (``data`` = the fields set), ``delete`` or ``append`` (an
        immutable record such as a payment). Field clocks are advanced so that remote
        events older than this change lose to it. Returns the event id.
        """
        if not self.conn.in_transaction:
            raise StoreError("emit() outside a transaction would split a change from its event")
        event_id = uuid7(int(self.now() * 1000))
        hlc = self.clock.now()
        payload = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        self.execute(
            "INSERT INTO events (id, hlc, origin, entity, key, op, data, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (event_id, hlc, self.agent_id, entity, key, op,
             self.box.seal(payload, f"event:{event_id}"), self.now()),
        )
        fields = ["*"] if op == "delete" else list(data)
        self.executemany(
            "INSERT INTO field_clocks (entity, key, field, hlc) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(entity, key, field) DO UPDATE SET hlc = excluded.hlc "
            "WHERE excluded.hlc > field_clocks.hlc",
            [(entity, key, f, hlc) for f in fields],
        )
        return event_id

    def event_data(self, row: Row) -> dict[str, Any]:
        """The decrypted payload of an ``events`` row."""
        return json.loads(self.box.open(row["data"], f"event:{row['id']}"))

    def audit(self, actor: str, action: str, target: str, **detail: Any) -> None:
        """An audit line; its details are sealed (they name people: see :mod:`.audit`)."""
        from jasiyo.agent.audit import seal_detail

        self.execute(
            "INSERT INTO audit (at, actor, action, target, detail, detail_enc) "
            "VALUES (?, ?, ?, ?, '{}', ?)",
            (self.now(), actor, action, target, seal_detail(self, target, detail)),
        )


def init_store(cfg: Config) -> dict[str, Any]:
    """Create the data dir, the agent key (0600) and the store; idempotent.

    Returns what was created, for the CLI to report. Refuses to make a new key for a
    store that already exists: that key could not read the store's secrets.
    """
    data_dir = cfg.data_dir
    try:
        if not data_dir.exists():
            data_dir.mkdir(parents=True)
            data_dir.chmod(0o700)  # only a folder we made: never tighten a shared one
    except OSError as exc:
        raise ConfigError(f"[agent] data_dir: cannot create {data_dir}: {exc.strerror}") from None
    db_created = not cfg.db_path.exists()
    if not db_created and not cfg.key_path.exists():
        raise ConfigError(
            f"the store {cfg.db_path} exists but its key {cfg.key_path} is missing: restore "
            "agent.key from your backup (a new key could not read the stored secrets)"
        )
    key_created = create_key(cfg.key_path)
    if db_created:
        # Created 0600 before SQLite opens it; the -wal/-shm files inherit the mode.
        os.close(os.open(cfg.db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        connect(cfg.db_path).close()
    store = Store.open(cfg)
    try:
        with store.transaction():
            if store.meta("key_check") is None:
                store.set_meta("key_check", store.box.seal(uuid7(), "key-check").hex())
            if not store.meta("agent_id"):
                store.set_meta("agent_id", uuid7())
                store.set_meta("agent_name", cfg.agent.name or socket.gethostname())
                store.set_meta("created_at", str(store.now()))
        return {
            "data_dir": str(data_dir),
            "key_created": key_created,
            "store_created": db_created,
            "agent_id": store.meta("agent_id"),
        }
    finally:
        store.close()
