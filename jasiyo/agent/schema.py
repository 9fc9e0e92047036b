"""The agent store's schema, as named migrations (:mod:`jasiyo.migrations`).

Schema changes happen only here, each in its own named migration, applied in order and
recorded in ``_sqlite_migrations`` (:mod:`jasiyo.migrations`, each in one transaction).
Never edit a migration that has shipped: add one, list its name in :mod:`.schema_names`, and
refresh the checked-in ``schema.sql`` (``python -m jasiyo.agent.schema_dump >
jasiyo/agent/schema.sql``), whose diff then shows what the migration did.
Times are unix seconds (REAL, UTC); money is INTEGER minor units with a currency code.
"""

from __future__ import annotations

from jasiyo.migrations import Migrations, SqliteScript

migrations = Migrations("jasiyo-agent")


@migrations(name="m001_core")
def m001_core(db: SqliteScript) -> None:
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


@migrations(name="m002_billing")
def m002_billing(db: SqliteScript) -> None:
    """Billing engine: invoices, billing clock, notifications outbox, enforcement.

    Triggers do two jobs here, so that every writer (CLI, billing tick, sync apply) gets
    them in the same transaction as its change without having to remember:

    - ``billing_state.next_action_at`` is pulled to "now" when a subscriber is added or its
      plan, status, paid-through time or SMS consent changes, so the next tick re-examines it.
    - an enforcement job is queued for each active RADIUS session of a subscriber whose
      network access class changes (Disconnect-Request) or whose speed changes (CoA), and one
      reconcile per router that has driver credentials.
    """
    db.executescript(
        """
        -- The billing clock of each subscriber. The tick selects only rows that are due.
        CREATE TABLE billing_state (
            subscriber_id INTEGER PRIMARY KEY REFERENCES subscribers(id) ON DELETE CASCADE,
            next_action_at REAL,
            cycle_end REAL,        -- postpaid: start of the next cycle to invoice
            anchor_day INTEGER,    -- calendar-month cycles keep this day of the month
            reminded_until REAL    -- prepaid: expiry reminders due up to here are done
        );
        CREATE INDEX billing_state_due ON billing_state(next_action_at)
            WHERE next_action_at IS NOT NULL;
        INSERT INTO billing_state (subscriber_id, next_action_at)
            SELECT id, updated_at FROM subscribers;

        -- One invoice per subscriber and cycle, prepaid (issued paid) or postpaid.
        CREATE TABLE invoices (
            id INTEGER PRIMARY KEY,
            number TEXT NOT NULL UNIQUE,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id),
            plan TEXT NOT NULL,
            billing TEXT NOT NULL CHECK (billing IN ('prepaid', 'postpaid')),
            cycle_start REAL NOT NULL,
            cycle_end REAL NOT NULL,
            amount_minor INTEGER NOT NULL CHECK (amount_minor >= 0),
            tax_minor INTEGER NOT NULL CHECK (tax_minor >= 0),
            total_minor INTEGER NOT NULL CHECK (total_minor >= 0),
            currency TEXT NOT NULL,
            issued_at REAL NOT NULL,
            due_at REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paid', 'void')),
            paid_at REAL,
            UNIQUE (subscriber_id, cycle_start)
        );
        CREATE INDEX invoices_subscriber ON invoices(subscriber_id, status, due_at);

        -- Messages for the SMS sender. Only for subscribers with recorded consent.
        CREATE TABLE notifications (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            username TEXT NOT NULL,
            phone TEXT NOT NULL,
            kind TEXT NOT NULL,
            message TEXT NOT NULL,
            created_at REAL NOT NULL,
            not_after REAL,
            sent_at REAL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT
        );
        CREATE INDEX notifications_unsent ON notifications(created_at) WHERE sent_at IS NULL;

        -- Durable CoA / Disconnect / router-reconcile work, retried until done.
        CREATE TABLE enforce_jobs (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('disconnect', 'coa', 'reconcile')),
            nas_ip TEXT,
            acct_session_id TEXT,
            framed_ip TEXT,
            router TEXT,
            reason TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            created_at REAL NOT NULL,
            done_at REAL,
            result TEXT,
            last_error TEXT
        );
        CREATE INDEX enforce_jobs_pending ON enforce_jobs(next_attempt_at)
            WHERE status = 'pending';
        CREATE UNIQUE INDEX enforce_jobs_one_reconcile ON enforce_jobs(router)
            WHERE action = 'reconcile' AND status = 'pending';

        -- Quota checks look only at sessions updated since the last check.
        CREATE INDEX radius_sessions_updated ON radius_sessions(last_update_at);
        CREATE INDEX ledger_kind ON ledger(subscriber_id, kind);

        CREATE TRIGGER billing_state_new AFTER INSERT ON subscribers BEGIN
            INSERT OR IGNORE INTO billing_state (subscriber_id, next_action_at)
            VALUES (NEW.id, NEW.created_at);
        END;
        CREATE TRIGGER billing_state_wake
        AFTER UPDATE OF plan_id, status, manual_suspend, paid_until, sms_consent ON subscribers
        BEGIN
            UPDATE billing_state
            SET next_action_at = MIN(COALESCE(next_action_at, NEW.updated_at), NEW.updated_at)
            WHERE subscriber_id = NEW.id;
        END;

        -- Access class: active/grace = allowed, suspended = walled garden, terminated = reject.
        -- Any change of class needs a Disconnect-Request (MikroTik cannot move a live session
        -- between address lists or pools by CoA).
        CREATE TRIGGER enforce_status AFTER UPDATE OF status ON subscribers
        WHEN OLD.status != NEW.status
            AND NOT (OLD.status IN ('active', 'grace') AND NEW.status IN ('active', 'grace'))
        BEGIN
            INSERT INTO enforce_jobs (username, action, nas_ip, acct_session_id, framed_ip,
                                      reason, next_attempt_at, created_at)
            SELECT NEW.username, 'disconnect', r.nas_ip, r.acct_session_id, r.framed_ip,
                   'status ' || OLD.status || ' -> ' || NEW.status, NEW.updated_at, NEW.updated_at
            FROM radius_sessions r WHERE r.username = NEW.username AND r.status = 'active';
            INSERT OR IGNORE INTO enforce_jobs (username, action, router, reason,
                                                next_attempt_at, created_at)
            SELECT '*', 'reconcile', name, 'status of ' || NEW.username, NEW.updated_at,
                   NEW.updated_at
            FROM routers WHERE username IS NOT NULL AND password_enc IS NOT NULL;
        END;

        -- A speed change on an allowed subscriber: CoA with the new Mikrotik-Rate-Limit.
        CREATE TRIGGER enforce_rate AFTER UPDATE OF plan_id, fup_active ON subscribers
        WHEN (OLD.plan_id != NEW.plan_id OR OLD.fup_active != NEW.fup_active)
            AND OLD.status IN ('active', 'grace') AND NEW.status IN ('active', 'grace')
        BEGIN
            INSERT INTO enforce_jobs (username, action, nas_ip, acct_session_id, framed_ip,
                                      reason, next_attempt_at, created_at)
            SELECT NEW.username, 'coa', r.nas_ip, r.acct_session_id, r.framed_ip,
                   CASE WHEN OLD.plan_id != NEW.plan_id THEN 'plan change' ELSE 'fair usage' END,
                   NEW.updated_at, NEW.updated_at
            FROM radius_sessions r WHERE r.username = NEW.username AND r.status = 'active';
            INSERT OR IGNORE INTO enforce_jobs (username, action, router, reason,
                                                next_attempt_at, created_at)
            SELECT '*', 'reconcile', name, 'rate of ' || NEW.username, NEW.updated_at,
                   NEW.updated_at
            FROM routers WHERE username IS NOT NULL AND password_enc IS NOT NULL;
        END;

        -- A plan's speed edited: CoA every allowed subscriber on it that is online.
        CREATE TRIGGER enforce_plan_rate AFTER UPDATE OF rate, burst, fup_rate ON plans
        WHEN OLD.rate != NEW.rate OR OLD.burst IS NOT NEW.burst
            OR OLD.fup_rate IS NOT NEW.fup_rate
        BEGIN
            INSERT INTO enforce_jobs (username, action, nas_ip, acct_session_id, framed_ip,
                                      reason, next_attempt_at, created_at)
            SELECT s.username, 'coa', r.nas_ip, r.acct_session_id, r.framed_ip,
                   'plan ' || NEW.name || ' edited', NEW.updated_at, NEW.updated_at
            FROM subscribers s JOIN radius_sessions r
                ON r.username = s.username AND r.status = 'active'
            WHERE s.plan_id = NEW.id AND s.status IN ('active', 'grace');
            INSERT OR IGNORE INTO enforce_jobs (username, action, router, reason,
                                                next_attempt_at, created_at)
            SELECT '*', 'reconcile', name, 'plan ' || NEW.name || ' edited', NEW.updated_at,
                   NEW.updated_at
            FROM routers WHERE username IS NOT NULL AND password_enc IS NOT NULL;
        END;
        """
    )


