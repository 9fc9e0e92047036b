"""SQLite backend for the cloud (one host). Tenant isolation is by query filters only."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jasiyo.cloud.migrations import SQLITE, cloud_migrations
from jasiyo.cloud.storage import Storage, Tx
from jasiyo.errors import CloudError
from jasiyo.migrations import SqliteLedger, UnknownMigrations


class _SqliteTx(Tx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.conn.execute(sql, tuple(params)).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.conn.execute(sql, tuple(params)).rowcount

    def many(self, sql: str, seq: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, seq)


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite does (it would use the umask, 0644).

    It holds token hashes, agent keys and the sealed log; SQLite gives its -wal and -shm
    files the main file's mode, so they are private too.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    except FileExistsError:
        pass


class SqliteStorage(Storage):
    """One connection per thread (sqlite3 connections are not shared), WAL mode."""

    backend = "sqlite"
    migration_names = tuple(name for name, _ in SQLITE)

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                _create_private(self.path)
                conn = sqlite3.connect(str(self.path), isolation_level=None,
                                       check_same_thread=False)
                conn.execute("PRAGMA busy_timeout=10000")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
                # Replaced envelopes and dropped rows are zeroed, not left in free pages.
                conn.execute("PRAGMA secure_delete=ON")
            except (sqlite3.Error, OSError) as exc:
                raise CloudError(f"cannot open the cloud database {self.path}: {exc}") from None
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def tx(self, tenant: str | None, *, write: bool = True) -> Iterator[Tx]:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            raise CloudError(f"the cloud database is unavailable: {exc}") from None
        try:
            yield _SqliteTx(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise CloudError(f"the cloud database refused a commit: {exc}") from None

    def is_integrity_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError)

    def migrate(self) -> list[str]:
        ledger = SqliteLedger(self._conn(), "jasiyo_migrations", per_set=False)
        try:
            return cloud_migrations(SQLITE).apply(ledger, f"the cloud database {self.path}")
        except UnknownMigrations as exc:
            raise CloudError(str(exc)) from None
        except sqlite3.Error as exc:
            raise CloudError(f"migrating the cloud database failed: {exc}") from None

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
