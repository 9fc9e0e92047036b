"""Routers (RADIUS clients / NAS) and the credentials the agent uses to drive them."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from jasiyo.agent import validate
from jasiyo.agent.models import Router
from jasiyo.agent.store import Row, Store
from jasiyo.errors import AlreadyExists, NotFound, ValidationError

DRIVERS = ("mikrotik", "ubiquiti")


def secret_context(name: str, field: str) -> str:
    return f"router:{name}:{field}"


def _from_row(row: Row) -> Router:
    return Router(
        id=row["id"], name=row["name"], driver=row["driver"], host=row["host"],
        port=row["port"], username=row["username"], nas_ip=row["nas_ip"],
        require_message_authenticator=bool(row["require_message_authenticator"]),
        coa_port=row["coa_port"], has_password=row["password_enc"] is not None,
        options=json.loads(row["options"] or "{}"),
    )


def add(
    store: Store, name: str, *, driver: str, host: str, radius_secret: str, actor: str,
    port: int | None = None, username: str | None = None, password: str | None = None,
    nas_ip: str | None = None, require_message_authenticator: bool = True,
    coa_port: int = 3799, options: dict[str, Any] | None = None,
) -> Router:
    validate.name(name, "router name")
    if driver not in DRIVERS:
        raise ValidationError(f"unknown driver {driver!r}: use {' or '.join(DRIVERS)}")
    validate.host(host)
    validate.port(port)
    validate.port(coa_port)
    if not radius_secret or len(radius_secret) < 8:
        raise ValidationError("the RADIUS secret must be at least 8 characters")
    if nas_ip is None:
        try:
            nas_ip = str(ipaddress.ip_address(host))
        except ValueError:
            raise ValidationError(
                f"host {host!r} is a name: pass --nas-ip, the address its RADIUS packets come from"
            ) from None
    try:
        nas = ipaddress.ip_address(nas_ip)
    except ValueError:
        raise ValidationError(f"bad NAS IP {nas_ip!r}") from None
    if bool(username) != bool(password):
        raise ValidationError("give both --username and --password, or neither")
    now = store.now()
    with store.transaction():
        if store.scalar("SELECT 1 FROM routers WHERE name = ?", (name,)):
            raise AlreadyExists(f"router {name!r} already exists")
        other = store.scalar("SELECT name FROM routers WHERE nas_ip = ?", (str(nas),))
        if other:
            raise AlreadyExists(f"NAS IP {nas} already belongs to router {other!r}")
        store.conn.execute(
            "INSERT INTO routers (name, driver, host, port, username, password_enc, "
            "radius_secret_enc, nas_ip, require_message_authenticator, coa_port, options, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, driver, host, port, username,
             store.seal(password, secret_context(name, "password")) if password else None,
             store.seal(radius_secret, secret_context(name, "radius_secret")),
             str(nas), int(require_message_authenticator), coa_port,
             json.dumps(options or {}, sort_keys=True), now, now),
        )
        public = {"name": name, "driver": driver, "host": host, "port": port,
                  "username": username, "nas_ip": str(nas), "coa_port": coa_port,
                  "require_message_authenticator": require_message_authenticator,
                  "options": options or {}}
        store.emit("router", name, "upsert",
                   {**public, "password": password, "radius_secret": radius_secret})
        store.audit(actor, "router.add", f"router:{name}", **public)
    return get(store, name)


def get(store: Store, name: str) -> Router:
    row = store.one("SELECT * FROM routers WHERE name = ?", (name,))
    if row is None:
        raise NotFound(f"no router named {name!r} (see `jasiyo router list`)")
    return _from_row(row)


def list_(store: Store) -> list[Router]:
    return [_from_row(r) for r in store.all("SELECT * FROM routers ORDER BY name")]


def credentials(store: Store, name: str) -> tuple[str | None, str | None]:
    """(username, password) for driving the router; decrypted only when needed."""
    row = store.one("SELECT username, password_enc FROM routers WHERE name = ?", (name,))
    if row is None:
        raise NotFound(f"no router named {name!r}")
    pw = row["password_enc"]
    return row["username"], (store.unseal(pw, secret_context(name, "password")) if pw else None)


def radius_secret(store: Store, name: str) -> str:
    blob = store.scalar("SELECT radius_secret_enc FROM routers WHERE name = ?", (name,))
    if blob is None:
        raise NotFound(f"no router named {name!r}")
    return store.unseal(blob, secret_context(name, "radius_secret"))


def set_options(store: Store, name: str, actor: str, **options: Any) -> Router:
    """Merge ``options`` (driver settings such as a pinned host key) into the router's."""
    with store.transaction():
        router = get(store, name)
        merged = {**router.options, **options}
        store.conn.execute(
            "UPDATE routers SET options = ?, updated_at = ? WHERE name = ?",
            (json.dumps(merged, sort_keys=True), store.now(), name),
        )
        store.emit("router", name, "upsert", {"options": merged})
        store.audit(actor, "router.options", f"router:{name}", **options)
    return get(store, name)


def remove(store: Store, name: str, actor: str) -> None:
    with store.transaction():
        get(store, name)
        store.conn.execute("DELETE FROM routers WHERE name = ?", (name,))
        store.emit("router", name, "delete", {})
        store.audit(actor, "router.remove", f"router:{name}")