@migrations(name="m003_billing_fup")
def m003_billing_fup(db: SqliteScript) -> None:
    """When the fair-usage throttle of a subscriber ends (the end of the cycle it began in)."""
    db.execute("ALTER TABLE billing_state ADD COLUMN fup_until REAL")


@migrations(name="m004_enforce_address")
def m004_enforce_address(db: SqliteScript) -> None:
    """A changed static IP or service is part of the desired state too: RADIUS assigns the
    address only at login (no CoA can move it), and drivers key static queues by address."""
    db.executescript(
        """
        CREATE TRIGGER enforce_address AFTER UPDATE OF ip, service ON subscribers
        WHEN OLD.ip IS NOT NEW.ip OR OLD.service != NEW.service
        BEGIN
            INSERT INTO enforce_jobs (username, action, nas_ip, acct_session_id, framed_ip,
                                      reason, next_attempt_at, created_at)
            SELECT NEW.username, 'disconnect', r.nas_ip, r.acct_session_id, r.framed_ip,
                   'address or service changed', NEW.updated_at, NEW.updated_at
            FROM radius_sessions r WHERE r.username = NEW.username AND r.status = 'active';
            INSERT OR IGNORE INTO enforce_jobs (username, action, router, reason,
                                                next_attempt_at, created_at)
            SELECT '*', 'reconcile', name, 'address of ' || NEW.username, NEW.updated_at,
                   NEW.updated_at
            FROM routers WHERE username IS NOT NULL AND password_enc IS NOT NULL;
        END;
        """
    )


@migrations(name="m005_enforce_plan_rate_precise")
def m005_enforce_plan_rate_precise(db: SqliteScript) -> None:
    """A plan edit sends a CoA only to subscribers whose effective rate changed: editing the
    fair-usage rate touches only those throttled, editing the rate only those who are not."""
    db.executescript(
        """
        DROP TRIGGER enforce_plan_rate;
        CREATE TRIGGER enforce_plan_rate AFTER UPDATE OF rate, burst, fup_rate ON plans
        WHEN OLD.rate != NEW.rate OR OLD.burst IS NOT NEW.burst
            OR OLD.fup_rate IS NOT NEW.fup_rate
        BEGIN
            INSERT INTO enforce_jobs (username, action, nas_ip, acct_session_id, framed_ip,
                                      reason, next_attempt_at, created_at)
            SELECT s.username, 'coa', r.nas_ip, r.acct_session_id, r.framed_ip,
                   'plan ' || NEW.name || ' edited', NEW.updated_at, NEW.updated_at
            FROM subscribers s JOIN radius_sessions r
                ON r.username = s.username AND r.status = 'active'
            WHERE s.plan_id = NEW.id AND s.status IN ('active', 'grace')
              AND (CASE WHEN s.fup_active = 1 AND OLD.fup_rate IS NOT NULL THEN OLD.fup_rate
                        ELSE OLD.rate || ' ' || COALESCE(OLD.burst, '') END)
                  IS NOT
                  (CASE WHEN s.fup_active = 1 AND NEW.fup_rate IS NOT NULL THEN NEW.fup_rate
                        ELSE NEW.rate || ' ' || COALESCE(NEW.burst, '') END);
            INSERT OR IGNORE INTO enforce_jobs (username, action, router, reason,
                                                next_attempt_at, created_at)
            SELECT '*', 'reconcile', name, 'plan ' || NEW.name || ' edited', NEW.updated_at,
                   NEW.updated_at
            FROM routers WHERE username IS NOT NULL AND password_enc IS NOT NULL;
        END;
        """
    )


