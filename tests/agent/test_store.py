from __future__ import annotations

import stat

import pytest

from jasiyo.agent import plans, routers
from jasiyo.agent import subscribers as subs
from jasiyo.agent.keys import load_key
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import ConfigError, StoreError


def _seed(store: Store) -> None:
    plans.add(store, plans.build("home", rate="10M/10M", price="1500.50"), "test")
    subs.add(store, subs.NewSubscriber.build("alice", password="Sup3r-secret!", plan="home"), "test")
    routers.add(
        store,
        "r1",
        driver="mikrotik",
        host="10.1.1.1",
        radius_secret="radius-secret-xyz",
        username="api",
        password="router-pass-123",
        actor="test",
    )


def test_init_creates_key_0600_and_store(cfg: Config) -> None:
    assert stat.S_IMODE(cfg.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cfg.db_path.stat().st_mode) == 0o600
    assert len(load_key(cfg.key_path)) == 32


def test_secrets_are_not_in_the_database_file(cfg: Config, store: Store) -> None:
    _seed(store)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = cfg.db_path.read_bytes()
    for secret in (b"Sup3r-secret!", b"radius-secret-xyz", b"router-pass-123"):
        assert secret not in raw
    assert subs.password_of(store, "alice") == "Sup3r-secret!"
    assert routers.credentials(store, "r1") == ("api", "router-pass-123")
    assert routers.radius_secret(store, "r1") == "radius-secret-xyz"


def test_money_is_integer_minor_units(store: Store) -> None:
    _seed(store)
    assert store.scalar("SELECT typeof(price_minor) || ':' || price_minor FROM plans") == "integer:150050"


def test_every_change_writes_an_event_and_an_audit_line(store: Store) -> None:
    _seed(store)
    subs.suspend(store, "alice", "noc:jane", "unpaid")
    events = store.all("SELECT * FROM events ORDER BY hlc")
    assert [(e["entity"], e["key"], e["op"]) for e in events] == [
        ("plan", "home", "upsert"),
        ("subscriber", "alice", "upsert"),
        ("router", "r1", "upsert"),
        ("subscriber", "alice", "upsert"),
    ]
    assert store.event_data(events[-1])["status"] == "suspended"
    # event payloads (which carry passwords) are sealed too
    assert b"Sup3r-secret!" not in events[1]["data"]
    assert store.event_data(events[1])["password"] == "Sup3r-secret!"
    audit = store.all("SELECT actor, action, target FROM audit ORDER BY id")
    assert audit[-1] == {"actor": "noc:jane", "action": "subscriber.status", "target": "subscriber:alice"}
    assert "Sup3r-secret!" not in str(store.all("SELECT detail FROM audit"))


def test_failed_change_leaves_no_event(store: Store) -> None:
    _seed(store)
    before = store.scalar("SELECT count(*) FROM events")
    with pytest.raises(StoreError):
        plans.add(store, plans.build("home", rate="1M", price="1"), "test")
    assert store.scalar("SELECT count(*) FROM events") == before


def test_migrations_are_named_and_recorded(store: Store) -> None:
    names = [r["name"] for r in store.all("SELECT name FROM _sqlite_migrations")]
    assert names[0] == "m001_core"
    assert store.scalar("PRAGMA journal_mode") == "wal"


def test_a_ciphertext_moved_to_another_row_does_not_decrypt(store: Store) -> None:
    _seed(store)
    subs.add(store, subs.NewSubscriber.build("bob", password="bob-pw", plan="home"), "test")
    store.conn.execute(
        "UPDATE subscribers SET password_enc = (SELECT password_enc FROM "
        "subscribers WHERE username = 'alice') WHERE username = 'bob'"
    )
    with pytest.raises(StoreError, match="wrong agent key or tampered"):
        subs.password_of(store, "bob")


def test_world_readable_key_is_refused(cfg: Config) -> None:
    cfg.key_path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_key(cfg.key_path)


def test_init_refuses_a_new_key_for_an_existing_store(cfg: Config) -> None:
    from jasiyo.agent.store import init_store

    cfg.key_path.unlink()
    with pytest.raises(ConfigError, match="restore agent.key"):
        init_store(cfg)
    assert not cfg.key_path.exists()


def test_a_foreign_key_is_refused_at_open(cfg: Config) -> None:
    import base64
    import os

    cfg.key_path.write_text(base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(ConfigError, match="does not belong to the store"):
        Store.open(cfg)


def test_init_leaves_an_existing_folder_mode_alone(tmp_path) -> None:
    from jasiyo.agent.store import init_store
    from jasiyo.config import parse

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    init_store(parse('[agent]\ndata_dir = "shared"\n', tmp_path))
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    assert stat.S_IMODE((shared / "agent.key").stat().st_mode) == 0o600


def test_the_light_list_of_migration_names_matches_the_schema() -> None:
    """Store.open checks schema_names.NAMES (no sqlite-utils import): it must list every
    migration of schema.py, in order."""
    from jasiyo.agent import schema, schema_names

    assert [m.name for m in schema.migrations._migrations] == list(schema_names.NAMES)
