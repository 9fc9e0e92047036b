"""The cloud's schema as named migrations, one list per backend.

Each migration runs in a transaction and is recorded in ``jasiyo_migrations``, by the same
runner as the agent's store (:mod:`jasiyo.migrations`); never edit one that has shipped, add
another. On PostgreSQL the migrations run as the tables' owner and
create the service role (``{app_role}``): it gets only the grants it needs, and every
tenant-owned table has Row Level Security forced on it, keyed on the per-transaction setting
``jasiyo.tenant``. A query that forgets its ``tenant_id`` filter therefore still sees only the
tenant of the request.
"""

from __future__ import annotations

from collections.abc import Callable

from jasiyo.migrations import Migrations

#: Tables holding a tenant's rows (all carry ``tenant_id``, or are keyed by it).
TENANT_TABLES = (
    "tenants",
    "enrolments",
    "agents",
    "key_ids",
    "events",
    "nonces",
    "hook_endpoints",
    "webhooks",
    "snapshots",
    "snapshot_parts",
    "wrapped_keys",
)


def _rls(tables: tuple[str, ...]) -> str:
    return "".join(
        f"""
        ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;
        ALTER TABLE {t} FORCE ROW LEVEL SECURITY;
        CREATE POLICY {t}_tenant ON {t}
            USING (tenant_id = current_setting('jasiyo.tenant', true))
            WITH CHECK (tenant_id = current_setting('jasiyo.tenant', true));
        """
        for t in tables
    )


_HOOKS = """
        CREATE TABLE hook_endpoints (
            tenant_id TEXT NOT NULL REFERENCES tenants(id),
            token_hash TEXT NOT NULL,
            provider TEXT NOT NULL,
            public_key TEXT NOT NULL,
            created_at {real} NOT NULL,
            PRIMARY KEY (tenant_id, token_hash)
        );
        CREATE TABLE webhooks (
            tenant_id TEXT NOT NULL REFERENCES tenants(id),
            seq {int} NOT NULL,
            id TEXT NOT NULL,
            provider TEXT NOT NULL,
            sealed TEXT NOT NULL,
            received_at {real} NOT NULL,
            PRIMARY KEY (tenant_id, seq)
        );
"""

_SNAPSHOTS = """
        -- A sealed snapshot of a tenant's state (the events that still matter), written by
        -- an agent in parts; once committed, the events it covers (seq <= its seq) are
        -- dropped, and so are older snapshots. floor_seq: the log is held above it.
        CREATE TABLE snapshots (
            tenant_id TEXT NOT NULL REFERENCES tenants(id),
            id TEXT NOT NULL,
            origin TEXT NOT NULL,
            seq {int} NOT NULL,
            parts {int} NOT NULL,
            created_at {real} NOT NULL,
            committed_at {real},
            PRIMARY KEY (tenant_id, id)
        );
        CREATE TABLE snapshot_parts (
            tenant_id TEXT NOT NULL REFERENCES tenants(id),
            snapshot_id TEXT NOT NULL,
            part {int} NOT NULL,
            envelope TEXT NOT NULL,
            PRIMARY KEY (tenant_id, snapshot_id, part)
        );
        ALTER TABLE tenants ADD COLUMN floor_seq {int} NOT NULL DEFAULT 0;
"""

_DASHBOARDS = """
        -- Dashboards (browsers) enrol and sign like agents; kind tells them apart. last_seen
        -- and cursor (the last seq the cloud sent it) are written at most every 30 s per
        -- agent, for the agents list (last contact, backlog = head - cursor).
        ALTER TABLE agents ADD COLUMN kind TEXT NOT NULL DEFAULT 'agent'
            CHECK (kind IN ('agent', 'dashboard'));
        ALTER TABLE agents ADD COLUMN last_seen {real};
        ALTER TABLE agents ADD COLUMN cursor {int};
        -- The tenant keyring wrapped in the browser under a passphrase-derived key: the
        -- cloud holds it for the dashboard's sign-in and cannot open it.
        CREATE TABLE wrapped_keys (
            tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
            doc TEXT NOT NULL,
            updated_at {real} NOT NULL
        );
"""