@migrations(name="m006_enforce_removed")
def m006_enforce_removed(db: SqliteScript) -> None:
    # A removed subscriber must not stay online until the router happens to re-authenticate.
    db.executescript(
        """
        CREATE TRIGGER enforce_removed AFTER DELETE ON subscribers
        BEGIN
            INSERT INTO enforce_jobs (username, action, nas_ip, acct_session_id, framed_ip,
                                      reason, next_attempt_at, created_at)
            SELECT OLD.username, 'disconnect', r.nas_ip, r.acct_session_id, r.framed_ip,
                   'subscriber removed', OLD.updated_at, OLD.updated_at
            FROM radius_sessions r WHERE r.username = OLD.username AND r.status = 'active';
        END;
        """
    )


@migrations(name="m007_invoice_rate_total")
def m007_invoice_rate_total(db: SqliteScript) -> None:
    # The rate a cycle is charged at changes with each plan switch; a later switch must
    # refund from that rate, not from what the invoice first said (NULL: total_minor).
    db.executescript("ALTER TABLE invoices ADD COLUMN rate_total_minor INTEGER;")


@migrations(name="m008_enforce_stale_sessions")
def m008_enforce_stale_sessions(db: SqliteScript) -> None:
    # A session the reaper marked stale (no interim while the agent was down) may well still
    # be up: a change of access or speed must reach it too, or a suspended subscriber stays
    # online. Same triggers as before, with 'stale' sessions included.
    db.executescript(
        """
        DROP TRIGGER enforce_status;
        CREATE TRIGGER enforce_status AFTER UPDATE OF status ON subscribers
        WHEN OLD.status != NEW.status
            AND NOT (OLD.status IN ('active', 'grace') AND NEW.status IN ('active', 'grace'))
        BEGIN
            INSERT INTO enforce_jobs (username, action, nas_ip, acct_session_id, framed_ip,
                                      reason, next_attempt_at, created_at)
            SELECT NEW.username, 'disconnect', r.nas_ip, r.acct_session_id, r.framed_ip,
                   'status ' || OLD.status || ' -> ' || NEW.status, NEW.updated_at, NEW.updated_at
            FROM radius_sessions r
            WHERE r.username = NEW.username AND r.status IN ('active', 'stale');
            INSERT OR IGNORE INTO enforce_jobs (username, action, router, reason,
                                                next_attempt_at, created_at)
            SELECT '*', 'reconcile', name, 'status of ' || NEW.username, NEW.updated_at,
                   NEW.updated_at
            FROM routers WHERE username IS NOT NULL AND password_enc IS NOT NULL;
        END;

        DROP TRIGGER enforce_rate;
        CREATE TRIGGER enforce_rate AFTER UPDATE OF plan_id, fup_active ON subscribers
        WHEN (OLD.plan_id != NEW.plan_id OR OLD.fup_active != NEW.fup_active)
            AND OLD.status IN ('active', 'grace') AND NEW.status IN ('active', 'grace')
        BEGIN
            INSERT INTO enforce_jobs (username, action, nas_ip, acct_session_id, framed_ip,
                                      reason, next_attempt_at, created_at)
            SELECT NEW.username, 'coa', r.nas_ip, r.acct_session_id, r.framed_ip,
                   CASE WHEN OLD.plan_id != NEW.plan_id THEN 'plan change' ELSE 'fair usage' END,
                   NEW.updated_at, NEW.updated_at
            FROM radius_sessions r
            WHERE r.username = NEW.username AND r.status IN ('active', 'stale');
            INSERT OR IGNORE INTO enforce_jobs (username, action, router, reason,
                                                next_attempt_at, created_at)
            SELECT '*', 'reconcile', name, 'rate of ' || NEW.username, NEW.updated_at,
                   NEW.updated_at
            FROM routers WHERE username IS NOT NULL AND password_enc IS NOT NULL;
        END;

        DROP TRIGGER enforce_plan_rate;
        CREATE TRIGGER enforce_plan_rate AFTER UPDATE OF rate, burst, fup_rate ON plans
        WHEN OLD.rate != NEW.rate OR OLD.burst IS NOT NEW.burst
            OR OLD.fup_rate IS NOT NEW.fup_rate
        BEGIN
            INSERT INTO enforce_jobs (username, action, nas_ip, acct_session_id, framed_ip,
                                      reason, next_attempt_at, created_at)
            SELECT s.username, 'coa', r.nas_ip, r.acct_session_id, r.framed_ip,
                   'plan ' || NEW.name || ' edited', NEW.updated_at, NEW.updated_at
            FROM subscribers s JOIN radius_sessions r
                ON r.username = s.username AND r.status IN ('active', 'stale')
            WHERE s.plan_id = NEW.id AND s.status IN ('active', 'grace')
              AND (CASE WHEN s.fup_active = 1 AND OLD.fup_rate IS NOT NULL THEN OLD.fup_rate
                        ELSE OLD.rate || ' ' || COALESCE(OLD.burst, '') END)
                  IS NOT
                  (CASE WHEN s.fup_active = 1 AND NEW.fup_rate IS NOT NULL THEN NEW.fup_rate
                        ELSE NEW.rate || ' ' || COALESCE(NEW.burst, '') END);
            INSERT OR IGNORE INTO enforce_jobs (username, action, router, reason,
                                                next_attempt_at, created_at)
            SELECT '*', 'reconcile', name, 'plan ' || NEW.name || ' edited', NEW.updated_at,
                   NEW.updated_at
            FROM routers WHERE username IS NOT NULL AND password_enc IS NOT NULL;
        END;

        DROP TRIGGER enforce_address;
        CREATE TRIGGER enforce_address AFTER UPDATE OF ip, service ON subscribers
        WHEN OLD.ip IS NOT NEW.ip OR OLD.service != NEW.service
        BEGIN
            INSERT INTO enforce_jobs (username, action, nas_ip, acct_session_id, framed_ip,
                                      reason, next_attempt_at, created_at)
            SELECT NEW.username, 'disconnect', r.nas_ip, r.acct_session_id, r.framed_ip,
                   'address or service changed', NEW.updated_at, NEW.updated_at
            FROM radius_sessions r
            WHERE r.username = NEW.username AND r.status IN ('active', 'stale');
            INSERT OR IGNORE INTO enforce_jobs (username, action, router, reason,
                                                next_attempt_at, created_at)
            SELECT '*', 'reconcile', name, 'address of ' || NEW.username, NEW.updated_at,
                   NEW.updated_at
            FROM routers WHERE username IS NOT NULL AND password_enc IS NOT NULL;
        END;

        DROP TRIGGER enforce_removed;
        CREATE TRIGGER enforce_removed AFTER DELETE ON subscribers
        BEGIN
            INSERT INTO enforce_jobs (username, action, nas_ip, acct_session_id, framed_ip,
                                      reason, next_attempt_at, created_at)
            SELECT OLD.username, 'disconnect', r.nas_ip, r.acct_session_id, r.framed_ip,
                   'subscriber removed', OLD.updated_at, OLD.updated_at
            FROM radius_sessions r
            WHERE r.username = OLD.username AND r.status IN ('active', 'stale');
        END;
        """
    )


