"""`jasiyo cloud ...`: run the cloud registry and administer tenants."""

from __future__ import annotations

import os

import typer

from jasiyo.commands.common import done, group
from jasiyo.errors import CloudError

app = group("The cloud registry: serve it, migrate it, create tenants.")

DB_HELP = "SQLite file path, or postgresql://USER@HOST/DB (the service role, not the owner)."
ADMIN_ENV = "JASIYO_ADMIN_TOKEN"
OPERATOR_ENV = "JASIYO_OPERATOR_TOKEN"  # the same name as jasiyo.cloud.server.OPERATOR_ENV


def _secret(value: str | None, env: str, what: str) -> str:
    token = value or os.environ.get(env)
    if not token:
        raise CloudError(f"give the {what} with --token or ${env}")
    return token


@app.command("serve")
def serve_cmd(
    db: str = typer.Option("jasiyo-cloud.db", "--db", help=DB_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8600, "--port", help="TCP port."),
    max_body: int = typer.Option(4 * 1024 * 1024, "--max-body", help="Largest request, bytes."),
    rate: float = typer.Option(50.0, "--rate", help="Requests per second per client address."),
    tls_cert: str | None = typer.Option(None, "--tls-cert", help="PEM certificate: serve HTTPS."),
    tls_key: str | None = typer.Option(None, "--tls-key", help="PEM private key for --tls-cert."),
    max_conns_per_client: int = typer.Option(
        64,
        "--max-conns-per-client",
        min=1,
        help="Open connections allowed per client address (raise it behind a proxy).",
    ),
) -> None:
    """Serve the /v1 API. SQLite is migrated on start; PostgreSQL by `jasiyo cloud migrate`.

    The operator token is taken from $JASIYO_OPERATOR_TOKEN if set (stored hashed).
    """
    from jasiyo.cloud.app import CloudSettings
    from jasiyo.cloud.backend import open_storage
    from jasiyo.cloud.server import serve

    storage = open_storage(db)
    try:
        if storage.backend == "sqlite":
            storage.migrate()
        storage.check_migrations()  # PostgreSQL: `cloud migrate` runs as the owner, apart
        if bool(tls_cert) != bool(tls_key):
            raise CloudError("give both --tls-cert and --tls-key, or neither")
        serve(
            storage,
            host,
            port,
            CloudSettings(
                max_body=max_body,
                rate=rate,
                burst=max(int(rate * 4), 1),
                max_conns_per_client=max_conns_per_client,
            ),
            tls_cert=tls_cert,
            tls_key=tls_key,
        )
    finally:
        storage.close()


@app.command("migrate")
def migrate_cmd(
    db: str = typer.Option(..., "--db", help="Database URL, connecting as the tables' owner."),
    app_role: str = typer.Option(
        "jasiyo_app", "--app-role", help="PostgreSQL role the service connects as (created)."
    ),
    app_password_env: str = typer.Option(
        "", "--app-password-env", help="Env var holding a password to set for the role."
    ),
) -> None:
    """Create or upgrade the cloud schema (PostgreSQL: also the service role and RLS)."""
    from jasiyo.cloud.backend import open_storage
    from jasiyo.cloud.pg import PostgresStorage

    storage = open_storage(db, owner=True)
    try:
        if isinstance(storage, PostgresStorage):
            password = os.environ.get(app_password_env) if app_password_env else None
            applied = storage.migrate(app_role=app_role, app_password=password)
        else:
            applied = storage.migrate()
    finally:
        storage.close()
    done(f"migrations applied: {', '.join(applied) or 'none (up to date)'}", applied=applied)


@app.command("create-operator")
def create_operator(
    db: str = typer.Option(
        "jasiyo-cloud.db",
        "--db",
        help="SQLite file path, or postgresql://OWNER@HOST/DB (the tables' "
        "owner: the service role may not create operators).",
    ),
    from_env: bool = typer.Option(
        False, "--from-env", help=f"Register the token in ${OPERATOR_ENV} instead of making a new one."
    ),
) -> None:
    """Create an operator token (printed once; stored hashed)."""
    from jasiyo.cloud.backend import open_storage
    from jasiyo.cloud.server import ensure_operator, new_operator_token

    token = _secret(None, OPERATOR_ENV, "operator token") if from_env else new_operator_token()
    storage = open_storage(db, owner=True)
    try:
        new = ensure_operator(storage, token)
    finally:
        storage.close()
    if from_env:
        done(f"operator token from ${OPERATOR_ENV} " + ("registered" if new else "already known"))
    else:
        done(f"operator token (shown once; keep it in ${OPERATOR_ENV}): {token}", token=token)


@app.command("create-tenant")
def create_tenant(
    url: str = typer.Argument(..., help="Cloud URL, e.g. https://cloud.example.net"),
    name: str = typer.Argument(..., help="The ISP's name."),
    token: str | None = typer.Option(None, "--token", help=f"Operator token (or ${OPERATOR_ENV})."),
) -> None:
    """Create a tenant (one ISP) and print its admin token once."""
    from jasiyo.cloud import admin

    result = admin.create_tenant(url, _secret(token, OPERATOR_ENV, "operator token"), name)
    done(f"tenant {result['tenant_id']} created; admin token (shown once): {result['admin_token']}", **result)