SQLITE: list[tuple[str, str]] = [
    (
        "c001_core",
        """
        CREATE TABLE operators (
            id TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL
        );
        CREATE TABLE tenants (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL UNIQUE CHECK (tenant_id = id),
            name TEXT NOT NULL,
            admin_token_hash TEXT NOT NULL,
            last_seq INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL
        );
        CREATE TABLE enrolments (
            token_hash TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants(id),
            expires_at REAL NOT NULL,
            used_at REAL,
            agent_id TEXT,
            created_at REAL NOT NULL
        );
        CREATE TABLE agents (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants(id),
            name TEXT NOT NULL,
            public_key TEXT NOT NULL,
            created_at REAL NOT NULL,
            revoked_at REAL
        );
        CREATE TABLE key_ids (
            tenant_id TEXT NOT NULL REFERENCES tenants(id),
            kid TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (tenant_id, kid)
        );
        CREATE TABLE events (
            tenant_id TEXT NOT NULL REFERENCES tenants(id),
            seq INTEGER NOT NULL,
            id TEXT NOT NULL,
            origin TEXT NOT NULL,
            envelope TEXT NOT NULL,
            received_at REAL NOT NULL,
            PRIMARY KEY (tenant_id, seq),
            UNIQUE (tenant_id, id)
        );
        CREATE TABLE nonces (
            tenant_id TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            nonce TEXT NOT NULL,
            seen_at REAL NOT NULL,
            PRIMARY KEY (tenant_id, agent_id, nonce)
        );
        CREATE INDEX nonces_seen ON nonces(seen_at);
        """,
    ),
    ("c002_webhooks", _HOOKS.format(real="REAL", int="INTEGER")),
    ("c005_privacy_redact", "CREATE INDEX IF NOT EXISTS webhooks_id ON webhooks(tenant_id, id);"),
    (
        "c006_privacy_hook_owner",
        """
        ALTER TABLE hook_endpoints ADD COLUMN agent_id TEXT;
        ALTER TABLE hook_endpoints ADD COLUMN closed_at REAL;
        """,
    ),
    ("c007_privacy_snapshots", _SNAPSHOTS.format(real="REAL", int="INTEGER")),
    ("c008_dashboards", _DASHBOARDS.format(real="REAL", int="INTEGER")),
]

#: What the cloud service role may do, column by column (PostgreSQL, c003).
_SERVICE_GRANTS = (
    "SELECT (token_hash) ON operators",
    "SELECT (id, tenant_id, admin_token_hash, last_seq) ON tenants",
    "INSERT (id, tenant_id, name, admin_token_hash, created_at) ON tenants",
    "UPDATE (last_seq) ON tenants",
    "SELECT (token_hash, tenant_id, expires_at, used_at) ON enrolments",
    "INSERT (token_hash, tenant_id, expires_at, created_at) ON enrolments",
    "UPDATE (used_at, agent_id) ON enrolments",
    "SELECT (id, tenant_id, name, public_key, revoked_at) ON agents",
    "INSERT (id, tenant_id, name, public_key, created_at) ON agents",
    "UPDATE (revoked_at) ON agents",
    "SELECT (tenant_id, kid) ON key_ids",
    "INSERT (tenant_id, kid, created_at) ON key_ids",
    "SELECT (tenant_id, seq, id, origin, envelope, received_at) ON events",
    "INSERT (tenant_id, seq, id, origin, envelope, received_at) ON events",
    "SELECT (tenant_id, agent_id, nonce, seen_at) ON nonces",
    "INSERT (tenant_id, agent_id, nonce, seen_at) ON nonces",
    "DELETE ON nonces",
    "SELECT (tenant_id, token_hash, provider, public_key) ON hook_endpoints",
    "INSERT (tenant_id, token_hash, provider, public_key, created_at) ON hook_endpoints",
    "SELECT (tenant_id, seq, id, provider, sealed) ON webhooks",
    "INSERT (tenant_id, seq, id, provider, sealed, received_at) ON webhooks",
)

#: What c008 adds to the service role's grants (PostgreSQL).
_DASHBOARD_GRANTS = (
    "SELECT (created_at, kind, last_seen, cursor) ON agents",
    "INSERT (kind) ON agents",
    "UPDATE (last_seen, cursor) ON agents",
    "SELECT (tenant_id, doc, updated_at) ON wrapped_keys",
    "INSERT (tenant_id, doc, updated_at) ON wrapped_keys",
    "UPDATE (doc, updated_at) ON wrapped_keys",
)

