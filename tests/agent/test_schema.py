"""The store's schema: the checked-in schema.sql, upgrades with live data, the enforcement
triggers against desired_state, and a store from a newer version refused."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest

from jasiyo.agent import billing, desired, payments, plans, routers, schema, schema_dump
from jasiyo.agent import subscribers as subs
from jasiyo.agent.keys import SecretBox, load_key
from jasiyo.agent.store import Store
from jasiyo.config import Config, RadiusSection
from jasiyo.errors import StoreError
from jasiyo.migrations import Migrations, SqliteLedger
from jasiyo.network import Access, Status
from tests.conftest import make_config

SCHEMA_SQL = Path(schema.__file__).with_name("schema.sql")
REFRESH = "python -m jasiyo.agent.schema_dump > jasiyo/agent/schema.sql"


def test_schema_sql_is_what_the_migrations_make() -> None:
    assert SCHEMA_SQL.read_text() == schema_dump.fresh_schema(), (
        f"jasiyo/agent/schema.sql is not what the migrations make: run `{REFRESH}` and "
        "review its diff (it is what the new migration does to the schema)"
    )


def test_a_new_store_has_that_schema(store: Store) -> None:
    assert schema_dump.schema_of(store.conn) == SCHEMA_SQL.read_text()


# ------------------------------------------------------------------ upgrades


def _older_store(cfg: Config, upto: str) -> SecretBox:
    """Replace the store of ``cfg`` by one migrated up to ``upto`` (inclusive)."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(cfg.db_path) + suffix).unlink(missing_ok=True)
    older = Migrations(schema.migrations.name)
    for m in schema.migrations._migrations:
        older.add(m.name, m.fn)
        if m.name == upto:
            break
    conn = sqlite3.connect(cfg.db_path, isolation_level=None)
    try:
        older.apply(SqliteLedger(conn))
    finally:
        conn.close()
    return SecretBox(load_key(cfg.key_path))


def _live_data(cfg: Config, box: SecretBox, upto: str) -> None:
    """Rows as an agent at that schema kept them (only m001's tables and columns; months
    written "1m" before m013 made them "1mo")."""
    names = [m.name for m in schema.migrations._migrations]
    months = "1m" if names.index(upto) < names.index("m013_period_months_mo") else "1mo"
    conn = sqlite3.connect(cfg.db_path, isolation_level=None)
    try:
        conn.executescript(f"""
            INSERT INTO meta (key, value) VALUES ('agent_id', '0190a0b0-0000-7000-8000-000000000001');
            INSERT INTO plans (name, rate, burst, price_minor, currency, period, billing,
                               grace_days, tax_rate_bp, quota_bytes, fup_rate, created_at, updated_at)
            VALUES ('home', '10M/10M', NULL, 150000, 'KES', '30d', 'prepaid', 2, 0, NULL, NULL, 1, 1),
                   ('monthly', '20M/20M', NULL, 300000, 'KES', '{months}', 'postpaid', NULL, 1600,
                    NULL, NULL, 1, 1);
        """)
        conn.execute(
            "INSERT INTO subscribers (username, password_enc, plan_id, service, ip, phone, name, "
            "sms_consent, status, paid_until, created_at, updated_at) VALUES "
            "('alice', ?, 1, 'pppoe', NULL, '+254712345678', 'Alice', 1, 'active', ?, 1, 1), "
            "('bob', ?, 2, 'static', '100.64.0.9', NULL, NULL, 0, 'suspended', NULL, 1, 1)",
            (
                box.seal("alice-pw", subs.password_context("alice")),
                4_000_000_000.0,
                box.seal("bob-pw", subs.password_context("bob")),
            ),
        )
        conn.execute(
            "INSERT INTO routers (name, driver, host, radius_secret_enc, nas_ip, created_at, "
            "updated_at) VALUES ('core-1', 'ubiquiti', '127.0.0.1', ?, '127.0.0.1', 1, 1)",
            (box.seal("testing123", routers.secret_context("core-1", "radius_secret")),),
        )
        conn.executescript("""
            INSERT INTO payments (reference, subscriber_id, amount_minor, currency, method,
                                  received_at, recorded_by)
            VALUES ('qk1abc', 1, 150000, 'KES', 'mpesa', 2, 'noc');
            INSERT INTO ledger (subscriber_id, at, kind, amount_minor, currency, reference)
            VALUES (1, 2, 'payment', 150000, 'KES', 'qk1abc');
            INSERT INTO radius_sessions (nas_ip, acct_session_id, username, started_at,
                                         last_update_at, status)
            VALUES ('127.0.0.1', 's-1', 'alice', 3, 3, 'active');
        """)
    finally:
        conn.close()