@migrations(name="m009_payment_reference_nocase")
def m009_payment_reference_nocase(db: SqliteScript) -> None:
    # Duplicate payments are found by reference ignoring case; keep that lookup indexed.
    db.executescript("CREATE INDEX payments_reference_nocase ON payments(reference COLLATE NOCASE);")


@migrations(name="m010_invoice_carried")
def m010_invoice_carried(db: SqliteScript) -> None:
    # Proration debt that sits on no invoice is carried onto the next postpaid invoice.
    db.executescript("ALTER TABLE invoices ADD COLUMN carried_minor INTEGER NOT NULL DEFAULT 0;")


@migrations(name="m011_stale_session_back")
def m011_stale_session_back(db: SqliteScript) -> None:
    # A stale session heard from again is reopened by accounting. If its subscriber may not
    # be online (suspended while the session was stale, or removed), the access change found
    # no session to act on: queue the Disconnect now. A trigger keeps this off the
    # accounting writer's per-record path (no extra SELECT per Interim).
    db.executescript(
        """
        CREATE TRIGGER enforce_stale_back AFTER UPDATE OF status ON radius_sessions
        WHEN OLD.status = 'stale' AND NEW.status = 'active'
            AND NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.username = NEW.username
                            AND s.status IN ('active', 'grace'))
            AND NOT EXISTS (SELECT 1 FROM enforce_jobs j WHERE j.status = 'pending'
                            AND j.action = 'disconnect' AND j.nas_ip = NEW.nas_ip
                            AND j.acct_session_id = NEW.acct_session_id)
        BEGIN
            INSERT INTO enforce_jobs (username, action, nas_ip, acct_session_id, framed_ip,
                                      reason, next_attempt_at, created_at)
            VALUES (NEW.username, 'disconnect', NEW.nas_ip, NEW.acct_session_id, NEW.framed_ip,
                    CASE WHEN EXISTS (SELECT 1 FROM subscribers s
                                      WHERE s.username = NEW.username)
                         THEN 'stale session back, not allowed'
                         ELSE 'stale session back, subscriber removed' END,
                    NEW.last_update_at, NEW.last_update_at);
        END;
        """
    )


@migrations(name="m012_money_in")
def m012_money_in(db: SqliteScript) -> None:
    # Payments from providers without an engineer: the requests this POP made (STK prompts,
    # Paystack checkouts), every callback received (kept whatever became of it), and the
    # suspense list of verified money that matched nobody. References have one normal form
    # (upper case, see payments.normalize_reference): existing rows are brought to it where
    # that collides with nothing, and a unique index on the normal form guards every path,
    # the sync insert included.
    db.executescript(
        """
        CREATE TABLE payment_requests (
            id INTEGER PRIMARY KEY,
            provider TEXT NOT NULL,
            request_id TEXT NOT NULL UNIQUE,
            merchant_request_id TEXT,
            subscriber_id INTEGER REFERENCES subscribers(id) ON DELETE SET NULL,
            account TEXT NOT NULL,
            phone TEXT,
            amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
            currency TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            result_code TEXT,
            result_desc TEXT,
            receipt TEXT,
            checkout_url TEXT,
            created_by TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            next_query_at REAL,
            queries INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX payment_requests_pending ON payment_requests(next_query_at)
            WHERE status = 'pending';
        CREATE INDEX payment_requests_subscriber ON payment_requests(subscriber_id, created_at);

        CREATE TABLE payment_inbox (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL UNIQUE,
            endpoint TEXT NOT NULL,
            provider TEXT NOT NULL,
            kind TEXT NOT NULL,
            received_at REAL NOT NULL,
            remote TEXT,
            sealed BLOB NOT NULL,
            status TEXT NOT NULL DEFAULT 'new'
                CHECK (status IN ('new', 'retry', 'applied', 'duplicate', 'refused',
                                  'unmatched', 'closed', 'other_pop')),
            detail TEXT,
            reference TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL,
            processed_at REAL
        );
        CREATE INDEX payment_inbox_todo ON payment_inbox(next_attempt_at)
            WHERE status IN ('new', 'retry');
        CREATE INDEX payment_inbox_status ON payment_inbox(status, received_at);

        CREATE TABLE payment_suspense (
            id INTEGER PRIMARY KEY,
            reference TEXT NOT NULL UNIQUE,
            provider TEXT NOT NULL,
            amount_minor INTEGER NOT NULL,
            currency TEXT NOT NULL,
            account TEXT,
            phone TEXT,
            payer TEXT,
            reason TEXT NOT NULL,
            received_at REAL NOT NULL,
            inbox_id INTEGER REFERENCES payment_inbox(id),
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'allocated')),
            allocated_to TEXT,
            allocated_at REAL,
            allocated_by TEXT
        );
        CREATE INDEX payment_suspense_open ON payment_suspense(status, received_at);

        -- A C2B BillRefNumber is matched ignoring case, spaces and dashes.
        CREATE INDEX subscribers_account_key
            ON subscribers(lower(replace(replace(username, ' ', ''), '-', '')));

        UPDATE payments SET reference = upper(reference)
        WHERE reference <> upper(reference) AND NOT EXISTS (
            SELECT 1 FROM payments o WHERE o.id <> payments.id
            AND upper(o.reference) = upper(payments.reference));
        UPDATE ledger SET reference = upper(reference)
        WHERE kind = 'payment' AND reference <> upper(reference) AND NOT EXISTS (
            SELECT 1 FROM ledger o WHERE o.id <> ledger.id AND o.kind = 'payment'
            AND upper(o.reference) = upper(ledger.reference));
        """
    )
    dup_pay = db.execute(
        "SELECT count(*) FROM (SELECT upper(reference) FROM payments GROUP BY 1 HAVING count(*) > 1)"
    ).fetchone()[0]
    if not dup_pay:
        db.execute("CREATE UNIQUE INDEX payments_reference_key ON payments(upper(reference))")
    dup_led = db.execute(
        "SELECT count(*) FROM (SELECT upper(reference) FROM ledger WHERE kind = 'payment' "
        "GROUP BY 1 HAVING count(*) > 1)"
    ).fetchone()[0]
    if not dup_led:
        db.execute(
            "CREATE UNIQUE INDEX ledger_payment_key ON ledger(upper(reference)) WHERE kind = 'payment'"
        )


