"""The agent store's schema as text: what ``jasiyo/agent/schema.sql`` holds.

    python -m jasiyo.agent.schema_dump > jasiyo/agent/schema.sql

prints the schema every migration of :mod:`.schema` makes, table by table (each with its
indexes and triggers), so the diff of ``schema.sql`` shows what a new migration changes: a
trigger redefined whole shows as the lines that changed. ``tests/agent/test_schema.py``
compares the checked-in file with a freshly migrated store, and an upgraded one.
"""

from __future__ import annotations

import sqlite3
import sys

HEADER = """\
-- The agent store's schema after every migration in jasiyo/agent/schema.py.
-- Generated; do not edit. After adding a migration, run:
--     python -m jasiyo.agent.schema_dump > jasiyo/agent/schema.sql
"""


def schema_of(conn: sqlite3.Connection) -> str:
    """The schema of the database behind ``conn``, and the migrations it records."""
    objects = conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL"
    ).fetchall()
    kinds = {"table": 0, "index": 1, "trigger": 2, "view": 3}
    objects.sort(key=lambda o: (o[2], kinds.get(o[0], 9), o[1]))
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM _sqlite_migrations WHERE migration_set = 'jasiyo-agent' ORDER BY rowid"
            )
        ]
    except sqlite3.OperationalError:
        names = []
    out = [HEADER, "-- Migrations applied, in order:"]
    out += [f"--     {n}" for n in names]
    for _kind, _name, _table, sql in objects:
        text = "\n".join(line.rstrip() for line in sql.strip().splitlines())
        out.append(f"\n{text};")
    return "\n".join(out) + "\n"


def fresh_schema() -> str:
    """The schema of a new store: every migration applied to an empty database."""
    from jasiyo.agent.schema import migrations
    from jasiyo.migrations import SqliteLedger

    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys=ON")
        migrations.apply(SqliteLedger(conn))
        return schema_of(conn)
    finally:
        conn.close()


if __name__ == "__main__":  # pragma: no cover - the command in the docstring
    sys.stdout.write(fresh_schema())