POSTGRES: list[tuple[str, str]] = [
    (
        "c001_core",
        """
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{app_role}') THEN
                CREATE ROLE {app_role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
            END IF;
        END $$;
        CREATE TABLE operators (
            id TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            created_at DOUBLE PRECISION NOT NULL
        );
        CREATE TABLE tenants (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL UNIQUE CHECK (tenant_id = id),
            name TEXT NOT NULL,
            admin_token_hash TEXT NOT NULL,
            last_seq BIGINT NOT NULL DEFAULT 0,
            created_at DOUBLE PRECISION NOT NULL
        );
        CREATE TABLE enrolments (
            token_hash TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants(id),
            expires_at DOUBLE PRECISION NOT NULL,
            used_at DOUBLE PRECISION,
            agent_id TEXT,
            created_at DOUBLE PRECISION NOT NULL
        );
        CREATE TABLE agents (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants(id),
            name TEXT NOT NULL,
            public_key TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            revoked_at DOUBLE PRECISION
        );
        CREATE TABLE key_ids (
            tenant_id TEXT NOT NULL REFERENCES tenants(id),
            kid TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (tenant_id, kid)
        );
        CREATE TABLE events (
            tenant_id TEXT NOT NULL REFERENCES tenants(id),
            seq BIGINT NOT NULL,
            id TEXT NOT NULL,
            origin TEXT NOT NULL,
            envelope TEXT NOT NULL,
            received_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (tenant_id, seq),
            UNIQUE (tenant_id, id)
        );
        CREATE TABLE nonces (
            tenant_id TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            nonce TEXT NOT NULL,
            seen_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (tenant_id, agent_id, nonce)
        );
        CREATE INDEX nonces_seen ON nonces(tenant_id, seen_at);

        GRANT USAGE ON SCHEMA {schema} TO {app_role};
        GRANT SELECT, INSERT ON operators TO {app_role};
        GRANT SELECT, INSERT ON tenants TO {app_role};
        GRANT UPDATE (last_seq) ON tenants TO {app_role};
        GRANT SELECT, INSERT, UPDATE ON enrolments TO {app_role};
        GRANT SELECT, INSERT, UPDATE ON agents TO {app_role};
        GRANT SELECT, INSERT ON key_ids TO {app_role};
        GRANT SELECT, INSERT ON events TO {app_role};
        GRANT SELECT, INSERT, DELETE ON nonces TO {app_role};
        """
        + _rls(TENANT_TABLES[:6]),
    ),
    (
        "c002_webhooks",
        _HOOKS.format(real="DOUBLE PRECISION", int="BIGINT")
        + """
        GRANT SELECT, INSERT ON hook_endpoints TO {app_role};
        GRANT SELECT, INSERT ON webhooks TO {app_role};
        """
        + _rls(("hook_endpoints", "webhooks")),
    ),
    (
        "c003_column_grants",
        # Only the columns each statement of jasiyo/cloud/storage.py touches. Notably the
        # service can neither rewrite an agent's public key (a takeover of that POP), nor
        # create operators (`jasiyo cloud create-operator` runs as the owner), nor change a
        # tenant's admin token, nor delete or rewrite the log.
        "REVOKE ALL ON operators, tenants, enrolments, agents, key_ids, events, nonces, "
        "hook_endpoints, webhooks FROM {app_role};\n"
        + "".join(f"GRANT {grant} TO {{app_role}};\n" for grant in _SERVICE_GRANTS),
    ),
    (
        "c004_migrations_readable",
        # So that `cloud serve`, as the service, refuses a database a newer Jasiyo migrated.
        "GRANT SELECT (name) ON jasiyo_migrations TO {app_role};",
    ),
    (
        "c005_privacy_redact",
        # An erasure replaces the envelopes of the events that carried the person (the same
        # event re-sealed by an agent, without them) and drops the webhook bodies of their
        # payments: the service may rewrite an envelope, never an event's id, origin or seq.
        """
        CREATE INDEX IF NOT EXISTS webhooks_id ON webhooks(tenant_id, id);
        GRANT UPDATE (envelope) ON events TO {app_role};
        GRANT DELETE ON webhooks TO {app_role};
        """,
    ),
    (
        "c006_privacy_hook_owner",
        # A webhook endpoint belongs to the agent that made it, and closes when that agent
        # is revoked. Deleting a tenant and operator tokens are the owner's (no grant).
        """
        ALTER TABLE hook_endpoints ADD COLUMN agent_id TEXT;
        ALTER TABLE hook_endpoints ADD COLUMN closed_at DOUBLE PRECISION;
        GRANT SELECT (agent_id, closed_at) ON hook_endpoints TO {app_role};
        GRANT INSERT (agent_id) ON hook_endpoints TO {app_role};
        GRANT UPDATE (closed_at) ON hook_endpoints TO {app_role};
        """,
    ),
    (
        "c007_privacy_snapshots",
        # Compaction: the service deletes the events a committed snapshot covers (never one
        # it was asked to keep), and older snapshots; it still cannot read any of them.
        _SNAPSHOTS.format(real="DOUBLE PRECISION", int="BIGINT")
        + """
        GRANT SELECT, INSERT, DELETE ON snapshots, snapshot_parts TO {app_role};
        GRANT UPDATE (committed_at) ON snapshots TO {app_role};
        GRANT SELECT (floor_seq) ON tenants TO {app_role};
        GRANT UPDATE (floor_seq) ON tenants TO {app_role};
        GRANT DELETE ON events TO {app_role};
        """
        + _rls(("snapshots", "snapshot_parts")),
    ),
    (
        "c008_dashboards",
        # The service sets an agent's kind only when enrolling it (a POP cannot be turned
        # into a dashboard or back), and keeps last_seen and cursor. The wrapped keyring is
        # replaced whole by the tenant admin; the service cannot delete it.
        _DASHBOARDS.format(real="DOUBLE PRECISION", int="BIGINT")
        + "".join(f"GRANT {grant} TO {{app_role}};\n" for grant in _DASHBOARD_GRANTS)
        + _rls(("wrapped_keys",)),
    ),
]


def cloud_migrations(
    scripts: list[tuple[str, str]], render: Callable[[str], str] = lambda text: text
) -> Migrations:
    """The runner's set for one backend's scripts (``render`` fills in role and schema)."""
    out = Migrations("jasiyo-cloud")
    for name, text in scripts:
        # a lambda with a default (binds this text): mypy cannot type it
        out.add(name, lambda handle, text=text: handle.executescript(render(text)))  # type: ignore[misc]
    return out
