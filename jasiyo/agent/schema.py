"""The agent store's schema, as named migrations (sqlite-utils ``Migrations``).

Schema changes happen only here, each in its own named migration, applied in order and
recorded in ``_sqlite_migrations``. Never edit a migration that has shipped: add one.
Times are unix seconds (REAL, UTC); money is INTEGER minor units with a currency code.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("jasiyo-agent")


@migrations(name="m001_core")
def m001_core(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

        CREATE TABLE plans (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            rate TEXT NOT NULL,
            burst TEXT,
            price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
            currency TEXT NOT NULL,
            period TEXT NOT NULL,
            billing TEXT NOT NULL DEFAULT 'prepaid' CHECK (billing IN ('prepaid', 'postpaid')),
            grace_days INTEGER,
            tax_rate_bp INTEGER NOT NULL DEFAULT 0,
            quota_bytes INTEGER,
            fup_rate TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );

        CREATE TABLE subscribers (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            password_enc BLOB NOT NULL,
            plan_id INTEGER NOT NULL REFERENCES plans(id),
            service TEXT NOT NULL CHECK (service IN ('pppoe', 'hotspot', 'static')),
            ip TEXT UNIQUE,
            phone TEXT,
            name TEXT,
            sms_consent INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'grace', 'suspended', 'terminated')),
            status_reason TEXT,
            status_changed_at REAL,
            manual_suspend INTEGER NOT NULL DEFAULT 0,
            fup_active INTEGER NOT NULL DEFAULT 0,
            paid_until REAL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX subscribers_status ON subscribers(status);
        CREATE INDEX subscribers_plan ON subscribers(plan_id);

        CREATE TABLE routers (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            driver TEXT NOT NULL,
            host TEXT NOT NULL,
            port INTEGER,
            username TEXT,
            password_enc BLOB,
            radius_secret_enc BLOB NOT NULL,
            nas_ip TEXT NOT NULL UNIQUE,
            require_message_authenticator INTEGER NOT NULL DEFAULT 1,
            coa_port INTEGER NOT NULL DEFAULT 3799,
            options TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );

        CREATE TABLE radius_sessions (
            id INTEGER PRIMARY KEY,
            nas_ip TEXT NOT NULL,
            acct_session_id TEXT NOT NULL,
            username TEXT NOT NULL,
            framed_ip TEXT,
            calling_station_id TEXT,
            nas_port_id TEXT,
            started_at REAL NOT NULL,
            last_update_at REAL NOT NULL,
            stopped_at REAL,
            session_time INTEGER NOT NULL DEFAULT 0,
            input_octets INTEGER NOT NULL DEFAULT 0,
            output_octets INTEGER NOT NULL DEFAULT 0,
            input_packets INTEGER NOT NULL DEFAULT 0,
            output_packets INTEGER NOT NULL DEFAULT 0,
            terminate_cause TEXT,
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed', 'stale')),
            UNIQUE (nas_ip, acct_session_id)
        );
        CREATE INDEX radius_sessions_user ON radius_sessions(username, status);
        CREATE INDEX radius_sessions_active ON radius_sessions(status, last_update_at);

        -- Every Accounting-Request as received; `dedup` makes retransmissions no-ops.
        CREATE TABLE accounting (
            id INTEGER PRIMARY KEY,
            received_at REAL NOT NULL,
            nas_ip TEXT NOT NULL,
            acct_session_id TEXT NOT NULL,
            status_type TEXT NOT NULL,
            username TEXT,
            session_time INTEGER NOT NULL DEFAULT 0,
            input_octets INTEGER NOT NULL DEFAULT 0,
            output_octets INTEGER NOT NULL DEFAULT 0,
            input_packets INTEGER NOT NULL DEFAULT 0,
            output_packets INTEGER NOT NULL DEFAULT 0,
            terminate_cause TEXT,
            delay_time INTEGER NOT NULL DEFAULT 0,
            dedup TEXT NOT NULL UNIQUE
        );
        CREATE INDEX accounting_session ON accounting(nas_ip, acct_session_id);

        CREATE TABLE payments (
            id INTEGER PRIMARY KEY,
            reference TEXT NOT NULL UNIQUE,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id),
            amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
            currency TEXT NOT NULL,
            method TEXT NOT NULL,
            received_at REAL NOT NULL,
            recorded_by TEXT NOT NULL
        );

        -- Every movement of money. Balances are sums over it; rows are never updated.
        CREATE TABLE ledger (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id),
            at REAL NOT NULL,
            kind TEXT NOT NULL,
            amount_minor INTEGER NOT NULL,
            currency TEXT NOT NULL,
            reference TEXT,
            description TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX ledger_subscriber ON ledger(subscriber_id, at);
        CREATE UNIQUE INDEX ledger_reference ON ledger(kind, reference) WHERE reference IS NOT NULL;

        -- The event log: every change, for sync. `data` is sealed with the agent key.
        CREATE TABLE events (
            id TEXT PRIMARY KEY,
            hlc TEXT NOT NULL,
            origin TEXT NOT NULL,
            entity TEXT NOT NULL,
            key TEXT NOT NULL,
            op TEXT NOT NULL,
            data BLOB NOT NULL,
            created_at REAL NOT NULL,
            pushed_at REAL
        );
        CREATE INDEX events_unpushed ON events(pushed_at) WHERE pushed_at IS NULL;
        CREATE INDEX events_entity ON events(entity, key);

        -- Last-writer-wins clocks per field, so remote events converge in any order.
        CREATE TABLE field_clocks (
            entity TEXT NOT NULL,
            key TEXT NOT NULL,
            field TEXT NOT NULL,
            hlc TEXT NOT NULL,
            PRIMARY KEY (entity, key, field)
        ) WITHOUT ROWID;

        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX audit_target ON audit(target);

        -- Bumped by triggers whenever anything RADIUS answers from changes, so the
        -- RADIUS cache knows when to forget without polling every table.
        INSERT INTO meta (key, value) VALUES ('auth_rev', '0');
        """
    )
    for table in ("plans", "subscribers", "routers"):
        for op in ("INSERT", "UPDATE", "DELETE"):
            db.execute(
                f"CREATE TRIGGER {table}_{op.lower()}_rev AFTER {op} ON {table} BEGIN "
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'auth_rev'; END"
            )