@migrations(name="m013_period_months_mo")
def m013_period_months_mo(db: SqliteScript) -> None:
    # One duration syntax everywhere: months are "Nmo", since "m" meant minutes elsewhere.
    # (Billing still reads a legacy "Nm" as months, for events from older agents.)
    db.executescript(
        "UPDATE plans SET period = substr(period, 1, length(period) - 1) || 'mo' WHERE period GLOB '[0-9]*m';"
    )


@migrations(name="m014_invoice_documents")
def m014_invoice_documents(db: SqliteScript) -> None:
    """Invoices an accountant accepts: gapless numbers per POP and year, credit
    notes, VAT inclusive or exclusive per plan, the seller's and the customer's tax PIN."""
    db.executescript(
        """
        ALTER TABLE plans ADD COLUMN tax_inclusive INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE subscribers ADD COLUMN tax_pin TEXT;
        ALTER TABLE invoices ADD COLUMN tax_inclusive INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE invoices ADD COLUMN seller_tax_pin TEXT;
        ALTER TABLE invoices ADD COLUMN customer_tax_pin TEXT;
        ALTER TABLE invoices ADD COLUMN credited_minor INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE invoices ADD COLUMN void_reason TEXT;

        -- The last number given in each series ('INV-NRB1-2026'), bumped in the same
        -- transaction as the document it numbers: a rollback takes the number back too.
        CREATE TABLE document_counters (
            series TEXT PRIMARY KEY,
            last INTEGER NOT NULL
        ) WITHOUT ROWID;

        CREATE TABLE credit_notes (
            id INTEGER PRIMARY KEY,
            number TEXT NOT NULL UNIQUE,
            invoice_number TEXT NOT NULL REFERENCES invoices(number),
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id),
            amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
            tax_minor INTEGER NOT NULL DEFAULT 0,
            currency TEXT NOT NULL,
            reason TEXT NOT NULL,
            issued_at REAL NOT NULL,
            issued_by TEXT NOT NULL
        );
        CREATE INDEX credit_notes_invoice ON credit_notes(invoice_number);
        """
    )


@migrations(name="m015_enforce_coalesce")
def m015_enforce_coalesce(db: SqliteScript) -> None:
    """Only the last wanted state of a session is sent: a new Disconnect for a
    session supersedes its pending Disconnect and CoA (the session re-authenticates into
    whatever is wanted by then); a new CoA supersedes a pending CoA, and is itself
    superseded by a pending Disconnect. Superseded jobs finish as done/'superseded'."""
    db.executescript(
        """
        CREATE INDEX enforce_jobs_session ON enforce_jobs(nas_ip, acct_session_id)
            WHERE status = 'pending';
        CREATE TRIGGER enforce_coalesce AFTER INSERT ON enforce_jobs
        WHEN NEW.action IN ('disconnect', 'coa') AND NEW.acct_session_id IS NOT NULL
        BEGIN
            UPDATE enforce_jobs
            SET status = 'done', result = 'superseded', done_at = NEW.created_at,
                last_error = 'superseded by job ' || NEW.id
            WHERE status = 'pending' AND id != NEW.id AND nas_ip = NEW.nas_ip
              AND acct_session_id = NEW.acct_session_id
              AND (NEW.action = 'disconnect' OR action = 'coa');
            UPDATE enforce_jobs
            SET status = 'done', result = 'superseded', done_at = NEW.created_at,
                last_error = 'a pending disconnect of the session covers it'
            WHERE id = NEW.id AND NEW.action = 'coa' AND EXISTS (
                SELECT 1 FROM enforce_jobs j WHERE j.status = 'pending' AND j.id != NEW.id
                AND j.action = 'disconnect' AND j.nas_ip = NEW.nas_ip
                AND j.acct_session_id = NEW.acct_session_id);
        END;
        """
    )


@migrations(name="m016_invoice_purchase")
def m016_invoice_purchase(db: SqliteScript) -> None:
    # A prepaid period bought by a payment names that payment (``<reference>#<n>``); its
    # charge is keyed by it, so one receipt applied at two POPs buys once.
    db.executescript(
        """
        ALTER TABLE invoices ADD COLUMN purchase TEXT;
        CREATE INDEX invoices_purchase ON invoices(purchase) WHERE purchase IS NOT NULL;
        """
    )


@migrations(name="m012_radsec")
def m012_radsec(db: SqliteScript) -> None:
    # RadSec (RFC 6614) identifies a router by its TLS client certificate, not its source
    # address: the pinned SHA-256 fingerprint (lower-case hex), unique like nas_ip.
    db.executescript(
        """
        ALTER TABLE routers ADD COLUMN radsec_fingerprint TEXT;
        CREATE UNIQUE INDEX routers_radsec_fingerprint ON routers(radsec_fingerprint)
            WHERE radsec_fingerprint IS NOT NULL;
        """
    )


