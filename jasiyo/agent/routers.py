"""Routers (RADIUS clients / NAS) and the credentials the agent uses to drive them."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from jasiyo.agent import validate
from jasiyo.agent.records import Router
from jasiyo.agent.store import Row, Store
from jasiyo.drivers import DRIVERS, driver_name
from jasiyo.errors import AlreadyExists, ConfigError, NotFound, ValidationError

#: Drivers with no management API: the agent only answers their RADIUS.
RADIUS_ONLY = frozenset({"generic"})


def _driver(name: str) -> str:
    """The stored driver name for what the engineer typed (``ubiquiti`` is ``edgeos``)."""
    try:
        return driver_name(name)
    except ConfigError:
        *others, last = DRIVERS
        raise ValidationError(
            f"unknown driver {name!r}: use {', '.join(others)} or {last}") from None


def secret_context(name: str, field: str) -> str:
    return f"router:{name}:{field}"


def _stored_driver(name: str) -> str:
    # Rows written by older versions (and their events from other POPs) say "ubiquiti".
    try:
        return driver_name(name)
    except ConfigError:
        return name


def _from_row(row: Row) -> Router:
    return Router(
        id=row["id"], name=row["name"], driver=_stored_driver(row["driver"]), host=row["host"],
        port=row["port"], username=row["username"], nas_ip=row["nas_ip"],
        require_message_authenticator=bool(row["require_message_authenticator"]),
        coa_port=row["coa_port"], has_password=row["password_enc"] is not None,
        options=json.loads(row["options"] or "{}"),
        radsec_fingerprint=row["radsec_fingerprint"], pop=row.get("pop"),
    )


#: What :func:`update` can change (the name is not: secrets are sealed under it).
UPDATABLE = frozenset({
    "host", "port", "username", "password", "radius_secret", "nas_ip", "coa_port",
    "require_message_authenticator", "tls", "fingerprint", "radsec_fingerprint",
    "suspended_pool",
})
_SECRETS = ("password", "radius_secret")


def _check_secret(radius_secret: str) -> None:
    if not radius_secret or len(radius_secret) < 8:
        raise ValidationError("the RADIUS secret must be at least 8 characters")


def check_radsec_fingerprint(value: str) -> str | None:
    """A certificate's SHA-256 fingerprint as stored (64 lower-case hex digits), from the
    forms people paste (``AB:CD:...``, spaces, ``sha256:`` prefix); ``""`` is None (unpin)."""
    text = value.strip().lower().removeprefix("sha256:").replace(":", "").replace(" ", "")
    if not text:
        return None
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ValidationError(
            f"bad RadSec fingerprint {value!r}: expected the certificate's SHA-256 as 64 hex "
            "digits (`openssl x509 -noout -fingerprint -sha256 -in router.pem`)")
    return text


def check_pool(value: str) -> str:
    """A Framed-Pool name as the NAS knows it (``""`` clears it)."""
    text = value.strip()
    if len(text) > 64 or any(c.isspace() or not c.isprintable() for c in text):
        raise ValidationError(
            f"bad pool name {value!r}: expected the NAS's address pool name (up to 64 "
            "characters, no spaces), e.g. suspended")
    return text


def _check_nas_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValidationError(f"bad NAS IP {value!r}") from None


def add(
    store: Store, name: str, *, driver: str, host: str, radius_secret: str, actor: str,
    port: int | None = None, username: str | None = None, password: str | None = None,
    nas_ip: str | None = None, require_message_authenticator: bool = True,
    coa_port: int = 3799, options: dict[str, Any] | None = None,
    radsec_fingerprint: str | None = None,
) -> Router:
    validate.name(name, "router name")
    driver = _driver(driver)
    validate.host(host)
    validate.port(port)
    validate.port(coa_port)
    _check_secret(radius_secret)
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
    if driver in RADIUS_ONLY and username:
        raise ValidationError(
            f"a {driver} router is RADIUS-only (no management API): leave out "
            "--username/--password")
    options = dict(options or {})
    if "suspended_pool" in options:
        pool = check_pool(str(options.pop("suspended_pool") or ""))
        if pool:
            options["suspended_pool"] = pool
    pin = check_radsec_fingerprint(radsec_fingerprint) if radsec_fingerprint else None
    pop = store.meta("pop.name")  # the POP that added it drives it
    now = store.now()
    with store.transaction():
        if store.scalar("SELECT 1 FROM routers WHERE name = ?", (name,)):
            raise AlreadyExists(f"router {name!r} already exists")
        other = store.scalar("SELECT name FROM routers WHERE nas_ip = ?", (str(nas),))
        if other:
            raise AlreadyExists(f"NAS IP {nas} already belongs to router {other!r}")
        _check_pin_free(store, pin, name)
        store.execute(
            "INSERT INTO routers (name, driver, host, port, username, password_enc, "
            "radius_secret_enc, nas_ip, require_message_authenticator, coa_port, options, "
            "radsec_fingerprint, pop, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, driver, host, port, username,
             store.seal(password, secret_context(name, "password")) if password else None,
             store.seal(radius_secret, secret_context(name, "radius_secret")),
             str(nas), int(require_message_authenticator), coa_port,
             json.dumps(options or {}, sort_keys=True), pin, pop, now, now),
        )
        public = {"name": name, "driver": driver, "host": host, "port": port,
                  "username": username, "nas_ip": str(nas), "coa_port": coa_port,
                  "require_message_authenticator": require_message_authenticator,
                  "options": options or {}, "pop": pop}
        if pin:
            public["radsec_fingerprint"] = pin
        store.emit("router", name, "upsert",
                   {**public, "password": password, "radius_secret": radius_secret})
        store.audit(actor, "router.add", f"router:{name}", **public)
    return get(store, name)


def _check_pin_free(store: Store, pin: str | None, name: str) -> None:
    if pin is None:
        return
    other = store.scalar(
        "SELECT name FROM routers WHERE radsec_fingerprint = ? AND name != ?", (pin, name))
    if other:
        raise AlreadyExists(f"that RadSec certificate is already pinned on router {other!r}")


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


def walled_garden_options(pay_page_url: str | None = None, portal_url: str | None = None,
                          payment_hosts: str = "") -> dict[str, Any]:
    """Router options for ``--pay-page URL`` and ``--portal-url URL`` ("" clears).

    The router redirects a suspended customer's HTTP to the pay page's address and port (a
    NAT rule needs an address, so the URL names an IP); a hotspot lets devices that are not
    logged in reach the portal and ``payment_hosts`` (a Paystack checkout)."""
    import ipaddress
    from urllib.parse import urlsplit

    out: dict[str, Any] = {}
    if pay_page_url is not None:
        if pay_page_url == "":
            out.update(pay_page="", pay_page_port="")
        else:
            parts = urlsplit(pay_page_url)
            if parts.scheme not in ("http", "https"):
                raise ValidationError(f"bad --pay-page {pay_page_url!r}: not an http(s) URL")
            try:
                ip = str(ipaddress.ip_address(parts.hostname or ""))
                port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:
                raise ValidationError(f"bad --pay-page {pay_page_url!r}: give an http:// URL "
                                      "with an IP address (the router redirects to an "
                                      "address), e.g. http://10.5.50.2:8080/pay") from None
            out.update(pay_page=ip, pay_page_port=port)
    if portal_url is not None:
        parts = urlsplit(portal_url)
        if portal_url and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise ValidationError(f"bad --portal-url {portal_url!r}: not an http(s) URL")
        out.update(portal_url=portal_url, payment_hosts=payment_hosts if portal_url else "")
    return out


def set_options(store: Store, name: str, actor: str, **options: Any) -> Router:
    """Merge ``options`` (driver settings such as a pinned host key) into the router's."""
    with store.transaction():
        router = get(store, name)
        merged = {**router.options, **options}
        store.execute(
            "UPDATE routers SET options = ?, updated_at = ? WHERE name = ?",
            (json.dumps(merged, sort_keys=True), store.now(), name),
        )
        store.emit("router", name, "upsert", {"options": merged})
        store.audit(actor, "router.options", f"router:{name}", **options)
    return get(store, name)


