"""Snapshots of the tenant's state, sealed, so the cloud can drop the log they supersede.

A snapshot is the set of events that still matter: for each row (entity and key) the events
whose fields no later event overwrote, and that no later delete cancelled (exactly what
:func:`jasiyo.agent.retention` keeps), and the one event of each immutable record (a
payment, a ledger entry). Folding it gives the same rows as folding the whole log, and its
events keep their ids, clocks and origins, so a POP that applies it and then the events
after it converges like any other. Only events already in the cloud go in.

The agent uploads it sealed under the tenant key, in parts, covering the log up to its
cursor, and commits it; the cloud then drops the events at or below that sequence number
(but the key-sharing events and the quarantined ones this POP could not open, which it
asks the cloud to keep) and older snapshots. ``jasiyo agent run`` writes one every
``[privacy] snapshot_days``, and within the hour after an erasure (an older snapshot may
hold the person); ``jasiyo sync snapshot`` writes one now.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from jasiyo.agent.cloudlink import keyring_path, open_client
from jasiyo.agent.fold import ENTITIES
from jasiyo.agent.retention import supersession
from jasiyo.agent.store import Row, Store
from jasiyo.agent.synclog import AgentLog
from jasiyo.config import Config
from jasiyo.log import event, get_logger
from jasiyo.sync.client import KEY_EVENTS
from jasiyo.sync.ids import uuid7
from jasiyo.sync.snapshotfmt import encode

log = get_logger(__name__)
LAST_KEY = "snapshot.last_at"


def _kept(store: Store, entity: str, rows: list[Row]) -> list[dict[str, Any]]:
    """Of one row's events (newest first), those a fold needs, oldest first."""
    spec = ENTITIES.get(entity)
    out = [
        {
            "id": r["id"],
            "hlc": r["hlc"],
            "origin": r["origin"],
            "entity": entity,
            "key": r["key"],
            "op": r["op"],
            "data": data,
        }
        for r, data, superseded in supersession(store, rows)
        if spec is None or spec.kind != "state" or not superseded
    ]
    out.reverse()
    return out


def compacted(store: Store) -> Iterator[dict[str, Any]]:
    """The events that still matter, row by row (one pass over the log)."""
    group: list[Row] = []
    current: tuple[str, str] | None = None
    cur = store.execute(
        "SELECT id, hlc, origin, entity, key, op, data FROM events "
        "WHERE pushed_at IS NOT NULL ORDER BY entity, key, hlc DESC, id DESC"
    )
    cols = [c[0] for c in cur.description]
    for raw in cur:
        r = dict(zip(cols, raw, strict=True))
        if (r["entity"], r["key"]) != current:
            if group and current:
                yield from _kept(store, current[0], group)
            group, current = [], (r["entity"], r["key"])
        group.append(r)
    if group and current:
        yield from _kept(store, current[0], group)


def _applied_order(ev: dict[str, Any]) -> tuple:
    spec = ENTITIES.get(ev["entity"])
    return (spec.rank if spec else 99, ev["entity"], ev["key"], ev["hlc"], ev["id"])


def write(cfg: Config) -> dict[str, Any]:
    """Sync, then write and commit a snapshot up to this POP's cursor."""
    store = Store.open(cfg)
    try:
        with open_client(cfg, store) as client:
            client.push()
            client.pull()
            seq = int(store.meta("sync.cursor") or 0)
            started = time.monotonic()
            # Rows others refer to first (plans, then subscribers, then their money), so a
            # POP applying the snapshot in batches never waits on a row still to come.
            events = sorted(compacted(store), key=_applied_order)
            chunks = encode(events)
            keep = sorted(
                set(json.loads(store.meta(KEY_EVENTS) or "[]"))
                | {q.id for q in AgentLog(store).quarantined()}
            )
            snap_id = uuid7()
            dropped = client.upload_snapshot(snap_id, seq, chunks, keep)
        with store.transaction():
            store.set_meta(LAST_KEY, str(store.now()))
        result: dict[str, Any] = {
            "snapshot": snap_id,
            "seq": seq,
            "events": len(events),
            "parts": len(chunks),
            "bytes": sum(len(c) for c in chunks),
            "dropped": dropped,
            "seconds": round(time.monotonic() - started, 2),
        }
        event(log, "sync.snapshot_written", **result)
        return result
    finally:
        store.close()


def periodic(store: Store, cfg: Config) -> dict[str, Any] | None:
    """The agent's hourly check: a snapshot when the last is ``snapshot_days`` old, or an
    erasure since (which resets the time of the last)."""
    if not store.meta("sync.tenant_id") or not keyring_path(cfg).exists():
        return None
    last = float(store.meta(LAST_KEY) or 0)
    if store.now() - last < cfg.privacy.snapshot_days * 86400:
        return None
    return write(cfg)