@migrations(name="m020_sms")
def m020_sms(db: SqliteScript) -> None:
    # SMS that reaches customers: the outbox learns a life cycle (queued ->
    # sending -> sent -> delivered / failed, or dropped: stale, consent withdrawn, paid),
    # retries with backoff, the cost and parts of what was sent, and the gateway's message
    # id that delivery reports name. Consent becomes a record (when, how, by whom; the
    # subscriber's flag stays as the current value every queue path checks). Delivery
    # reports and incoming messages are kept sealed in their own inbox, like payments.
    db.executescript(
        """
        ALTER TABLE notifications ADD COLUMN status TEXT NOT NULL DEFAULT 'queued';
        ALTER TABLE notifications ADD COLUMN vars TEXT;
        ALTER TABLE notifications ADD COLUMN next_attempt_at REAL;
        ALTER TABLE notifications ADD COLUMN encoding TEXT;
        ALTER TABLE notifications ADD COLUMN parts INTEGER;
        ALTER TABLE notifications ADD COLUMN cost_minor INTEGER;
        ALTER TABLE notifications ADD COLUMN cost_currency TEXT;
        ALTER TABLE notifications ADD COLUMN gateway TEXT;
        ALTER TABLE notifications ADD COLUMN message_id TEXT;
        ALTER TABLE notifications ADD COLUMN text_sent TEXT;
        ALTER TABLE notifications ADD COLUMN finished_at REAL;
        ALTER TABLE notifications ADD COLUMN detail TEXT;
        UPDATE notifications SET status = 'sent' WHERE sent_at IS NOT NULL;
        UPDATE notifications SET next_attempt_at = created_at WHERE sent_at IS NULL;
        CREATE INDEX notifications_due ON notifications(next_attempt_at)
            WHERE status = 'queued';
        CREATE INDEX notifications_message_id ON notifications(message_id)
            WHERE message_id IS NOT NULL;
        CREATE INDEX notifications_user ON notifications(username, created_at);

        CREATE TABLE sms_consent (
            id INTEGER PRIMARY KEY,
            ref TEXT NOT NULL UNIQUE,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            given INTEGER NOT NULL CHECK (given IN (0, 1)),
            how TEXT NOT NULL CHECK (how IN ('cli', 'csv', 'portal', 'keyword', 'import')),
            actor TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT '',
            at REAL NOT NULL
        );
        CREATE INDEX sms_consent_subscriber ON sms_consent(subscriber_id, at);

        CREATE TABLE sms_inbox (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL UNIQUE,
            endpoint TEXT NOT NULL,
            kind TEXT NOT NULL,
            received_at REAL NOT NULL,
            remote TEXT,
            sealed BLOB NOT NULL,
            status TEXT NOT NULL DEFAULT 'new',
            detail TEXT,
            processed_at REAL
        );
        CREATE INDEX sms_inbox_new ON sms_inbox(id) WHERE status = 'new';
        """
    )


@migrations(name="m021_vouchers_session_limits")
def m021_vouchers_session_limits(db: SqliteScript) -> None:
    # Short and data-limited packages, session limits and vouchers (issues 12 and 17):
    # a plan may end at a data amount as well as its period, allows ``devices`` sessions
    # at once (Simultaneous-Use) and may be sold on the hotspot portal. A subscriber may be
    # bound to one device (its MAC, as Calling-Station-Id sends it, normalised) and may
    # have its clock not yet started (a portal purchase: the first login starts it).
    # Vouchers are codes sold on paper; their first use is an immutable record, kept once
    # per code on every POP (the earliest event wins, see agent/vouchers.py).
    db.executescript(
        """
        ALTER TABLE plans ADD COLUMN data_bytes INTEGER CHECK (data_bytes > 0);
        ALTER TABLE plans ADD COLUMN devices INTEGER NOT NULL DEFAULT 1 CHECK (devices >= 1);
        ALTER TABLE plans ADD COLUMN portal INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE subscribers ADD COLUMN mac TEXT;
        ALTER TABLE subscribers ADD COLUMN clock_pending INTEGER NOT NULL DEFAULT 0;

        CREATE TABLE vouchers (
            id INTEGER PRIMARY KEY,
            code TEXT NOT NULL UNIQUE,
            plan_id INTEGER NOT NULL REFERENCES plans(id),
            status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'revoked')),
            valid_until REAL,
            batch TEXT,
            mac TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX vouchers_batch ON vouchers(batch);

        CREATE TABLE voucher_uses (
            id INTEGER PRIMARY KEY,
            code TEXT NOT NULL UNIQUE,
            started_at REAL NOT NULL,
            mac TEXT,
            pop TEXT
        );
        """
    )
    for table in ("vouchers", "voucher_uses"):
        for op in ("INSERT", "UPDATE", "DELETE"):
            db.execute(
                f"CREATE TRIGGER {table}_{op.lower()}_rev AFTER {op} ON {table} BEGIN "
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'auth_rev'; END"
            )


#: Routers this POP drives: its own (``pop`` = this POP's name), ones from before POPs
#: (``pop`` NULL), or every router while the agent is stand-alone (not enrolled in a cloud).
_LOCAL_ROUTERS = (
    "(pop IS NULL OR pop = (SELECT value FROM meta WHERE key = 'pop.name') "
    "OR NOT EXISTS (SELECT 1 FROM meta WHERE key = 'sync.tenant_id' AND value != ''))"
)