@pytest.mark.parametrize(
    "upto", ["m001_core", "m008_enforce_stale_sessions", "m012_money_in", "m016_invoice_purchase"]
)
def test_an_older_store_with_live_data_upgrades_to_the_same_schema(tmp_path: Path, upto: str) -> None:
    cfg = make_config(tmp_path)
    box = _older_store(cfg, upto)
    _live_data(cfg, box, upto)
    store = Store.open(cfg)  # migrates the rest
    try:
        assert schema_dump.schema_of(store.conn) == SCHEMA_SQL.read_text()
        alice, bob = subs.get(store, "alice"), subs.get(store, "bob")
        assert (alice.plan, alice.phone, alice.status, bob.ip, bob.status) == (
            "home",
            "+254712345678",
            "active",
            "100.64.0.9",
            "suspended",
        )
        assert subs.password_of(store, "bob") == "bob-pw"
        assert plans.get(store, "monthly").period == "1mo"  # m013: months are "Nmo"
        assert routers.get(store, "core-1").driver == "edgeos"
        state = desired.for_subscriber(store, "alice", RadiusSection())
        assert state is not None and state.access is Access.ALLOW
        # The upgraded store takes new work: the old receipt is still known (in any case),
        # a new payment is recorded, and the billing clock runs over the old rows.
        assert not payments.record(store, cfg, "alice", "1500", "QK1ABC", actor="noc").created
        assert payments.record(store, cfg, "bob", "3000", "QK2DEF", actor="noc").created
        assert billing.tick(store, cfg).errors == 0
    finally:
        store.close()


def test_a_store_from_a_newer_version_is_refused_untouched(cfg: Config) -> None:
    conn = sqlite3.connect(cfg.db_path, isolation_level=None)
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
        "VALUES ('jasiyo-agent', 'm999_from_the_future', 'later')"
    )
    before = list(conn.iterdump())
    conn.close()
    with pytest.raises(StoreError, match="upgraded by a newer version of Jasiyo.*m999_from_the"):
        Store.open(cfg)
    conn = sqlite3.connect(cfg.db_path)
    assert list(conn.iterdump()) == before
    conn.close()


# ------------------------------------------------------------------ triggers vs desired


def _session_jobs(store: Store) -> set[str]:
    rows = store.all(
        "SELECT action FROM enforce_jobs WHERE acct_session_id IS NOT NULL AND status = 'pending'"
    )
    return {r["action"] for r in rows}


def _fresh(store: Store, status: str, plan: str = "slow", fup: int = 0) -> None:
    with store.transaction():
        store.execute("DELETE FROM enforce_jobs")
        store.execute(
            "UPDATE subscribers SET status = ?, fup_active = ?, plan_id = "
            "(SELECT id FROM plans WHERE name = ?) WHERE username = 'alice'",
            (status, fup, plan),
        )
        store.execute("DELETE FROM enforce_jobs")


@pytest.fixture
def alice_online(store: Store) -> Store:
    plans.add(store, plans.build("slow", rate="5M/5M", price="1000", quota="1G", fup_rate="1M/1M"), "t")
    plans.add(store, plans.build("fast", rate="50M/50M", price="5000"), "t")
    subs.add(store, subs.NewSubscriber.build("alice", password="pw-alice", plan="slow"), "t")
    with store.transaction():
        store.execute(
            "INSERT INTO radius_sessions (nas_ip, acct_session_id, username, "
            "started_at, last_update_at, status) VALUES ('127.0.0.1', 's-1', 'alice', "
            "1, 1, 'active')"
        )
    return store


@pytest.mark.parametrize("suspended_action", ["walled_garden", "reject"])
def test_the_triggers_queue_what_desired_state_implies_for_every_status_change(
    alice_online: Store, suspended_action: str
) -> None:
    """A live session is disconnected exactly when its desired access class changes, or
    when the subscriber is not to be let in at all; never between active and grace."""
    store = alice_online
    radius = RadiusSection(suspended_action=suspended_action)
    for old, new in itertools.permutations([s.value for s in Status], 2):
        _fresh(store, old)
        before = desired.for_subscriber(store, "alice", radius)
        subs.set_status(store, "alice", Status(new), "t", "test")
        after = desired.for_subscriber(store, "alice", radius)
        assert before is not None and after is not None
        wanted = before.access != after.access or after.access is Access.REJECT
        assert _session_jobs(store) == ({"disconnect"} if wanted else set()), (old, new)


@pytest.mark.parametrize("status", [s.value for s in Status])
def test_the_triggers_send_a_speed_change_exactly_when_an_allowed_rate_changes(
    alice_online: Store, status: str
) -> None:
    store = alice_online
    radius = RadiusSection()
    for change in ("plan", "fair usage"):
        _fresh(store, status)
        before = desired.for_subscriber(store, "alice", radius)
        with store.transaction():
            if change == "plan":
                store.execute(
                    "UPDATE subscribers SET plan_id = (SELECT id FROM plans WHERE "
                    "name = 'fast'), updated_at = 2 WHERE username = 'alice'"
                )
            else:
                store.execute(
                    "UPDATE subscribers SET fup_active = 1, updated_at = 2 WHERE username = 'alice'"
                )
        after = desired.for_subscriber(store, "alice", radius)
        assert before is not None and after is not None
        allowed = before.access is Access.ALLOW and after.access is Access.ALLOW
        wanted = allowed and before.rate_limit != after.rate_limit
        assert _session_jobs(store) == ({"coa"} if wanted else set()), (status, change)
