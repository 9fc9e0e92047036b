"""The tenant data keys on an agent: create (first POP), export and import a recovery file,
rotate, and rebuild an empty agent's store from the cloud with them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jasiyo.agent.cloudlink import keyring_path, open_client
from jasiyo.agent.fold import pending
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import AlreadyExists, ConfigError, StoreError
from jasiyo.sync.keyring import Keyring


def init_tenant(cfg: Config) -> dict[str, str]:
    """Create the tenant data key (first POP only) and register its id with the cloud."""
    path = keyring_path(cfg)
    if path.exists():
        raise AlreadyExists(f"tenant keys already exist in {path}; other POPs import them with "
                            "`jasiyo tenant import-recovery FILE`")
    store = Store.open(cfg)
    try:
        tenant = store.meta("sync.tenant_id")
        if not tenant:
            raise ConfigError("enroll this agent first: `jasiyo agent enroll URL TOKEN`")
        ring = Keyring.create(tenant)
        with open_client(cfg, store, keyring=ring) as client:
            client.register_key(ring.current)
        ring.save(path)
        return {"tenant_id": tenant, "kid": ring.current, "keys": str(path)}
    finally:
        store.close()


def import_recovery(cfg: Config, recovery: Path) -> dict[str, str]:
    """Install (or merge) tenant keys from a recovery file into this agent's data dir."""
    try:
        doc = json.loads(recovery.read_text())
    except FileNotFoundError:
        raise ConfigError(f"recovery file {recovery} not found") from None
    except (OSError, ValueError):
        raise ConfigError(f"{recovery} is not a Jasiyo tenant key or recovery file") from None
    ring = Keyring.from_json(doc, str(recovery))
    store = Store.open(cfg)
    try:
        tenant = store.meta("sync.tenant_id")
    finally:
        store.close()
    if tenant and tenant != ring.tenant_id:
        raise ConfigError(f"{recovery} holds keys of tenant {ring.tenant_id}, but this agent "
                          f"is enrolled in tenant {tenant}")
    path = keyring_path(cfg)
    if path.exists():
        mine = Keyring.load(path)
        for kid, key in ring.keys.items():
            mine.add(kid, key)
        mine.box_key = mine.box_key or ring.box_key
        ring = mine
    ring.save(path)
    return {"tenant_id": ring.tenant_id, "keys": str(len(ring.keys)), "current": ring.current}


def export_recovery(cfg: Config, dest: Path) -> dict[str, str]:
    """Write the tenant keys to ``dest`` (0600): what a new or rebuilt POP needs."""
    if dest.exists():
        raise AlreadyExists(f"{dest} exists; choose a new file name")
    ring = Keyring.load(keyring_path(cfg))
    ring.save(dest)
    return {"file": str(dest), "tenant_id": ring.tenant_id, "keys": str(len(ring.keys))}


def rotate_key(cfg: Config) -> dict[str, str]:
    """New current tenant key; old ones kept. Shared with the other POPs through the log."""
    store = Store.open(cfg)
    try:
        with open_client(cfg, store) as client:
            ring = client.keyring
            old = ring.current
            kid = ring.rotate()
            client.register_key(kid)
            client.publish_key(kid, sealed_with=old)
            ring.save(keyring_path(cfg))
        return {"kid": kid, "previous": old}
    finally:
        store.close()


_BUSINESS_TABLES = ("plans", "subscribers", "routers", "payments", "ledger", "invoices")


def restore_from_cloud(cfg: Config, recovery: Path) -> dict[str, Any]:
    """Rebuild an empty, enrolled agent's store from the tenant's log in the cloud."""
    store = Store.open(cfg)
    try:
        busy = [t for t in _BUSINESS_TABLES if store.scalar(f"SELECT count(*) FROM {t}")]
        # The POP's own announcement (``pops.ensure``, at enrolment) is no data.
        if busy or store.scalar("SELECT count(*) FROM events WHERE entity != 'pop'"):
            raise StoreError(
                f"refusing to restore into a store that has data ({', '.join(busy) or 'events'})"
                "; restore needs a fresh `jasiyo init`"
            )
    finally:
        store.close()
    import_recovery(cfg, recovery)
    store = Store.open(cfg)
    try:
        with store.transaction():
            store.set_meta("sync.cursor", "0")
        with open_client(cfg, store) as client:
            received, applied = client.pull()
        counts = {t: store.scalar(f"SELECT count(*) FROM {t}") for t in _BUSINESS_TABLES}
        return {"events": received, "applied": applied, **counts,
                "pending": len(pending(store))}
    finally:
        store.close()