@migrations(name="m031_pops_home_usage")
def m031_pops_home_usage(db: SqliteScript) -> None:
    """POPs: a router belongs to the POP that added it; a subscriber has a home
    router and so a home POP, whose agent alone runs its billing clock, reminders and
    router reconcile. Per-cycle usage travels as summaries (``usage_summaries``, one row per
    subscriber, cycle and recording agent). The reconcile part of the enforcement triggers
    (as in m008) now queues only this POP's routers, and for a homed subscriber only its
    home router: a static queue lives on the home router alone."""
    local = _LOCAL_ROUTERS
    creds = "username IS NOT NULL AND password_enc IS NOT NULL"
    # A home on a router that is gone (removed) counts as no home: every router of the POP.
    home = (
        "(NEW.home_router IS NULL OR name = NEW.home_router OR NOT EXISTS "
        "(SELECT 1 FROM routers h WHERE h.name = NEW.home_router))"
    )
    db.executescript(
        f"""
        ALTER TABLE routers ADD COLUMN pop TEXT;
        ALTER TABLE subscribers ADD COLUMN home_router TEXT;
        ALTER TABLE subscribers ADD COLUMN home_pop TEXT;
        CREATE INDEX subscribers_home_pop ON subscribers(home_pop);

        CREATE TABLE pops (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            agent_id TEXT,
            agent_name TEXT,
            retired INTEGER NOT NULL DEFAULT 0,
            retired_to TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );

        CREATE TABLE usage_summaries (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            username TEXT NOT NULL,
            cycle_start REAL NOT NULL,
            agent TEXT NOT NULL,
            pop TEXT,
            input_octets INTEGER NOT NULL DEFAULT 0,
            output_octets INTEGER NOT NULL DEFAULT 0,
            session_time INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX usage_summaries_user ON usage_summaries(username, cycle_start);
        CREATE INDEX usage_summaries_updated ON usage_summaries(updated_at);

        DROP TRIGGER enforce_status;
        CREATE TRIGGER enforce_status AFTER UPDATE OF status ON subscribers
        WHEN OLD.status != NEW.status
            AND NOT (OLD.status IN ('active', 'grace') AND NEW.status IN ('active', 'grace'))
        BEGIN
            INSERT INTO enforce_jobs (username, action, nas_ip, acct_session_id, framed_ip,
                                      reason, next_attempt_at, created_at)
            SELECT NEW.username, 'disconnect', r.nas_ip, r.acct_session_id, r.framed_ip,
                   'status ' || OLD.status || ' -> ' || NEW.status, NEW.updated_at, NEW.updated_at
            FROM radius_sessions r
            WHERE r.username = NEW.username AND r.status IN ('active', 'stale');
            INSERT OR IGNORE INTO enforce_jobs (username, action, router, reason,
                                                next_attempt_at, created_at)
            SELECT '*', 'reconcile', name, 'status of ' || NEW.username, NEW.updated_at,
                   NEW.updated_at
            FROM routers WHERE {creds} AND {local} AND {home};
        END;

        DROP TRIGGER enforce_rate;
        CREATE TRIGGER enforce_rate AFTER UPDATE OF plan_id, fup_active ON subscribers
        WHEN (OLD.plan_id != NEW.plan_id OR OLD.fup_active != NEW.fup_active)
            AND OLD.status IN ('active', 'grace') AND NEW.status IN ('active', 'grace')
        BEGIN
            INSERT INTO enforce_jobs (username, action, nas_ip, acct_session_id, framed_ip,
                                      reason, next_attempt_at, created_at)
            SELECT NEW.username, 'coa', r.nas_ip, r.acct_session_id, r.framed_ip,
                   CASE WHEN OLD.plan_id != NEW.plan_id THEN 'plan change' ELSE 'fair usage' END,
                   NEW.updated_at, NEW.updated_at
            FROM radius_sessions r
            WHERE r.username = NEW.username AND r.status IN ('active', 'stale');
            INSERT OR IGNORE INTO enforce_jobs (username, action, router, reason,
                                                next_attempt_at, created_at)
            SELECT '*', 'reconcile', name, 'rate of ' || NEW.username, NEW.updated_at,
                   NEW.updated_at
            FROM routers WHERE {creds} AND {local} AND {home};
        END;

        DROP TRIGGER enforce_plan_rate;
        CREATE TRIGGER enforce_plan_rate AFTER UPDATE OF rate, burst, fup_rate ON plans
        WHEN OLD.rate != NEW.rate OR OLD.burst IS NOT NEW.burst
            OR OLD.fup_rate IS NOT NEW.fup_rate
        BEGIN
            INSERT INTO enforce_jobs (username, action, nas_ip, acct_session_id, framed_ip,
                                      reason, next_attempt_at, created_at)
            SELECT s.username, 'coa', r.nas_ip, r.acct_session_id, r.framed_ip,
                   'plan ' || NEW.name || ' edited', NEW.updated_at, NEW.updated_at
            FROM subscribers s JOIN radius_sessions r
                ON r.username = s.username AND r.status IN ('active', 'stale')
            WHERE s.plan_id = NEW.id AND s.status IN ('active', 'grace')
              AND (CASE WHEN s.fup_active = 1 AND OLD.fup_rate IS NOT NULL THEN OLD.fup_rate
                        ELSE OLD.rate || ' ' || COALESCE(OLD.burst, '') END)
                  IS NOT
                  (CASE WHEN s.fup_active = 1 AND NEW.fup_rate IS NOT NULL THEN NEW.fup_rate
                        ELSE NEW.rate || ' ' || COALESCE(NEW.burst, '') END);
            INSERT OR IGNORE INTO enforce_jobs (username, action, router, reason,
                                                next_attempt_at, created_at)
            SELECT '*', 'reconcile', name, 'plan ' || NEW.name || ' edited', NEW.updated_at,
                   NEW.updated_at
            FROM routers WHERE {creds} AND {local};
        END;

        DROP TRIGGER enforce_address;
        CREATE TRIGGER enforce_address AFTER UPDATE OF ip, service ON subscribers
        WHEN OLD.ip IS NOT NEW.ip OR OLD.service != NEW.service
        BEGIN
            INSERT INTO enforce_jobs (username, action, nas_ip, acct_session_id, framed_ip,
                                      reason, next_attempt_at, created_at)
            SELECT NEW.username, 'disconnect', r.nas_ip, r.acct_session_id, r.framed_ip,
                   'address or service changed', NEW.updated_at, NEW.updated_at
            FROM radius_sessions r
            WHERE r.username = NEW.username AND r.status IN ('active', 'stale');
            INSERT OR IGNORE INTO enforce_jobs (username, action, router, reason,
                                                next_attempt_at, created_at)
            SELECT '*', 'reconcile', name, 'address of ' || NEW.username, NEW.updated_at,
                   NEW.updated_at
            FROM routers WHERE {creds} AND {local} AND {home};
        END;

        -- A subscriber handed to another home: the routers it leaves and joins here are
        -- reconciled (its static queue moves), and the billing clock looks at it again
        -- (the new home starts, the old one stops).
        CREATE TRIGGER pops_home_moved AFTER UPDATE OF home_router, home_pop ON subscribers
        WHEN OLD.home_router IS NOT NEW.home_router OR OLD.home_pop IS NOT NEW.home_pop
        BEGIN
            INSERT OR IGNORE INTO enforce_jobs (username, action, router, reason,
                                                next_attempt_at, created_at)
            SELECT '*', 'reconcile', name, 'home of ' || NEW.username, NEW.updated_at,
                   NEW.updated_at
            FROM routers WHERE {creds} AND {local}
              AND (OLD.home_router IS NULL OR NEW.home_router IS NULL
                   OR name IN (OLD.home_router, NEW.home_router)
                   OR NOT EXISTS (SELECT 1 FROM routers h WHERE h.name = OLD.home_router));
            UPDATE billing_state
            SET next_action_at = MIN(COALESCE(next_action_at, NEW.updated_at), NEW.updated_at)
            WHERE subscriber_id = NEW.id;
            -- Handed to this POP by another home: reminders already due were the old home's
            -- to send, and the next postpaid cycle follows the invoices (synced), not a
            -- cycle end of old. (A first home takes over from "every POP" as it stands.)
            UPDATE billing_state
            SET reminded_until = MAX(COALESCE(reminded_until, 0), NEW.updated_at),
                cycle_end = NULL
            WHERE subscriber_id = NEW.id AND OLD.home_pop IS NOT NULL
              AND OLD.home_pop != NEW.home_pop
              AND NEW.home_pop = (SELECT value FROM meta WHERE key = 'pop.name');
        END;
        """
    )


