-- The agent store's schema after every migration in jasiyo/agent/schema.py.
-- Generated; do not edit. After adding a migration, run:
--     python -m jasiyo.agent.schema_dump > jasiyo/agent/schema.sql

-- Migrations applied, in order:
--     m001_core
--     m002_billing
--     m003_billing_fup
--     m004_enforce_address
--     m005_enforce_plan_rate_precise
--     m006_enforce_removed
--     m007_invoice_rate_total
--     m008_enforce_stale_sessions
--     m009_payment_reference_nocase
--     m010_invoice_carried
--     m011_stale_session_back
--     m012_money_in
--     m013_period_months_mo
--     m014_invoice_documents
--     m015_enforce_coalesce
--     m016_invoice_purchase
--     m012_radsec
--     m020_sms
--     m021_vouchers_session_limits
--     m031_pops_home_usage
--     m032_privacy_audit_sealed
--     m033_privacy_erasure
--     m034_usage_rev
--     m035_dashboard_requests

CREATE TABLE "_sqlite_migrations" (
   "id" INTEGER PRIMARY KEY,
   "migration_set" TEXT,
   "name" TEXT,
   "applied_at" TEXT
);

CREATE UNIQUE INDEX "idx__sqlite_migrations_migration_set_name"
    ON "_sqlite_migrations" ("migration_set", "name");

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

CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}'
        , detail_enc BLOB);

CREATE INDEX audit_actor ON audit(actor, at);

CREATE INDEX audit_at ON audit(at);

CREATE INDEX audit_target ON audit(target);

CREATE TABLE billing_state (
            subscriber_id INTEGER PRIMARY KEY REFERENCES subscribers(id) ON DELETE CASCADE,
            next_action_at REAL,
            cycle_end REAL,        -- postpaid: start of the next cycle to invoice
            anchor_day INTEGER,    -- calendar-month cycles keep this day of the month
            reminded_until REAL    -- prepaid: expiry reminders due up to here are done
        , fup_until REAL);

CREATE INDEX billing_state_due ON billing_state(next_action_at)
            WHERE next_action_at IS NOT NULL;

CREATE TABLE cloud_redactions (
            kind TEXT NOT NULL CHECK (kind IN ('event', 'hook')),
            id TEXT NOT NULL,
            PRIMARY KEY (kind, id)
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

CREATE TABLE document_counters (
            series TEXT PRIMARY KEY,
            last INTEGER NOT NULL
        ) WITHOUT ROWID;

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

CREATE UNIQUE INDEX enforce_jobs_one_reconcile ON enforce_jobs(router)
            WHERE action = 'reconcile' AND status = 'pending';

CREATE INDEX enforce_jobs_pending ON enforce_jobs(next_attempt_at)
            WHERE status = 'pending';

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

CREATE TABLE erasures (
            pseudonym TEXT PRIMARY KEY,
            subject TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            actor TEXT NOT NULL,
            at REAL NOT NULL,
            event_id TEXT NOT NULL
        );

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

CREATE INDEX events_entity ON events(entity, key);

CREATE INDEX events_unpushed ON events(pushed_at) WHERE pushed_at IS NULL;

CREATE TABLE field_clocks (
            entity TEXT NOT NULL,
            key TEXT NOT NULL,
            field TEXT NOT NULL,
            hlc TEXT NOT NULL,
            PRIMARY KEY (entity, key, field)
        ) WITHOUT ROWID;

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
            paid_at REAL, rate_total_minor INTEGER, carried_minor INTEGER NOT NULL DEFAULT 0, tax_inclusive INTEGER NOT NULL DEFAULT 0, seller_tax_pin TEXT, customer_tax_pin TEXT, credited_minor INTEGER NOT NULL DEFAULT 0, void_reason TEXT, purchase TEXT,
            UNIQUE (subscriber_id, cycle_start)
        );

CREATE INDEX invoices_purchase ON invoices(purchase) WHERE purchase IS NOT NULL;

CREATE INDEX invoices_subscriber ON invoices(subscriber_id, status, due_at);

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

CREATE INDEX ledger_kind ON ledger(subscriber_id, kind);

CREATE UNIQUE INDEX ledger_payment_key ON ledger(upper(reference)) WHERE kind = 'payment';

CREATE UNIQUE INDEX ledger_reference ON ledger(kind, reference) WHERE reference IS NOT NULL;

CREATE INDEX ledger_subscriber ON ledger(subscriber_id, at);

CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

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
        , status TEXT NOT NULL DEFAULT 'queued', vars TEXT, next_attempt_at REAL, encoding TEXT, parts INTEGER, cost_minor INTEGER, cost_currency TEXT, gateway TEXT, message_id TEXT, text_sent TEXT, finished_at REAL, detail TEXT);

CREATE INDEX notifications_due ON notifications(next_attempt_at)
            WHERE status = 'queued';

CREATE INDEX notifications_message_id ON notifications(message_id)
            WHERE message_id IS NOT NULL;

CREATE INDEX notifications_unsent ON notifications(created_at) WHERE sent_at IS NULL;

CREATE INDEX notifications_user ON notifications(username, created_at);

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

CREATE INDEX payment_inbox_status ON payment_inbox(status, received_at);

CREATE INDEX payment_inbox_todo ON payment_inbox(next_attempt_at)
            WHERE status IN ('new', 'retry');

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

CREATE UNIQUE INDEX payments_reference_key ON payments(upper(reference));

CREATE INDEX payments_reference_nocase ON payments(reference COLLATE NOCASE);

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
        , tax_inclusive INTEGER NOT NULL DEFAULT 0, data_bytes INTEGER CHECK (data_bytes > 0), devices INTEGER NOT NULL DEFAULT 1 CHECK (devices >= 1), portal INTEGER NOT NULL DEFAULT 0);

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
            FROM routers WHERE username IS NOT NULL AND password_enc IS NOT NULL AND (pop IS NULL OR pop = (SELECT value FROM meta WHERE key = 'pop.name') OR NOT EXISTS (SELECT 1 FROM meta WHERE key = 'sync.tenant_id' AND value != ''));
        END;

CREATE TRIGGER plans_delete_rev AFTER DELETE ON plans BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'auth_rev'; END;

CREATE TRIGGER plans_insert_rev AFTER INSERT ON plans BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'auth_rev'; END;

CREATE TRIGGER plans_update_rev AFTER UPDATE ON plans BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'auth_rev'; END;

CREATE TABLE pops (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            agent_id TEXT,
            agent_name TEXT,
            retired INTEGER NOT NULL DEFAULT 0,
            retired_to TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        , timezone TEXT, currency TEXT, sms TEXT, version TEXT);

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

CREATE INDEX radius_sessions_active ON radius_sessions(status, last_update_at);

CREATE INDEX radius_sessions_updated ON radius_sessions(last_update_at);

CREATE INDEX radius_sessions_user ON radius_sessions(username, status);

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

CREATE TRIGGER usage_rev_sessions_delete AFTER DELETE ON radius_sessions
        BEGIN UPDATE usage_rev SET n = n + 1; END;

CREATE TRIGGER usage_rev_sessions_insert AFTER INSERT ON radius_sessions
        BEGIN UPDATE usage_rev SET n = n + 1; END;

CREATE TRIGGER usage_rev_sessions_update AFTER UPDATE ON radius_sessions
        BEGIN UPDATE usage_rev SET n = n + 1; END;

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
        , radsec_fingerprint TEXT, pop TEXT);

CREATE UNIQUE INDEX routers_radsec_fingerprint ON routers(radsec_fingerprint)
            WHERE radsec_fingerprint IS NOT NULL;

CREATE TRIGGER routers_delete_rev AFTER DELETE ON routers BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'auth_rev'; END;

CREATE TRIGGER routers_insert_rev AFTER INSERT ON routers BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'auth_rev'; END;

CREATE TRIGGER routers_update_rev AFTER UPDATE ON routers BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'auth_rev'; END;

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
        , tax_pin TEXT, mac TEXT, clock_pending INTEGER NOT NULL DEFAULT 0, home_router TEXT, home_pop TEXT);

CREATE INDEX subscribers_account_key
            ON subscribers(lower(replace(replace(username, ' ', ''), '-', '')));

CREATE INDEX subscribers_home_pop ON subscribers(home_pop);

CREATE INDEX subscribers_plan ON subscribers(plan_id);

