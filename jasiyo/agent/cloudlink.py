"""Wiring an agent to the cloud: its signing key, enrolment, the sync client, webhook URLs.

The tenant keys themselves (create, export, import, rotate) are :mod:`.tenantkeys`; the
sync loops and their status are :mod:`.syncrun`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jasiyo.agent.store import Store
from jasiyo.agent.synclog import AgentLog
from jasiyo.config import Config, check_cloud_url
from jasiyo.errors import ConfigError
from jasiyo.sync.client import SyncClient, enroll
from jasiyo.sync.keyring import KEYRING_FILE, Keyring
from jasiyo.sync.signing import SIGN_KEY_FILE, create_signing_key, load_signing_key


def keyring_path(cfg: Config) -> Path:
    return cfg.data_dir / KEYRING_FILE


def signing_key_path(cfg: Config) -> Path:
    return cfg.data_dir / SIGN_KEY_FILE


def enroll_agent(cfg: Config, url: str, token: str) -> dict[str, str]:
    """Create this agent's Ed25519 key (0600) if needed and register it with the cloud."""
    url = check_cloud_url(url)
    store = Store.open(cfg)
    try:
        create_signing_key(signing_key_path(cfg))
        key = load_signing_key(signing_key_path(cfg))
        name = store.meta("agent_name") or store.agent_id
        tenant = enroll(url, token, store.agent_id, name, key)
        with store.transaction():
            store.set_meta("sync.cloud_url", url)
            store.set_meta("sync.tenant_id", tenant)
        return {"tenant_id": tenant, "agent_id": store.agent_id, "cloud_url": url}
    finally:
        store.close()


def open_client(cfg: Config, store: Store, keyring: Keyring | None = None, **kw: Any) -> SyncClient:
    """A sync client for this agent: enrolled identity, tenant keys, the store as its log."""
    tenant = store.meta("sync.tenant_id")
    url = cfg.sync.cloud_url or store.meta("sync.cloud_url")
    if not tenant or not url:
        raise ConfigError("this agent is not enrolled; run `jasiyo agent enroll URL TOKEN`")
    url = check_cloud_url(url)
    path = keyring_path(cfg)
    ring = keyring or Keyring.load(path)
    if ring.tenant_id != tenant:
        raise ConfigError(
            f"the tenant keys in {path} belong to tenant {ring.tenant_id}, but "
            f"this agent is enrolled in tenant {tenant}"
        )
    return SyncClient(
        AgentLog(store, cfg),
        ring,
        load_signing_key(signing_key_path(cfg)),
        base_url=url,
        save_keyring=lambda r: r.save(path),
        **kw,
    )


def register_webhook(cfg: Config, provider: str) -> dict[str, str]:
    """A webhook URL for a payment provider; what arrives there is sealed to the tenant."""
    store = Store.open(cfg)
    try:
        with open_client(cfg, store) as client:
            path = client.register_webhook(provider)
            return {"provider": provider, "url": client.base_url.rstrip("/") + path}
    finally:
        store.close()