def update(store: Store, name: str, actor: str, **changes: Any) -> Router:
    """Change some settings of router ``name``, validated as :func:`add` validates them.

    ``changes`` (leave out what stays): ``host``, ``port``, ``username`` with ``password``
    (together), ``radius_secret``, ``nas_ip``, ``coa_port``, ``require_message_authenticator``,
    ``tls`` (bool), ``fingerprint`` (``""`` removes the pin) and ``radsec_fingerprint``
    (the RadSec client certificate's SHA-256, ``""`` unpins) and ``suspended_pool`` (the
    NAS's Framed-Pool for suspended subscribers, ``""`` clears). ``nas_ip`` does not follow a
    new ``host``: give it when the RADIUS source address changes too. Secrets are sealed
    again under the same contexts. Emits one ``router`` upsert event with only the fields that
    changed and an audit line naming them (secret values never logged). Giving nothing raises
    ValidationError; values equal to the current ones change nothing and record nothing.
    """
    unknown = set(changes) - UPDATABLE - {"pay_page", "pay_page_port", "portal_url",
                                          "payment_hosts"}
    if unknown:
        raise ValidationError(
            f"cannot change {', '.join(sorted(unknown))} of a router; "
            f"changeable: {', '.join(sorted(UPDATABLE))}")
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        raise ValidationError("nothing to update: give at least one setting to change")
    if "host" in changes:
        validate.host(changes["host"])
    for key in ("port", "coa_port"):
        if key in changes:
            validate.port(changes[key])
    if "radius_secret" in changes:
        _check_secret(changes["radius_secret"])
    if "nas_ip" in changes:
        changes["nas_ip"] = _check_nas_ip(changes["nas_ip"])
    if "radsec_fingerprint" in changes:  # "" unpins (None from here on)
        changes["radsec_fingerprint"] = check_radsec_fingerprint(changes["radsec_fingerprint"])
    if ("username" in changes) != ("password" in changes) or (
            "username" in changes and not (changes["username"] and changes["password"])):
        raise ValidationError("give both --username and --password to change the login")
    with store.transaction():
        router = get(store, name)
        if "nas_ip" in changes and changes["nas_ip"] != router.nas_ip:
            other = store.scalar("SELECT name FROM routers WHERE nas_ip = ? AND name != ?",
                                 (changes["nas_ip"], name))
            if other:
                raise AlreadyExists(f"NAS IP {changes['nas_ip']} already belongs to router "
                                    f"{other!r}")
        _check_pin_free(store, changes.get("radsec_fingerprint"), name)
        current: dict[str, Any] = {k: v for k, v in router.to_dict().items() if k in UPDATABLE}
        current["password"] = credentials(store, name)[1]
        current["radius_secret"] = radius_secret(store, name)
        options = dict(router.options)
        if "tls" in changes:
            options.pop("tls", None)
            if changes.pop("tls"):
                options["tls"] = True
        if "fingerprint" in changes:
            options.pop("fingerprint", None)
            pin = changes.pop("fingerprint")
            if pin:
                options["fingerprint"] = pin
        for key in ("pay_page", "pay_page_port", "portal_url", "payment_hosts"):
            if key in changes:  # walled-garden options ("" clears)
                options.pop(key, None)
                value = changes.pop(key)
                if value not in ("", None):
                    options[key] = value
        if "suspended_pool" in changes:
            options.pop("suspended_pool", None)
            pool = check_pool(changes.pop("suspended_pool"))
            if pool:
                options["suspended_pool"] = pool
        if router.driver in RADIUS_ONLY and changes.get("username"):
            raise ValidationError(
                f"router {name!r} is RADIUS-only ({router.driver}): it has no API login")
        diff = {k: v for k, v in changes.items() if current.get(k) != v}
        if options != router.options:
            diff["options"] = options
        if not diff:
            return router
        columns: dict[str, Any] = {}
        for key, value in diff.items():
            if key in _SECRETS:
                columns[f"{key}_enc"] = store.seal(value, secret_context(name, key))
            elif key == "options":
                columns["options"] = json.dumps(value, sort_keys=True)
            elif key == "require_message_authenticator":
                columns[key] = int(value)
            else:
                columns[key] = value
        store.execute(
            f"UPDATE routers SET {', '.join(f'{c} = ?' for c in columns)}, updated_at = ? "
            "WHERE name = ?", (*columns.values(), store.now(), name),
        )
        store.emit("router", name, "upsert", diff)
        store.audit(actor, "router.update", f"router:{name}", changed=sorted(diff),
                    **{k: v for k, v in diff.items() if k not in _SECRETS})
    return get(store, name)


