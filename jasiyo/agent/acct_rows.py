"""The rows an accounting record writes, and a batch of plain records written in a few
statements.

:func:`jasiyo.agent.radius_backend._store_accounting` stores one record at a time: two or
three statements, each a trip through pysqlite that lets go of the GIL, and the event loop
and the writer thread then trade it back and forth (a futex wake and a context switch a
time). Most records are plain: Interim-Updates, Stops and the Starts of subscribers who
already have a home router and no clock waiting to start. :func:`store_batch` writes each
run of them with multi-row statements, with the same values in the same order (a
multi-row ``INSERT`` applies its rows one after the other, ``ON CONFLICT`` and triggers
included); :func:`store_batch` hands every other record, in its place in the order, to
the record-at-a-time path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cache

from jasiyo.agent.store import Store
from jasiyo.radius.backend import AcctRecord
from jasiyo.radius.memory import record_key

ACCT_INSERT = (
    "INSERT OR IGNORE INTO accounting (received_at, nas_ip, acct_session_id, status_type, "
    "username, session_time, input_octets, output_octets, input_packets, output_packets, "
    "terminate_cause, delay_time, dedup) VALUES "
)
ACCT_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
SESSION_INSERT = (
    "INSERT INTO radius_sessions (nas_ip, acct_session_id, username, framed_ip, "
    "calling_station_id, nas_port_id, started_at, last_update_at, stopped_at, session_time, "
    "input_octets, output_octets, input_packets, output_packets, terminate_cause, status) VALUES "
)
SESSION_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
SESSION_UPSERT = (
    " ON CONFLICT(nas_ip, acct_session_id) DO UPDATE SET "
    "framed_ip = COALESCE(excluded.framed_ip, framed_ip), "
    "last_update_at = MAX(last_update_at, excluded.last_update_at), "
    "session_time = MAX(session_time, excluded.session_time), "
    "input_octets = MAX(input_octets, excluded.input_octets), "
    "output_octets = MAX(output_octets, excluded.output_octets), "
    "input_packets = MAX(input_packets, excluded.input_packets), "
    "output_packets = MAX(output_packets, excluded.output_packets), "
    # A stale session heard from again is online after all: reopen it (trigger
    # enforce_stale_back, m011, disconnects it if its subscriber may not be online).
    "stopped_at = CASE WHEN excluded.status = 'closed' "
    "THEN COALESCE(excluded.stopped_at, stopped_at) "
    "WHEN status = 'closed' THEN stopped_at ELSE NULL END, "
    "terminate_cause = COALESCE(excluded.terminate_cause, terminate_cause), "
    # A Stop closes for good; a late Start or Interim never reopens it.
    "status = CASE WHEN excluded.status = 'closed' OR status = 'closed' THEN 'closed' "
    "ELSE 'active' END"
)

#: rows per multi-row statement: few distinct statements, so pysqlite's cache keeps them
_CHUNKS = (64, 32, 16, 8, 4, 2, 1)


def dedup_key(r: AcctRecord) -> str:
    """Two records with this key are the same report (a retransmission).

    The rule is the RADIUS package's (:func:`jasiyo.radius.memory.record_key`): sessions by
    their counters, Accounting-On/Off by when the NAS sent them, so a second reboot counts.
    """
    return "|".join(map(str, record_key(r)))


def event_time(r: AcctRecord) -> float:
    """When the NAS says it happened: arrival minus Acct-Delay-Time."""
    return r.received_at - max(0, r.delay_time)


def start_time(r: AcctRecord) -> float:
    """When the session began, as far as this record tells."""
    at = event_time(r)
    return at - r.session_time if r.session_time else at


def acct_params(r: AcctRecord) -> tuple[object, ...]:
    """The ``accounting`` row of ``r`` (:data:`ACCT_ROW`)."""
    return (
        r.received_at,
        r.nas_address,
        r.acct_session_id,
        r.status_type,
        r.username,
        r.session_time,
        r.input_octets,
        r.output_octets,
        r.input_packets,
        r.output_packets,
        r.terminate_cause or None,
        r.delay_time,
        dedup_key(r),
    )


def session_params(r: AcctRecord, username: str) -> tuple[object, ...]:
    """The ``radius_sessions`` row of ``r`` kept under ``username`` (:data:`SESSION_ROW`)."""
    at = event_time(r)
    stop = r.status_type == "Stop"
    return (
        r.nas_address,
        r.acct_session_id,
        username,
        r.framed_ip or None,
        r.calling_station_id or None,
        r.nas_port_id or None,
        start_time(r),
        at,
        at if stop else None,
        r.session_time,
        r.input_octets,
        r.output_octets,
        r.input_packets,
        r.output_packets,
        r.terminate_cause or None,
        "closed" if stop else "active",
    )


@cache
def _sql(head: str, row: str, rows: int, tail: str = "") -> str:
    return head + ", ".join([row] * rows) + tail


def _chunks(n: int) -> list[tuple[int, int]]:
    """(start, size) covering ``range(n)`` with sizes from :data:`_CHUNKS`."""
    out, pos = [], 0
    for size in _CHUNKS:
        while n - pos >= size:
            out.append((pos, size))
            pos += size
    return out


def store_batch(
    store: Store,
    records: Sequence[AcctRecord],
    by_address: frozenset[str],
    one: Callable[[AcctRecord], None],
) -> int:
    """Store ``records`` in order, in the caller's transaction: runs of plain records with
    multi-row statements, each other record with ``one`` (the record-at-a-time path), so
    that the store ends as if each had been stored in turn. Returns how many were plain."""
    busy = _busy_starts(store, records)
    run: list[AcctRecord] = []
    plain = 0
    for r in records:
        if _plain(r, by_address, busy):
            run.append(r)
            continue
        if run:
            _store_run(store, run)
            plain += len(run)
            run = []
        one(r)
    if run:
        _store_run(store, run)
        plain += len(run)
    return plain


def _busy_starts(store: Store, records: Sequence[AcctRecord]) -> frozenset[str]:
    """Users of the Starts in ``records`` with a home to learn or a clock to start."""
    starts = sorted({r.username for r in records if r.status_type == "Start" and r.username})
    if not starts:
        return frozenset()
    rows = store.all(
        "SELECT username FROM subscribers WHERE username IN (SELECT value FROM json_each(?)) "
        "AND (home_router IS NULL OR clock_pending = 1)",
        (json.dumps(starts),),
    )
    return frozenset(r["username"] for r in rows)


def _plain(r: AcctRecord, by_address: frozenset[str], busy: frozenset[str]) -> bool:
    """Whether storing ``r`` is its two rows and nothing else."""
    from jasiyo.agent.vouchers import canonical

    status, user = r.status_type, r.username
    if status not in ("Interim-Update", "Stop", "Start"):
        return False  # Accounting-On/Off close the NAS's sessions
    code = canonical(user) if user else None
    if code is not None and code != user:
        return False  # maybe a voucher typed in another form: account_name asks the store
    if status == "Start" and (not user or code is not None or user in busy):
        return False  # a voucher's clock, a home to learn, a subscriber's clock
    # an address-driven router follows its sessions' addresses: a reconcile to queue
    return not (r.framed_ip and status != "Interim-Update" and r.nas_address in by_address)


def _store_run(store: Store, records: Sequence[AcctRecord]) -> None:
    inserted = _insert_accounting(store, records)
    sessions = [session_params(r, r.username) for r, new in zip(records, inserted, strict=True) if new]
    for pos, size in _chunks(len(sessions)):
        store.execute(
            _sql(SESSION_INSERT, SESSION_ROW, size, SESSION_UPSERT),
            tuple(v for row in sessions[pos : pos + size] for v in row),
        )


def _insert_accounting(store: Store, records: Sequence[AcctRecord]) -> list[bool]:
    """Insert the ``accounting`` rows; for each record, whether it is new and has a session
    to update (a retransmission, or a repeat within the batch, is stored once)."""
    rows = [acct_params(r) for r in records]
    new: list[bool] = []
    for pos, size in _chunks(len(rows)):
        chunk = rows[pos : pos + size]
        cur = store.execute(_sql(ACCT_INSERT, ACCT_ROW, size), tuple(v for row in chunk for v in row))
        if cur.rowcount == size:
            new += [True] * size
            continue
        stored: set[str] = set()
        if cur.rowcount > 0:  # rowids are consecutive: the last one and those before it
            last = cur.lastrowid or 0
            stored = {
                r["dedup"]
                for r in store.all(
                    "SELECT dedup FROM accounting WHERE id > ? AND id <= ?", (last - cur.rowcount, last)
                )
            }
        for row in chunk:
            key = row[-1]
            new.append(key in stored)
            stored.discard(key)  # a second copy in this batch was ignored
    return [n and bool(r.acct_session_id) for n, r in zip(new, records, strict=True)]