@app.command("enrolment-token")
def enrolment_token(
    url: str = typer.Argument(..., help="Cloud URL."),
    token: str | None = typer.Option(None, "--token", help=f"Tenant admin token (or ${ADMIN_ENV})."),
    ttl: int = typer.Option(86400, "--ttl", help="Seconds the enrolment token stays valid."),
) -> None:
    """Issue a one-time token that enrols one agent (`jasiyo agent enroll URL TOKEN`)."""
    from jasiyo.cloud import admin

    result = admin.issue_enrolment(url, _secret(token, ADMIN_ENV, "tenant admin token"), ttl)
    done(f"enrolment token (one use): {result['token']}", **result)


@app.command("revoke-agent")
def revoke_agent(
    url: str = typer.Argument(..., help="Cloud URL."),
    agent_id: str = typer.Argument(
        ..., help="The agent or dashboard id (`jasiyo cloud agents`; a POP's: `jasiyo sync status`)."
    ),
    token: str | None = typer.Option(None, "--token", help=f"Tenant admin token (or ${ADMIN_ENV})."),
) -> None:
    """Revoke an agent (a lost or retired POP) or a dashboard; its requests are refused from now on."""
    from jasiyo.cloud import admin

    result = admin.revoke_agent(url, _secret(token, ADMIN_ENV, "tenant admin token"), agent_id)
    done(f"agent {agent_id} revoked", **result)


@app.command("agents")
def agents_cmd(
    url: str = typer.Argument(..., help="Cloud URL."),
    token: str | None = typer.Option(None, "--token", help=f"Tenant admin token (or ${ADMIN_ENV})."),
) -> None:
    """List the tenant's agents (POPs) and dashboards: last contact and events not yet pulled."""
    from jasiyo.cloud import admin
    from jasiyo.commands.common import show_list, when

    result = admin.list_agents(url, _secret(token, ADMIN_ENV, "tenant admin token"))
    rows = [
        {
            "id": a["agent_id"],
            "name": a["name"],
            "kind": a["kind"],
            "last_seen": when(a["last_seen"]),
            "backlog": a["backlog"],  # None: it never pulled
            "revoked": when(a["revoked_at"]) if a["revoked_at"] is not None else False,
        }
        for a in result["agents"]
    ]
    show_list(rows, ["id", "name", "kind", "last_seen", "backlog", "revoked"], "agents")


OWNER_DB_HELP = (
    "SQLite file path, or postgresql://OWNER@HOST/DB (the tables' owner: the service role may not do this)."
)


@app.command("operators")
def operators_cmd(
    db: str = typer.Option("jasiyo-cloud.db", "--db", help=OWNER_DB_HELP),
) -> None:
    """List operator tokens (their ids and when they were made; tokens are stored hashed)."""
    from jasiyo.cloud.backend import open_storage
    from jasiyo.commands.common import show_list, when

    storage = open_storage(db, owner=True)
    try:
        rows = [
            {"id": i, "token_hash": h[:12] + "...", "created": when(at)} for i, h, at in storage.operators()
        ]
    finally:
        storage.close()
    show_list(rows, ["id", "token_hash", "created"], "operator tokens")


@app.command("revoke-operator")
def revoke_operator_cmd(
    operator_id: str = typer.Argument(..., help="The operator's id (`jasiyo cloud operators`)."),
    db: str = typer.Option("jasiyo-cloud.db", "--db", help=OWNER_DB_HELP),
) -> None:
    """Revoke an operator token: the cloud refuses it from the next request on."""
    from jasiyo.cloud.backend import open_storage

    storage = open_storage(db, owner=True)
    try:
        if not storage.revoke_operator(operator_id):
            raise CloudError(f"no operator {operator_id!r}; see `jasiyo cloud operators`")
    finally:
        storage.close()
    done(f"operator {operator_id} revoked", operator_id=operator_id)


@app.command("delete-tenant")
def delete_tenant_cmd(
    tenant_id: str = typer.Argument(..., help="The tenant to delete, with all its data."),
    db: str = typer.Option("jasiyo-cloud.db", "--db", help=OWNER_DB_HELP),
    yes: bool = typer.Option(False, "--yes", help="Confirm: this cannot be undone."),
) -> None:
    """Delete a tenant: its agents, keys ids, whole sealed log, webhooks, everything."""
    from jasiyo.cloud.backend import open_storage

    if not yes:
        raise CloudError(f"deleting tenant {tenant_id} cannot be undone: add --yes to confirm")
    storage = open_storage(db, owner=True)
    try:
        counts = storage.delete_tenant(tenant_id)
    finally:
        storage.close()
    if not counts.get("tenants"):
        raise CloudError(f"no tenant {tenant_id!r} in that database")
    done(f"tenant {tenant_id} deleted ({sum(counts.values())} rows)", deleted=counts)
