"""Snapshots through the sync client: upload one in sealed parts and commit it, or read the
newest and apply its events (a restore, or an agent below the compacted floor)."""

from __future__ import annotations

from jasiyo.log import event, get_logger
from jasiyo.sync.client import RemoteEvent, SyncClient
from jasiyo.sync.snapshotfmt import decode

log = get_logger(__name__)
#: Events applied per transaction while loading a snapshot.
APPLY_BATCH = 5000


def _context(snap_id: str, part: int) -> str:
    """What a part's envelope is bound to (in place of an event id): it cannot be moved."""
    return f"snapshot:{snap_id}:{part}"


def upload(client: SyncClient, snap_id: str, seq: int, chunks: list[bytes],
           keep: list[str]) -> int:
    """Send a snapshot (covering the log up to ``seq``) in sealed parts and commit it:
    the cloud then drops the events it covers but ``keep``. Events dropped."""
    base = f"/v1/tenants/{client.tenant_id}/snapshots/{snap_id}"
    for i, chunk in enumerate(chunks):
        env = client.keyring.seal(chunk, _context(snap_id, i), client.log.agent_id)
        client._request("POST", f"{base}/parts/{i}",
                        body={"seq": seq, "parts": len(chunks), "envelope": env})
    doc = client._request("POST", f"{base}/commit", body={"keep": keep})
    return int(doc["dropped"])


def load(client: SyncClient) -> int:
    """Apply the newest snapshot (its events, as if pulled); the cursor after it."""
    meta = client._request("GET", f"/v1/tenants/{client.tenant_id}/snapshot")
    snap_id, origin, seq = str(meta["id"]), str(meta["origin"]), int(meta["seq"])
    chunks = []
    for i in range(int(meta["parts"])):
        part = client._request(
            "GET", f"/v1/tenants/{client.tenant_id}/snapshots/{snap_id}/parts/{i}")
        chunks.append(client.keyring.open(part["envelope"], _context(snap_id, i), origin))
    events = [RemoteEvent(d["id"], d["hlc"], d["origin"], d["entity"], d["key"], d["op"],
                          d["data"]) for d in decode(chunks)]
    for i in range(0, len(events), APPLY_BATCH):
        last = i + APPLY_BATCH >= len(events)
        client.log.apply(events[i:i + APPLY_BATCH], {"sync.cursor": str(seq)} if last else None)
    if not events:
        client.log.put({"sync.cursor": str(seq)})
    event(log, "sync.snapshot_loaded", snapshot=snap_id, seq=seq, events=len(events))
    return seq