CREATE INDEX subscribers_status ON subscribers(status);

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
            FROM routers WHERE username IS NOT NULL AND password_enc IS NOT NULL AND (pop IS NULL OR pop = (SELECT value FROM meta WHERE key = 'pop.name') OR NOT EXISTS (SELECT 1 FROM meta WHERE key = 'sync.tenant_id' AND value != '')) AND (NEW.home_router IS NULL OR name = NEW.home_router OR NOT EXISTS (SELECT 1 FROM routers h WHERE h.name = NEW.home_router));
        END;

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
            FROM routers WHERE username IS NOT NULL AND password_enc IS NOT NULL AND (pop IS NULL OR pop = (SELECT value FROM meta WHERE key = 'pop.name') OR NOT EXISTS (SELECT 1 FROM meta WHERE key = 'sync.tenant_id' AND value != '')) AND (NEW.home_router IS NULL OR name = NEW.home_router OR NOT EXISTS (SELECT 1 FROM routers h WHERE h.name = NEW.home_router));
        END;

CREATE TRIGGER enforce_removed AFTER DELETE ON subscribers
        BEGIN
            INSERT INTO enforce_jobs (username, action, nas_ip, acct_session_id, framed_ip,
                                      reason, next_attempt_at, created_at)
            SELECT OLD.username, 'disconnect', r.nas_ip, r.acct_session_id, r.framed_ip,
                   'subscriber removed', OLD.updated_at, OLD.updated_at
            FROM radius_sessions r
            WHERE r.username = OLD.username AND r.status IN ('active', 'stale');
        END;

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
            FROM routers WHERE username IS NOT NULL AND password_enc IS NOT NULL AND (pop IS NULL OR pop = (SELECT value FROM meta WHERE key = 'pop.name') OR NOT EXISTS (SELECT 1 FROM meta WHERE key = 'sync.tenant_id' AND value != '')) AND (NEW.home_router IS NULL OR name = NEW.home_router OR NOT EXISTS (SELECT 1 FROM routers h WHERE h.name = NEW.home_router));
        END;

CREATE TRIGGER pops_home_moved AFTER UPDATE OF home_router, home_pop ON subscribers
        WHEN OLD.home_router IS NOT NEW.home_router OR OLD.home_pop IS NOT NEW.home_pop
        BEGIN
            INSERT OR IGNORE INTO enforce_jobs (username, action, router, reason,
                                                next_attempt_at, created_at)
            SELECT '*', 'reconcile', name, 'home of ' || NEW.username, NEW.updated_at,
                   NEW.updated_at
            FROM routers WHERE username IS NOT NULL AND password_enc IS NOT NULL AND (pop IS NULL OR pop = (SELECT value FROM meta WHERE key = 'pop.name') OR NOT EXISTS (SELECT 1 FROM meta WHERE key = 'sync.tenant_id' AND value != ''))
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

CREATE TRIGGER subscribers_delete_rev AFTER DELETE ON subscribers BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'auth_rev'; END;

CREATE TRIGGER subscribers_insert_rev AFTER INSERT ON subscribers BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'auth_rev'; END;

CREATE TRIGGER subscribers_update_rev AFTER UPDATE ON subscribers BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'auth_rev'; END;

CREATE TABLE usage_rev (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);

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

CREATE INDEX usage_summaries_updated ON usage_summaries(updated_at);

CREATE INDEX usage_summaries_user ON usage_summaries(username, cycle_start);

CREATE TRIGGER usage_rev_summaries_delete AFTER DELETE ON usage_summaries
        BEGIN UPDATE usage_rev SET n = n + 1; END;

CREATE TRIGGER usage_rev_summaries_insert AFTER INSERT ON usage_summaries
        BEGIN UPDATE usage_rev SET n = n + 1; END;

CREATE TRIGGER usage_rev_summaries_update AFTER UPDATE ON usage_summaries
        BEGIN UPDATE usage_rev SET n = n + 1; END;

CREATE TABLE voucher_uses (
            id INTEGER PRIMARY KEY,
            code TEXT NOT NULL UNIQUE,
            started_at REAL NOT NULL,
            mac TEXT,
            pop TEXT
        );

CREATE TRIGGER voucher_uses_delete_rev AFTER DELETE ON voucher_uses BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'auth_rev'; END;

CREATE TRIGGER voucher_uses_insert_rev AFTER INSERT ON voucher_uses BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'auth_rev'; END;

CREATE TRIGGER voucher_uses_update_rev AFTER UPDATE ON voucher_uses BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'auth_rev'; END;

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

CREATE TRIGGER vouchers_delete_rev AFTER DELETE ON vouchers BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'auth_rev'; END;

CREATE TRIGGER vouchers_insert_rev AFTER INSERT ON vouchers BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'auth_rev'; END;

CREATE TRIGGER vouchers_update_rev AFTER UPDATE ON vouchers BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'auth_rev'; END;
