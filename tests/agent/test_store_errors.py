"""The store converts what SQLite raises into the errors of jasiyo.errors, in one place."""

from __future__ import annotations

import base64
import os
import sqlite3

import pytest

from jasiyo.agent import plans
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import AlreadyExists, ConfigError, StoreError, ValidationError, WrongKey


def test_a_unique_value_taken_is_already_exists(store: Store) -> None:
    plans.add(store, plans.build("home", rate="1M", price="1"), "t")
    with pytest.raises(AlreadyExists, match=r"the same plans\.name"), store.transaction():
        store.execute(
            "INSERT INTO plans (name, rate, price_minor, currency, period, "
            "created_at, updated_at) VALUES ('home', '1M/1M', 1, 'KES', '30d', 0, 0)"
        )
    assert store.scalar("SELECT count(*) FROM plans") == 1


def test_another_broken_constraint_is_a_validation_error(store: Store) -> None:
    with pytest.raises(ValidationError, match="NOT NULL constraint failed: plans.rate"):
        store.execute(
            "INSERT INTO plans (name, rate, price_minor, currency, period, "
            "created_at, updated_at) VALUES ('x', NULL, 1, 'KES', '30d', 0, 0)"
        )
    with pytest.raises(ValidationError, match="FOREIGN KEY"), store.transaction():
        store.executemany(
            "INSERT INTO subscribers (username, password_enc, plan_id, service, "
            "status, created_at, updated_at) VALUES (?, x'00', 999, 'pppoe', "
            "'active', 0, 0)",
            [("ghost",)],
        )


def test_a_number_sqlite_cannot_hold_is_a_validation_error(store: Store) -> None:
    for query in (store.one, store.all, store.scalar, store.execute):
        with pytest.raises(ValidationError, match="a number given is too large"):
            query("SELECT ?", (2**64,))


def test_a_busy_store_is_a_store_error(store: Store, cfg: Config) -> None:
    other = sqlite3.connect(cfg.db_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        store.conn.execute("PRAGMA busy_timeout = 0")  # instead of waiting 5 s for it
        with pytest.raises(StoreError, match="busy"):
            store.set_meta("k", "v")
        with pytest.raises(StoreError, match="busy"), store.transaction():
            pass
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.set_meta("k", "v")  # and once it is free, it works
    assert store.meta("k") == "v"


def test_a_broken_store_file_is_a_store_error(store: Store, cfg: Config) -> None:
    store.close()
    cfg.db_path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="file is not a database"):
        Store.open(cfg)


def test_a_wrong_key_has_its_own_error(cfg: Config) -> None:
    cfg.key_path.write_text(base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(WrongKey, match="does not belong to the store") as err:
        Store.open(cfg)
    assert isinstance(err.value, ConfigError)  # a key file problem, as before


def test_every_agent_query_goes_through_the_store_boundary() -> None:
    """Raw ``conn.execute`` outside the store lets SQLite's errors escape unconverted (a
    traceback instead of a clear message): only the store and the schema tools may."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "jasiyo"
    allowed = {
        "agent/store.py",
        "agent/schema_dump.py",
        "sync/foldspec.py",  # reads the schema (in memory) to generate the browser's fold rules
        "migrations.py",
        "cloud/pg.py",
        "cloud/sqlite.py",
    }  # the cloud's own storage boundary
    raw = re.compile(r"\bconn\.execute(many|script)?\(")
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for path in root.rglob("*.py")
        if str(path.relative_to(root)) not in allowed
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if raw.search(line)
    ]
    assert offenders == [], f"raw queries outside the store: {offenders}"