@migrations(name="m032_privacy_audit_sealed")
def m032_privacy_audit_sealed(db: SqliteScript) -> None:
    # Audit details name people (names, phones, reasons): they move into ``detail_enc``,
    # sealed with the agent key like every other secret at rest (Store.migrate seals the
    # lines written before, which needs the key). ``detail`` stays for older readers, '{}'.
    db.executescript(
        """
        ALTER TABLE audit ADD COLUMN detail_enc BLOB;
        CREATE INDEX audit_at ON audit(at);
        CREATE INDEX audit_actor ON audit(actor, at);
        """
    )


@migrations(name="m033_privacy_erasure")
def m033_privacy_erasure(db: SqliteScript) -> None:
    # Erasure of a person (jasiyo.agent.erase): the record of each (who asked, when, why;
    # the person's username only as a hash), and the cloud copies still to be replaced
    # by their scrubbed versions (events) or dropped (webhook bodies), sent by the pusher.
    db.executescript(
        """
        CREATE TABLE erasures (
            pseudonym TEXT PRIMARY KEY,
            subject TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            actor TEXT NOT NULL,
            at REAL NOT NULL,
            event_id TEXT NOT NULL
        );
        CREATE TABLE cloud_redactions (
            kind TEXT NOT NULL CHECK (kind IN ('event', 'hook')),
            id TEXT NOT NULL,
            PRIMARY KEY (kind, id)
        ) WITHOUT ROWID;
        """
    )


@migrations(name="m034_usage_rev")
def m034_usage_rev(db: SqliteScript) -> None:
    # A counter that moves whenever what RADIUS's usage check reads moves (sessions and
    # other POPs' usage summaries), so an authentication process keeps its cached session
    # counts across unrelated commits (SMS status, billing, sync) instead of re-reading
    # them after every write anywhere in the store.
    db.executescript(
        """
        CREATE TABLE usage_rev (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
        INSERT INTO usage_rev VALUES (1, 0);
        CREATE TRIGGER usage_rev_sessions_insert AFTER INSERT ON radius_sessions
        BEGIN UPDATE usage_rev SET n = n + 1; END;
        CREATE TRIGGER usage_rev_sessions_update AFTER UPDATE ON radius_sessions
        BEGIN UPDATE usage_rev SET n = n + 1; END;
        CREATE TRIGGER usage_rev_sessions_delete AFTER DELETE ON radius_sessions
        BEGIN UPDATE usage_rev SET n = n + 1; END;
        CREATE TRIGGER usage_rev_summaries_insert AFTER INSERT ON usage_summaries
        BEGIN UPDATE usage_rev SET n = n + 1; END;
        CREATE TRIGGER usage_rev_summaries_update AFTER UPDATE ON usage_summaries
        BEGIN UPDATE usage_rev SET n = n + 1; END;
        CREATE TRIGGER usage_rev_summaries_delete AFTER DELETE ON usage_summaries
        BEGIN UPDATE usage_rev SET n = n + 1; END;
        """
    )


@migrations(name="m035_dashboard_requests")
def m035_dashboard_requests(db: SqliteScript) -> None:
    # The tenant dashboard (issue 16, jasiyo.agent.requests): the changes it asks of the
    # agents (``request`` events, folded here once per key), what became of each
    # (``request_result``, from the POP that carried it out), and this POP's own record of
    # having handled one, written in the transaction that carried it out, so a request runs
    # once whatever arrives again. A POP also publishes its zone, currency, SMS counts and
    # version on its ``pop`` event.
    db.executescript(
        """
        CREATE TABLE dashboard_requests (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            action TEXT,
            at REAL
        );
        CREATE TABLE dashboard_results (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            status TEXT,
            message TEXT,
            pop TEXT,
            at REAL
        );
        CREATE TABLE dashboard_runs (
            key TEXT PRIMARY KEY,
            outcome TEXT NOT NULL CHECK (outcome IN ('done', 'refused', 'retry', 'elsewhere')),
            pop TEXT,
            message TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL,
            updated_at REAL NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX dashboard_runs_due ON dashboard_runs(next_attempt_at) WHERE outcome = 'retry';
        ALTER TABLE pops ADD COLUMN timezone TEXT;
        ALTER TABLE pops ADD COLUMN currency TEXT;
        ALTER TABLE pops ADD COLUMN sms TEXT;
        ALTER TABLE pops ADD COLUMN version TEXT;
        """
    )
