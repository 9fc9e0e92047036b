"""One migration runner, for the agent's store and the cloud's database (SQLite, PostgreSQL).

Modelled on sqlite-utils' ``Migrations``: a set of named migrations, applied in the order
they were registered, each in one transaction together with the record of it, so a failed
migration leaves nothing behind and stays pending. Where the records live, and how a
transaction is run, is a :class:`Ledger`; the agent's store keeps them in sqlite-utils'
``_sqlite_migrations`` table (stores made before this runner read the same), the cloud in
``jasiyo_migrations``.

A database that records a migration this code does not know was upgraded by a newer Jasiyo:
:meth:`Migrations.pending` refuses it, naming the migrations, rather than run older code
over a schema it does not understand.

    migrations = Migrations("jasiyo-agent")

    @migrations(name="m001_core")
    def m001_core(db) -> None:
        db.executescript("CREATE TABLE ...")
"""

from __future__ import annotations

import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from jasiyo.errors import JasiyoError

_Fn = TypeVar("_Fn", bound=Callable[..., Any])


@dataclass(frozen=True)
class Migration:
    name: str
    fn: Callable[[Any], None]


class UnknownMigrations(JasiyoError):
    """The database has migrations this version of Jasiyo does not know."""


def unknown_message(what: str, names: Iterable[str]) -> str:
    return (
        f"{what} was upgraded by a newer version of Jasiyo (migrations "
        f"{', '.join(sorted(names))} are unknown to this one); run that version, or "
        "restore a backup made before the upgrade"
    )


class Ledger(ABC):
    """Where a database records the migrations applied to it, and how one is run."""

    @abstractmethod
    def applied(self, migration_set: str) -> list[str]:
        """Names of the migrations of the set applied so far (empty for a new database)."""

    @abstractmethod
    def step(self, migration_set: str, name: str) -> Any:
        """A context manager: one transaction that yields the handle a migration is given
        and, if the migration returns, records ``name`` as applied before committing; or
        yields None if another process applied ``name`` meanwhile."""


class Migrations:
    """Named migrations, in order. Register with the decorator or :meth:`add`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._migrations: list[Migration] = []

    def __call__(self, *, name: str | None = None) -> Callable[[_Fn], _Fn]:
        def register(fn: _Fn) -> _Fn:
            self.add(name or fn.__name__, fn)
            return fn

        return register

    def add(self, name: str, fn: Callable[[Any], None]) -> None:
        if name in self.names:
            raise ValueError(f"migration {name!r} is already registered in set {self.name!r}")
        self._migrations.append(Migration(name, fn))

    @property
    def names(self) -> list[str]:
        return [m.name for m in self._migrations]

    def pending(self, applied: Iterable[str], what: str = "the database") -> list[Migration]:
        """The migrations not yet applied; UnknownMigrations if ``applied`` names others."""
        done = set(applied)
        unknown = done - set(self.names)
        if unknown:
            raise UnknownMigrations(unknown_message(what, unknown))
        return [m for m in self._migrations if m.name not in done]

    def apply(self, ledger: Ledger, what: str = "the database") -> list[str]:
        """Apply what is pending, each in its own transaction; returns the names applied."""
        done = []
        for m in self.pending(ledger.applied(self.name), what):
            with ledger.step(self.name, m.name) as handle:
                if handle is None:  # another process (a second agent run) was quicker
                    continue
                m.fn(handle)
            done.append(m.name)
        return done


# ---------------------------------------------------------------- SQLite


def statements(script: str) -> Iterator[str]:
    """The statements of an SQL script, each ending at a ``;`` that completes it (so a
    trigger's ``BEGIN ... END`` and a ``;`` in a string or comment stay inside)."""
    start = 0
    at = script.find(";")
    while at >= 0:
        piece = script[start : at + 1]
        if sqlite3.complete_statement(piece):
            if _has_sql(piece):
                yield piece
            start = at + 1
        at = script.find(";", at + 1)
    if _has_sql(script[start:]):
        yield script[start:]


def _has_sql(piece: str) -> bool:
    """Anything but blanks, comments and semicolons."""
    lines = [line.split("--", 1)[0] for line in piece.splitlines()]
    return bool("".join(lines).replace(";", "").strip())


class SqliteScript:
    """What a SQLite migration is given: ``execute`` and an ``executescript`` that stays
    inside the migration's transaction (sqlite3's own commits first). ``db`` is the
    connection as a sqlite-utils ``Database``, for migrations that want its helpers."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executescript(self, script: str) -> None:
        for statement in statements(script):
            self.conn.execute(statement)

    @property
    def db(self) -> Any:
        from sqlite_utils import Database

        return Database(self.conn, execute_plugins=False)


class SqliteLedger(Ledger):
    """Records in ``table`` of a SQLite connection in autocommit mode (``isolation_level``
    None). ``per_set``: the table is sqlite-utils' (``migration_set``, ``name``, text
    ``applied_at``), else one set per database (``name``, numeric ``applied_at``)."""

    def __init__(
        self, conn: sqlite3.Connection, table: str = "_sqlite_migrations", *, per_set: bool = True
    ) -> None:
        self.conn = conn
        self.table = table
        self.per_set = per_set

    def _exists(self) -> bool:
        return (
            self.conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (self.table,)
            ).fetchone()
            is not None
        )

    def applied(self, migration_set: str) -> list[str]:
        if not self._exists():
            return []
        if self.per_set:
            rows = self.conn.execute(
                f"SELECT name FROM {self.table} WHERE migration_set = ? ORDER BY rowid", (migration_set,)
            )
        else:
            rows = self.conn.execute(f"SELECT name FROM {self.table} ORDER BY rowid")
        return [r[0] for r in rows]

    def _create(self) -> None:
        if self.per_set:  # exactly as sqlite-utils creates it, to the letter
            if self._exists():
                return
            self.conn.execute(
                f'CREATE TABLE "{self.table}" (\n   "id" INTEGER PRIMARY KEY,\n'
                '   "migration_set" TEXT,\n   "name" TEXT,\n   "applied_at" TEXT\n)'
            )
            self.conn.execute(
                f'CREATE UNIQUE INDEX "idx_{self.table}_migration_set_name"\n'
                f'    ON "{self.table}" ("migration_set", "name")'
            )
        else:
            self.conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
            )

    @contextmanager
    def step(self, migration_set: str, name: str) -> Iterator[SqliteScript | None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if name in self.applied(migration_set):
                yield None
                self.conn.execute("COMMIT")
                return
            self._create()
            yield SqliteScript(self.conn)
            if self.per_set:
                self.conn.execute(
                    f"INSERT INTO {self.table} (migration_set, name, applied_at) VALUES (?, ?, ?)",
                    (migration_set, name, str(datetime.now(UTC))),
                )
            else:
                self.conn.execute(
                    f"INSERT INTO {self.table} (name, applied_at) VALUES (?, ?)", (name, time.time())
                )
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
