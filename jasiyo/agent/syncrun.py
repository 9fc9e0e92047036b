"""Running sync on an agent: once by hand, for ever in `agent run`, its status, and the
quarantine of pulled events that would not open."""

from __future__ import annotations

import threading

from jasiyo.agent.cloudlink import keyring_path, open_client
from jasiyo.agent.store import Store
from jasiyo.agent.synclog import AgentLog
from jasiyo.config import Config
from jasiyo.errors import NotFound
from jasiyo.log import event, get_logger
from jasiyo.sync.client import QUARANTINE, Quarantined, SyncResult, SyncStatus, status_of

log = get_logger(__name__)


def sync_once(cfg: Config, wait: float = 0.0) -> SyncResult:
    store = Store.open(cfg)
    try:
        with open_client(cfg, store) as client:
            return client.sync_now(wait)
    finally:
        store.close()


def sync_status(cfg: Config) -> SyncStatus:
    """Status from the store alone (works with the cloud down)."""
    store = Store.open(cfg)
    try:
        url = cfg.sync.cloud_url or store.meta("sync.cloud_url") or ""
        status = status_of(AgentLog(store), url, store.meta("sync.tenant_id") or "")
        return status
    finally:
        store.close()


def quarantine_list(cfg: Config) -> list[Quarantined]:
    """Pulled events set aside because they would not open (oldest first)."""
    store = Store.open(cfg)
    try:
        return AgentLog(store).quarantined()
    finally:
        store.close()


def quarantine_skip(cfg: Config, event_id: str, actor: str) -> Quarantined:
    """Give up on one quarantined event for good (audited; its envelope goes in the audit)."""
    store = Store.open(cfg)
    try:
        log_ = AgentLog(store)
        found = [q for q in log_.quarantined() if q.id == event_id]
        if not found:
            raise NotFound(f"no quarantined event {event_id!r}; see `jasiyo sync quarantine list`")
        bad = found[0]
        with store.transaction():
            store.execute("DELETE FROM meta WHERE key = ?", (QUARANTINE + bad.id,))
            store.audit(
                actor,
                "sync.quarantine_skip",
                f"event:{bad.id}",
                origin=bad.origin,
                seq=bad.seq,
                error=bad.error,
                envelope=bad.envelope,
            )
        event(log, "sync.quarantine_skipped", id=bad.id, origin=bad.origin, actor=actor)
        return bad
    finally:
        store.close()


def quarantine_retry(cfg: Config) -> dict[str, int]:
    """Try the quarantined events again with the tenant keys held now (no network)."""
    store = Store.open(cfg)
    try:
        with open_client(cfg, store) as client:
            opened, left = client.retry_quarantined()
        return {"applied": opened, "quarantined": left}
    finally:
        store.close()


def sync_forever(cfg: Config, stop: threading.Event) -> None:
    """The agent runtime's sync (call it in its own thread); returns when ``stop`` is set.

    Two loops, each with its own store connection: a pusher that sends the outbox as soon as
    it is not empty (checked every half second, locally) and a puller that long-polls the
    cloud (``[sync] interval`` seconds per poll). Does nothing if the agent is not enrolled
    or has no tenant keys: it then runs stand-alone. Failures are recorded in meta (see
    ``jasiyo sync status``) and retried with backoff; RADIUS and billing never wait on it.
    """
    probe = Store.open(cfg)
    try:
        ready = bool(probe.meta("sync.tenant_id")) and keyring_path(cfg).exists()
    finally:
        probe.close()
    if not ready:
        event(log, "sync.disabled", reason="not enrolled or no tenant keys")
        return

    def pusher() -> None:
        store = Store.open(cfg)
        try:
            with open_client(cfg, store) as client:
                client.run_pusher(stop)
        finally:
            store.close()

    thread = threading.Thread(target=pusher, name="jasiyo-sync-push", daemon=True)
    thread.start()
    store = Store.open(cfg)
    try:
        with open_client(cfg, store) as client:
            client.run_puller(stop, wait=float(max(cfg.sync.interval, 1)))
    finally:
        store.close()
        thread.join(timeout=30)