def active_sessions(store: Store, name: str) -> int:
    """How many RADIUS sessions accounting shows active on router ``name``."""
    router = get(store, name)
    return int(store.scalar(
        "SELECT count(*) FROM radius_sessions WHERE nas_ip = ? AND status = 'active'",
        (router.nas_ip,)))


def remove(store: Store, name: str, actor: str, *, force: bool = False) -> int:
    """Remove router ``name``; its RADIUS packets are dropped from then on.

    Refuses (ValidationError, nothing changed) while accounting shows active sessions on it,
    unless ``force``: then those sessions are marked closed with terminate cause
    ``NAS-Removed`` (their router will never send the Accounting-Stop). Returns how many
    sessions were closed that way.
    """
    with store.transaction():
        router = get(store, name)
        active = active_sessions(store, name)
        if active and not force:
            raise ValidationError(
                f"router {name!r} has {active} active RADIUS session(s); wait for them to end "
                "or use --force to remove it anyway (those sessions are then marked closed)"
            )
        if active:
            store.execute(
                "UPDATE radius_sessions SET status = 'closed', stopped_at = ?, "
                "terminate_cause = 'NAS-Removed' WHERE nas_ip = ? AND status = 'active'",
                (store.now(), router.nas_ip),
            )
        store.execute("DELETE FROM routers WHERE name = ?", (name,))
        store.emit("router", name, "delete", {})
        store.audit(actor, "router.remove", f"router:{name}", closed_sessions=active,
                    force=force)
    return active
