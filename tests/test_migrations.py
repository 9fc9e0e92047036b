"""The migration runner the agent's store and the cloud share (jasiyo.migrations)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from jasiyo.cloud.sqlite import SqliteStorage
from jasiyo.errors import CloudError
from jasiyo.migrations import Migrations, SqliteLedger, UnknownMigrations, statements


def _conn(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "t.db", isolation_level=None)


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]


def test_each_migration_is_applied_once_in_order(tmp_path: Path) -> None:
    steps = Migrations("t")
    steps.add("a", lambda db: db.executescript("CREATE TABLE a (x); INSERT INTO a VALUES (1);"))
    steps.add("b", lambda db: db.execute("CREATE TABLE b (y)"))
    conn = _conn(tmp_path)
    ledger = SqliteLedger(conn)
    assert steps.apply(ledger) == ["a", "b"]
    assert steps.apply(ledger) == []
    assert ledger.applied("t") == ["a", "b"] and ledger.applied("other") == []
    assert _tables(conn) == ["_sqlite_migrations", "a", "b"]


def test_a_failing_migration_leaves_nothing_and_stays_pending(tmp_path: Path) -> None:
    steps = Migrations("t")
    steps.add("a", lambda db: db.execute("CREATE TABLE a (x)"))
    steps.add("b", lambda db: db.executescript(
        "CREATE TABLE b (y); CREATE TRIGGER bt AFTER INSERT ON b BEGIN SELECT 1; END;\n"
        "INSERT INTO nowhere VALUES (1);"))
    conn = _conn(tmp_path)
    with pytest.raises(sqlite3.OperationalError, match="no such table: nowhere"):
        steps.apply(SqliteLedger(conn))
    assert _tables(conn) == ["_sqlite_migrations", "a"]  # b's table and trigger rolled back
    assert SqliteLedger(conn).applied("t") == ["a"]


def test_a_database_with_migrations_the_code_does_not_know_is_refused(tmp_path: Path) -> None:
    newer, older = Migrations("t"), Migrations("t")
    for name in ("a", "b"):
        newer.add(name, lambda db: None)
    older.add("a", lambda db: None)
    conn = _conn(tmp_path)
    newer.apply(SqliteLedger(conn))
    with pytest.raises(UnknownMigrations, match="newer version of Jasiyo.*b are unknown"):
        older.apply(SqliteLedger(conn))


def test_a_script_splits_into_whole_statements() -> None:
    script = """CREATE TABLE t (x);
        CREATE TRIGGER tt AFTER INSERT ON t BEGIN UPDATE t SET x = 1; DELETE FROM t; END;
        -- a comment
        INSERT INTO t VALUES (';');"""
    got = [s.strip() for s in statements(script)]
    assert len(got) == 3 and got[1].startswith("CREATE TRIGGER") and got[1].endswith("END;")
    assert got[2].endswith("INSERT INTO t VALUES (';');")


def test_the_cloud_refuses_a_database_a_newer_cloud_migrated(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "cloud.db")
    try:
        from jasiyo.cloud.migrations import SQLITE

        assert storage.migrate() == [name for name, _ in SQLITE]
        assert storage.migrate() == []
        with storage.tx(None) as t:
            t.run("INSERT INTO jasiyo_migrations VALUES ('c999_later', 0)")
        with pytest.raises(CloudError, match="newer version of Jasiyo.*c999_later"):
            storage.migrate()
        with pytest.raises(CloudError, match="c999_later"):
            storage.check_migrations()
    finally:
        storage.close()


def test_two_processes_migrating_at_once_apply_each_migration_once(tmp_path: Path) -> None:
    import threading

    steps = Migrations("t")
    for i in range(20):
        steps.add(f"m{i:02d}", lambda db, i=i: db.execute(f"CREATE TABLE t{i} (x)"))
    errors: list[BaseException] = []

    def run() -> None:
        conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None, timeout=30)
        try:
            steps.apply(SqliteLedger(conn))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert SqliteLedger(_conn(tmp_path)).applied("t") == steps.names


@pytest.mark.postgres
def test_the_cloud_service_refuses_a_postgres_database_a_newer_cloud_migrated() -> None:
    import psycopg

    from jasiyo.cloud.backend import open_storage
    from tests.cloud.pgutil import reachable_or_skip, scratch_database

    with scratch_database(reachable_or_skip()) as scratch:
        service = open_storage(scratch.app_dsn)
        try:
            service.check_migrations()  # the migrations it knows: fine
            with psycopg.connect(scratch.owner_dsn, autocommit=True) as owner:
                owner.execute("INSERT INTO jasiyo_migrations VALUES ('c999_later', 0)")
            with pytest.raises(CloudError, match="newer version of Jasiyo.*c999_later"):
                service.check_migrations()
        finally:
            service.close()
        owner_storage = open_storage(scratch.owner_dsn, owner=True)
        try:
            with pytest.raises(CloudError, match="c999_later"):
                owner_storage.migrate()
        finally:
            owner_storage.close()
