"""PostgreSQL backend (psycopg 3): Row Level Security per tenant, LISTEN/NOTIFY wake-ups.

The service connects as the service role created by the migrations, never as the tables'
owner: :class:`PostgresStorage` refuses to start otherwise, because the owner (or a
superuser, or a role with BYPASSRLS) would skip the row policies.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql as pgsql

from jasiyo.cloud.migrations import POSTGRES, cloud_migrations
from jasiyo.cloud.storage import Storage, Tx
from jasiyo.errors import CloudError
from jasiyo.log import event, get_logger
from jasiyo.migrations import Ledger, UnknownMigrations

log = get_logger(__name__)
CHANNEL = "jasiyo_events"
_ROLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class _PgTx(Tx):
    def __init__(self, cur: psycopg.Cursor) -> None:
        self.cur = cur

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        self.cur.execute(sql.replace("?", "%s"), tuple(params))
        return self.cur.fetchall() if self.cur.description else []

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.cur.execute(sql.replace("?", "%s"), tuple(params))
        return self.cur.rowcount

    def many(self, sql: str, seq: Sequence[Sequence[Any]]) -> None:
        self.cur.executemany(sql.replace("?", "%s"), seq)


class _PgScript:
    """What a PostgreSQL migration is given: its script runs in the step's transaction."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def executescript(self, script: str) -> None:
        self.conn.execute(script.encode())  # bytes: several statements, no placeholders


class _PgLedger(Ledger):
    """The cloud's migrations on PostgreSQL, recorded in ``jasiyo_migrations``."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def applied(self, migration_set: str) -> list[str]:
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS jasiyo_migrations "
            "(name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
        return [
            r[0] for r in self.conn.execute("SELECT name FROM jasiyo_migrations ORDER BY applied_at, name")
        ]

    @contextmanager
    def step(self, migration_set: str, name: str) -> Iterator[_PgScript | None]:
        with self.conn.transaction():
            self.conn.execute("LOCK TABLE jasiyo_migrations IN EXCLUSIVE MODE")
            if self.conn.execute("SELECT 1 FROM jasiyo_migrations WHERE name = %s", (name,)).fetchone():
                yield None  # another `cloud migrate` was quicker
                return
            yield _PgScript(self.conn)
            self.conn.execute("INSERT INTO jasiyo_migrations VALUES (%s, %s)", (name, time.time()))


class PostgresStorage(Storage):
    """A small pool of autocommit connections; each :meth:`tx` is one explicit transaction."""

    backend = "postgresql"
    migration_names = tuple(name for name, _ in POSTGRES)
    for_update = " FOR UPDATE"

    def __init__(self, dsn: str, *, owner: bool = False, pool_size: int = 8) -> None:
        self.dsn = dsn
        self._pool: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._size = pool_size
        self._made = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        if not owner:
            self._check_role()

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)
        except psycopg.Error:
            # The DSN may carry a password: never echo it.
            raise CloudError("cannot connect to the PostgreSQL cloud database") from None

    def _check_role(self) -> None:
        conn = self._connect()
        try:
            row = conn.execute(
                "SELECT r.rolsuper, r.rolbypassrls, "
                "  (SELECT tableowner FROM pg_tables WHERE schemaname = current_schema() "
                "   AND tablename = 'events') = current_user "
                "FROM pg_roles r WHERE r.rolname = current_user"
            ).fetchone()
        finally:
            conn.close()
        if row is None or any(bool(v) for v in row):
            raise CloudError(
                "refusing to serve: the database role is a superuser, bypasses row level "
                "security, or owns the tables; connect as the service role created by "
                "`jasiyo cloud migrate` (default jasiyo_app)"
            )

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection]:
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._connect()
        ok = False
        try:
            yield conn
            ok = True
        finally:
            if ok and not conn.closed and self._pool.qsize() < self._size:
                self._pool.put(conn)
            else:
                conn.close()

    @contextmanager
    def tx(self, tenant: str | None, *, write: bool = True) -> Iterator[Tx]:
        with self._conn() as conn:
            try:
                with conn.transaction(), conn.cursor() as cur:
                    # Transaction-local: gone at COMMIT/ROLLBACK, so a pooled connection
                    # never carries one request's tenant into the next.
                    cur.execute("SELECT set_config('jasiyo.tenant', %s, true)", (tenant or "",))
                    yield _PgTx(cur)
            except psycopg.errors.IntegrityError:
                raise
            except psycopg.errors.InsufficientPrivilege as exc:
                raise CloudError(
                    "the database refused the service role: insufficient "
                    f"privilege ({exc.diag.message_primary})"
                ) from None
            except psycopg.OperationalError:
                conn.close()
                raise CloudError("the PostgreSQL cloud database is unavailable") from None

    def in_list(self, column: str, values: Sequence[str]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(?)", [list(values)]

    def after_push(self, tx: Tx, tenant: str) -> None:
        # Delivered at COMMIT to every cloud process listening (see start_listener).
        tx.rows("SELECT pg_notify(?, ?)", (CHANNEL, tenant))

    def is_integrity_error(self, exc: BaseException) -> bool:
        return isinstance(exc, psycopg.errors.IntegrityError)

    def migrate(self, app_role: str = "jasiyo_app", app_password: str | None = None) -> list[str]:
        """Run as the tables' owner. Creates the service role ``app_role`` if missing."""
        if not _ROLE_RE.match(app_role):
            raise CloudError(f"service role name {app_role!r} is not a plain identifier")
        conn = self._connect()
        try:
            row = conn.execute("SELECT current_schema()").fetchone()
            assert row is not None  # a SELECT without FROM answers one row
            schema = row[0]
            steps = cloud_migrations(
                POSTGRES, lambda text: text.replace("{app_role}", app_role).replace("{schema}", schema)
            )
            applied = steps.apply(_PgLedger(conn), "the cloud database")
            if app_password is not None:
                conn.execute(
                    pgsql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        pgsql.Identifier(app_role), pgsql.Literal(app_password)
                    )
                )
        except UnknownMigrations as exc:
            raise CloudError(str(exc)) from None
        except psycopg.Error as exc:
            raise CloudError(f"migrating the cloud database failed: {exc.diag.message_primary}") from None
        finally:
            conn.close()
        return applied

    # ------------------------------------------------------------ LISTEN/NOTIFY

    def start_listener(self, on_notify: Callable[[str], None]) -> None:
        """Call ``on_notify(tenant)`` (from a thread) whenever any process appends events.

        Calling it again replaces the callback (an app restarted on a new event loop).
        """
        self._on_notify = on_notify
        if self._listener is not None and self._listener.is_alive():
            return

        def run() -> None:
            while not self._stop.is_set():
                try:
                    conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)
                except psycopg.Error:
                    self._stop.wait(1.0)
                    continue
                try:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self._on_notify(note.payload)
                except psycopg.Error as exc:
                    event(log, "cloud.listen_failed", error=type(exc).__name__)
                finally:
                    conn.close()

        self._listener = threading.Thread(target=run, name="jasiyo-pg-listen", daemon=True)
        self._listener.start()

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.join(timeout=5)
        with self._lock:
            while True:
                try:
                    self._pool.get_nowait().close()
                except queue.Empty:
                    break
