"""Applying events from other agents to this agent's store, so every agent converges.

An entity's row is a pure function of the set of its events: the events for one
``(entity, key)`` are folded in clock order (``hlc``, then event id), ``upsert`` setting the
fields it carries and ``delete`` clearing everything written before it. So whatever order
events arrive in, and however often, every agent ends with the same rows: last writer wins
per field, a delete wins over older writes, a write older than a delete is ignored. A write
of a badly typed value is ignored for its field as if never made (the last *valid* writer
wins), so a malformed event cannot strip a required column and so delete the row.

``append`` entities (payments, ledger entries) are immutable records inserted once, keyed
by their natural reference (``INSERT OR IGNORE`` on the unique column): a payment is never
applied twice, even if two POPs recorded the same provider receipt. The record is the
earliest valid event of its key; one with a badly typed field is ignored whole.

A remote event is also stored in the local ``events`` table (sealed with the local key,
``pushed_at`` set so it is not pushed back), which is what makes replays no-ops and gives
the fold its input. An entity that cannot be materialised yet (a subscriber whose plan has
not arrived) is remembered in ``meta['sync.pending']`` and retried after every batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from jasiyo.agent.store import Store
from jasiyo.errors import AlreadyExists, ValidationError
from jasiyo.log import event, get_logger
from jasiyo.sync.client import RemoteEvent
from jasiyo.sync.hlc import Timestamp

log = get_logger(__name__)
PENDING_KEY = "sync.pending"
OPS = ("upsert", "delete", "append", "erase")


@dataclass(frozen=True)
class Ref:
    """A field holding another entity's natural key, stored as that row's id."""

    column: str
    table: str
    key_column: str


@dataclass(frozen=True)
class EntitySpec:
    table: str
    key_column: str
    kind: str  # "state" (upsert/delete, LWW) or "append" (immutable, insert once)
    #: field -> (column, context(key)): cleartext in the event, sealed with the local key here.
    secrets: dict[str, tuple[str, Callable[[str], str]]] = field(default_factory=dict)
    refs: dict[str, Ref] = field(default_factory=dict)
    #: field -> column stamped with the wall time of the write that set the field.
    stamps: dict[str, str] = field(default_factory=dict)
    #: Materialised after entities of lower rank (a subscriber needs its plan first).
    rank: int = 0


_SUBSCRIBER_REF = Ref("subscriber_id", "subscribers", "username")

#: POPs and per-cycle usage summaries (:mod:`.pops`, :mod:`.usage_sync`): state entities
#: folded like any other, keyed by POP name and by user|cycle|agent.
#: The tenant dashboard's (:mod:`.requests`): a change it asks of the agents and its
#: outcome, kept once per key (carried out by one POP, after the batch is folded); and an
#: unmatched payment (``payment_suspense``), state so that every POP can allocate it.
EXTRA_ENTITIES: dict[str, EntitySpec] = {
    "pop": EntitySpec("pops", "name", "state"),
    "usage": EntitySpec("usage_summaries", "key", "state"),
    "request": EntitySpec("dashboard_requests", "key", "append"),
    "request_result": EntitySpec("dashboard_results", "key", "append"),
    "suspense": EntitySpec("payment_suspense", "reference", "state"),
}

ENTITIES: dict[str, EntitySpec] = {
    "plan": EntitySpec("plans", "name", "state"),
    "router": EntitySpec(
        "routers",
        "name",
        "state",
        secrets={
            "password": ("password_enc", lambda k: f"router:{k}:password"),
            "radius_secret": ("radius_secret_enc", lambda k: f"router:{k}:radius_secret"),
        },
    ),
    "subscriber": EntitySpec(
        "subscribers",
        "username",
        "state",
        secrets={"password": ("password_enc", lambda k: f"subscriber:{k}:password")},
        refs={"plan": Ref("plan_id", "plans", "name")},
        stamps={"status": "status_changed_at"},
        rank=1,
    ),
    # Payments (key = provider reference) and ledger entries (key = "kind:reference", the
    # row keeps kind and reference from the payload) are inserted once; the unique
    # indexes (payments.reference, ledger(kind, reference)) make a repeat a no-op.
    "payment": EntitySpec("payments", "reference", "append", refs={"username": _SUBSCRIBER_REF}, rank=2),
    "ledger": EntitySpec("ledger", "", "append", refs={"username": _SUBSCRIBER_REF}, rank=3),
    # An invoice is appended when issued, then upserted (status paid/void): folded like state.
    "invoice": EntitySpec("invoices", "number", "state", refs={"username": _SUBSCRIBER_REF}, rank=2),
    "credit_note": EntitySpec("credit_notes", "number", "append", refs={"username": _SUBSCRIBER_REF}, rank=3),
    # SMS consent history: one immutable record per change, keyed by its ref;
    # the current value travels on the subscriber (``sms_consent``).
    "sms_consent": EntitySpec("sms_consent", "ref", "append", refs={"username": _SUBSCRIBER_REF}, rank=2),
    # Vouchers (issue 12): the code's plan and status as state; its first use an immutable
    # record that every POP keeps once, the earliest (see agent/vouchers.py).
    "voucher": EntitySpec(
        "vouchers", "code", "state", refs={"plan": Ref("plan_id", "plans", "name")}, rank=1
    ),
    "voucher_use": EntitySpec("voucher_uses", "code", "append", rank=2),
    **EXTRA_ENTITIES,
}
#: Columns apply maintains itself; event fields of these names are ignored.
_LOCAL_COLUMNS = ("id", "created_at", "updated_at")


class _Unresolved(Exception):
    """A referenced row is missing for now; retry the entity after later events."""


def _columns(store: Store, table: str) -> dict[str, tuple[bool, bool]]:
    """column -> (required on insert, is primary key)."""
    cache: dict[str, dict[str, tuple[bool, bool]]] = store.__dict__.setdefault("_fold_cols", {})
    if table not in cache:
        info = store.execute(f"PRAGMA table_info({table})").fetchall()
        cache[table] = {r[1]: (bool(r[3]) and r[4] is None and not r[5], bool(r[5])) for r in info}
    return cache[table]


def _value(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True)
    return v


_INT64 = 2**63


def _fits(value: Any, decl: str) -> bool:
    """Does an event value suit a column of declared type ``decl`` (None always does)?"""
    if value is None:
        return True
    if decl == "INTEGER":
        return isinstance(value, int) and -_INT64 <= value < _INT64
    if decl == "REAL":
        return isinstance(value, int | float) and not isinstance(value, bool) and (abs(value) < 1e18)
    if decl == "TEXT":
        return isinstance(value, str | dict | list)
    return False  # BLOB columns (sealed secrets) are never set from events


def _decls(store: Store, table: str) -> dict[str, str]:
    cache: dict[str, dict[str, str]] = store.__dict__.setdefault("_fold_decls", {})
    if table not in cache:
        info = store.execute(f"PRAGMA table_info({table})").fetchall()
        cache[table] = {r[1]: (r[2] or "").upper() for r in info}
    return cache[table]


def _derived(spec: EntitySpec) -> set[str]:
    """Columns this agent sets itself: sealed secrets, row-id links, stamps, local columns."""
    return (
        {c for c, _ in spec.secrets.values()}
        | {r.column for r in spec.refs.values()}
        | set(spec.stamps.values())
        | set(_LOCAL_COLUMNS)
    )


def _invalid(store: Store, spec: EntitySpec, data: dict[str, Any]) -> dict[str, str]:
    """The fields of an event's data that cannot be kept, and why (usually none).

    Such a write is ignored as if it had never been made (last *valid* writer wins), so a
    malformed event cannot take a required column from a row and so delete it everywhere.
    Secrets and columns derived here never reach a column from an event (see _row_values).
    """
    cache: dict[str, dict[str, str]] = store.__dict__.setdefault("_fold_typed", {})
    typed = cache.get(spec.table)
    if typed is None:  # asked for every event applied: worked out once per table
        skip = _derived(spec) | set(spec.secrets) | set(spec.refs)
        typed = cache[spec.table] = {c: d for c, d in _decls(store, spec.table).items() if c not in skip}
    out: dict[str, str] = {}
    for name, value in data.items():
        if name in spec.refs:
            if not isinstance(value, str):
                out[name] = "reference is not a name"
        elif name in typed and not _fits(value, typed[name]):
            out[name] = f"not a valid {typed[name]}"
    return out


def _ignored(spec: EntitySpec, key: str, name: str, reason: str) -> None:
    event(log, "sync.field_ignored", level=30, entity=spec.table, row=key, field=name, reason=reason)


def _valid_fields(store: Store, spec: EntitySpec, key: str, data: dict[str, Any]) -> dict[str, Any]:
    """The fields of an event's data that may be kept (the others are logged and dropped)."""
    bad = _invalid(store, spec, data)
    for name, why in bad.items():
        _ignored(spec, key, name, why)
    return {k: v for k, v in data.items() if k not in bad} if bad else data


def _row_values(
    store: Store, spec: EntitySpec, key: str, state: dict[str, Any], stamps: dict[str, float]
) -> dict[str, Any]:
    """Column values for ``state``; raises _Unresolved if a referenced row is missing.

    Only fields an event may set reach a column: never the sealed secret columns, row-id
    links or stamps that this agent derives itself, and never a value of the wrong type
    (a bad field is dropped and logged, the same way on every agent, so they still agree).
    """
    cols = _columns(store, spec.table)
    derived = _derived(spec)
    bad = _invalid(store, spec, state)
    out: dict[str, Any] = {}
    for name, value in state.items():
        if name in derived and name not in spec.secrets and name not in spec.refs:
            _ignored(spec, key, name, "derived locally")
            continue
        if name in bad:
            _ignored(spec, key, name, bad[name])
            continue
        if name in spec.secrets:
            column, context = spec.secrets[name]
            out[column] = None if value is None else store.seal(str(value), context(key))
        elif name in spec.refs:
            ref = spec.refs[name]
            ref_id = store.scalar(f"SELECT id FROM {ref.table} WHERE {ref.key_column} = ?", (value,))
            if ref_id is None:
                raise _Unresolved(f"{ref.table} {value!r}")
            out[ref.column] = ref_id
        elif name in cols and name not in _LOCAL_COLUMNS:
            out[name] = _value(value)
    for name, column in spec.stamps.items():
        if name in stamps and column in cols:
            out[column] = stamps[name]
    if spec.key_column:
        out[spec.key_column] = key
    return out


def _fold(store: Store, entity: str, key: str) -> tuple[dict[str, Any], dict[str, float], bool]:
    """(fields, wall time per field, exists) from every stored event of the entity."""
    rows = store.all(
        "SELECT id, hlc, op, data FROM events WHERE entity = ? AND key = ? ORDER BY hlc, id", (entity, key)
    )
    spec = ENTITIES.get(entity)
    state: dict[str, Any] = {}
    stamps: dict[str, float] = {}
    exists = False
    for r in rows:
        if r["op"] == "delete":
            state, stamps, exists = {}, {}, False
        elif r["op"] in ("upsert", "append", "erase"):  # an erasure sets the cleared fields
            data = store.event_data(r)
            if spec is not None:  # a badly typed write is as if never made: the older value stands
                data = _valid_fields(store, spec, key, data)
            state.update(data)
            wall = Timestamp.decode(r["hlc"]).wall_ms / 1000
            stamps.update({k: wall for k in data})
            exists = True
    return state, stamps, exists


def materialize(store: Store, entity: str, key: str) -> bool:
    """Make the row of a state entity equal the fold of its events.

    An entity written to after a delete but never re-created in full (a field edit racing
    a delete on another POP) stays deleted, on every agent alike.
    """
    spec = ENTITIES[entity]
    state, stamps, exists = _fold(store, entity, key)
    table, kcol = spec.table, spec.key_column
    current = store.scalar(f"SELECT id FROM {table} WHERE {kcol} = ?", (key,))
    values = _row_values(store, spec, key, state, stamps) if exists else {}
    missing = [
        c
        for c, (req, _pk) in _columns(store, table).items()
        if req and c not in values and c not in ("created_at", "updated_at")
    ]
    if not exists or missing:
        if current is not None:
            store.execute(f"DELETE FROM {table} WHERE id = ?", (current,))
        return True
    now = store.now()
    cols = _columns(store, table)
    stamp = {c: now for c in ("updated_at",) if c in cols}
    if current is not None:
        sets = {**{k: v for k, v in values.items() if k != kcol}, **stamp}
        store.execute(
            f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in sets)} WHERE id = ?",
            (*sets.values(), current),
        )
        return True
    values.update(stamp, **{c: now for c in ("created_at",) if c in cols})
    store.execute(
        f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
        tuple(values.values()),
    )
    return True


def insert_append(store: Store, entity: str, key: str, data: dict[str, Any]) -> bool:
    """Insert an immutable record once (by its natural key). True if now present."""
    spec = ENTITIES[entity]
    values = _row_values(store, spec, key, data, {})
    store.execute(
        f"INSERT OR IGNORE INTO {spec.table} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
        tuple(values.values()),
    )
    return True


def _money_row(store: Store, entity: str, key: str, data: dict[str, Any]) -> Any:
    """The stored payment or ledger row with the natural key of ``data``, if any."""
    if entity == "payment":
        return store.one(
            "SELECT t.*, s.username FROM payments t JOIN "
            "subscribers s ON s.id = t.subscriber_id WHERE upper(t.reference) = "
            "upper(?)",
            (key,),
        )
    kind, ref = data.get("kind"), data.get("reference")
    if not isinstance(kind, str) or not isinstance(ref, str):
        return None
    match = "upper(t.reference) = upper(?)" if kind == "payment" else "t.reference = ?"
    return store.one(
        "SELECT t.*, s.username FROM ledger t JOIN subscribers s "
        f"ON s.id = t.subscriber_id WHERE t.kind = ? AND {match}",
        (kind, ref),
    )


def _converge_money(store: Store, entity: str, key: str, data: dict[str, Any]) -> None:
    """One receipt recorded for two subscribers (or amounts) at two POPs: every POP keeps
    the first recorded (the earliest event, ``data``), and the conflict goes to the suspense
    list for an engineer. Without this each POP kept its own, for ever.

    The loser's row is removed where it was stored (only its own POP has it): the one place
    a money row is deleted, so that the POPs agree on the ledger.
    """
    winner = (data.get("username"), data.get("amount_minor"))
    if entity == "payment":  # every POP lists the conflict, the winner's as well
        for ev in store.all(
            "SELECT id, data FROM events WHERE entity = 'payment' AND key = ? AND op = 'append'", (key,)
        ):
            other = store.event_data(ev)
            if not _valid_record(store, ENTITIES["payment"], key, other):
                continue  # ignored, as in _first_valid_record
            if (other.get("username"), other.get("amount_minor")) != winner:
                _suspend_conflict(store, key, data, other)
                break
    row = _money_row(store, entity, key, data)
    if row is None or all(row.get(k) == v for k, v in data.items() if k in row):
        return  # the same record (the same receipt recorded at two POPs is one payment)
    table = "payments" if entity == "payment" else "ledger"
    store.execute(f"DELETE FROM {table} WHERE id = ?", (row["id"],))
    if (row["username"], row["amount_minor"]) != winner:
        event(
            log,
            "sync.money_conflict",
            level=30,
            entity=entity,
            key=key,
            kept=f"{winner[0]} {winner[1]}",
            dropped=f"{row['username']} {row['amount_minor']}",
        )


def _suspend_conflict(store: Store, key: str, data: dict[str, Any], loser: dict[str, Any]) -> None:
    ref = key.upper()
    if store.one("SELECT 1 FROM payment_suspense WHERE reference = ?", (ref,)) is not None:
        return
    reason = (
        f"conflict: receipt recorded for {data.get('username')} and for "
        f"{loser['username']} at different POPs; kept {data.get('username')} (recorded "
        f"first). If {loser['username']} paid it, credit them (`jasiyo billing credit`)"
    )
    store.execute(
        "INSERT INTO payment_suspense (reference, provider, amount_minor, currency, account, "
        "reason, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            ref,
            str(data.get("method") or "?"),
            int(loser["amount_minor"]),
            str(data.get("currency") or "?"),
            loser["username"],
            reason[:300],
            store.now(),
        ),
    )


def _valid_record(store: Store, spec: EntitySpec, key: str, data: dict[str, Any]) -> bool:
    """Can an appended record be kept whole? One badly typed field and it is ignored, never
    half inserted, so it cannot displace a valid record of the same key either."""
    bad = _invalid(store, spec, data)
    for name, why in bad.items():
        event(log, "sync.record_ignored", level=30, entity=spec.table, row=key, field=name, reason=why)
    return not bad


def _first_valid_record(store: Store, spec: EntitySpec, entity: str, key: str) -> dict[str, Any] | None:
    """The data of the earliest valid ``append`` event of an entity: its record.

    A dashboard request (or its result) is the exception: kept as it came, since
    :mod:`.requests` judges it from its event and answers a bad one with a refusal."""
    for row in store.all(
        "SELECT id, data FROM events WHERE entity = ? AND key = ? AND op = 'append' ORDER BY hlc, id",
        (entity, key),
    ):
        data = store.event_data(row)
        if entity in ("request", "request_result") or _valid_record(store, spec, key, data):
            return data
    return None


def _settle(store: Store, entity: str, key: str) -> bool:
    """Materialise one entity inside a savepoint; False (and nothing written) if it must wait."""
    spec = ENTITIES[entity]
    try:
        with store.transaction():
            if spec.kind == "append":
                data = _first_valid_record(store, spec, entity, key)
                if data is None:
                    return True
                if entity in ("payment", "ledger"):
                    _converge_money(store, entity, key, data)
                elif entity == "voucher_use":
                    from jasiyo.agent.vouchers import converge_use

                    converge_use(store, key, data)
                return insert_append(store, entity, key, data)
            return materialize(store, entity, key)
    except _Unresolved:
        return False
    except (AlreadyExists, ValidationError) as exc:  # a constraint of the store refused it
        # e.g. two POPs gave the same static IP to different subscribers. Kept pending and
        # logged rather than dropped, so a later fix (an edit on either side) resolves it.
        event(log, "sync.apply_conflict", entity=entity, key=key, error=str(exc))
        return False


def _pending(store: Store) -> set[tuple[str, str]]:
    raw = store.meta(PENDING_KEY)
    return {(e, k) for e, k in json.loads(raw)} if raw else set()


def apply_events(store: Store, events: Iterable[RemoteEvent]) -> int:
    """Apply remote events in one transaction; returns how many were new.

    Duplicates (an event id already stored) are skipped. Unknown entities are stored (so
    they sync on and a newer agent can use them) but not materialised.
    """
    applied = 0
    with store.transaction():
        touched: set[tuple[str, str]] = set()  # by this batch; the pending ones join below
        now = store.now()
        clocks: list[tuple[str, str, str, str]] = []
        erasures: list[RemoteEvent] = []
        for ev in events:
            if ev.op not in OPS:
                # Skipped the same way on every agent: one bad event must not halt the log.
                event(
                    log,
                    "sync.event_ignored",
                    level=30,
                    id=ev.id,
                    origin=ev.origin,
                    reason=f"unknown operation {ev.op!r}",
                )
                continue
            if not store.clock.observe(ev.hlc):
                event(
                    log,
                    "sync.clock_ahead",
                    level=30,
                    id=ev.id,
                    origin=ev.origin,
                    hlc=ev.hlc,
                    note="that agent's clock is more than a day ahead",
                )
            payload = json.dumps(ev.data, sort_keys=True, separators=(",", ":"), default=str)
            cur = store.execute(
                "INSERT OR IGNORE INTO events (id, hlc, origin, entity, key, op, data, "
                "created_at, pushed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ev.id,
                    ev.hlc,
                    ev.origin,
                    ev.entity,
                    ev.key,
                    ev.op,
                    store.box.seal(payload, f"event:{ev.id}"),
                    now,
                    now,
                ),
            )
            if cur.rowcount != 1:
                # Our own event (or one seen before) whose clock the cloud bounded: take the
                # bounded clock, so this POP orders it as every other POP does.
                moved = store.execute(
                    "UPDATE events SET hlc = ? WHERE id = ? AND hlc > ?", (ev.hlc, ev.id, ev.hlc)
                )
                if moved.rowcount and ev.entity in ENTITIES:
                    touched.add((ev.entity, ev.key))
                continue
            applied += 1
            if ev.op == "erase" and ev.entity == "subscriber":
                erasures.append(ev)
            spec = ENTITIES.get(ev.entity)
            bad = _invalid(store, spec, ev.data) if spec is not None and ev.op != "delete" else {}
            fields = ["*"] if ev.op == "delete" else [f for f in ev.data if f not in bad]
            clocks += [(ev.entity, ev.key, f, ev.hlc) for f in fields]
            if ev.entity in ENTITIES:
                touched.add((ev.entity, ev.key))
        # Kept for the agent's own code (which reads field clocks); one statement per batch.
        store.executemany(
            "INSERT INTO field_clocks (entity, key, field, hlc) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(entity, key, field) DO UPDATE SET hlc = excluded.hlc "
            "WHERE excluded.hlc > field_clocks.hlc",
            clocks,
        )
        if erasures:  # before materialising: the person's row takes the pseudonym first
            from jasiyo.agent.scrub import apply_erasure

            for ev in erasures:
                apply_erasure(store, ev.id, ev.key, ev.data)
        if not touched and not erasures:
            # Nothing new (an empty long-poll, events seen before): what waits in pending
            # waits for a newer event, so it is not folded again (nor its conflict logged).
            return applied
        touched |= _pending(store)
        pending = _settle_all(store, touched)
        _one_document_per_purchase(store, {k for e, k in touched if e == "invoice"})
        store.set_meta(PENDING_KEY, json.dumps(sorted(pending)))
    return applied


def _one_document_per_purchase(store: Store, numbers: set[str]) -> None:
    """A payment applied at two POPs before they synced bought its period at each, under two
    invoice numbers (each POP numbers its own). The charge is one already (keyed by the
    purchase); of the documents, the first issued stands and the other is voided as a
    duplicate, the same way on every POP (the void is an event like any other)."""
    doubled: set[str] = set()
    ordered = sorted(numbers)
    for i in range(0, len(ordered), 500):  # one query per 500 invoices, not two per invoice
        part = ordered[i : i + 500]
        doubled.update(
            r["purchase"]
            for r in store.all(
                "SELECT i.purchase FROM invoices i WHERE i.number IN "
                f"({','.join('?' * len(part))}) AND i.purchase IS NOT NULL AND EXISTS "
                "(SELECT 1 FROM invoices j WHERE j.purchase = i.purchase AND j.number <> i.number)",
                tuple(part),
            )
        )
    for purchase in sorted(doubled):
        docs = store.all(
            "SELECT i.number, i.status, (SELECT MIN(hlc || ' ' || id) FROM events e WHERE "
            "e.entity = 'invoice' AND e.key = i.number) AS first FROM invoices i "
            "WHERE i.purchase = ? ORDER BY first",
            (purchase,),
        )
        keep = docs[0]["number"]
        for d in docs[1:]:
            if d["status"] == "void":
                continue
            store.emit(
                "invoice",
                d["number"],
                "upsert",
                {
                    "status": "void",
                    "void_reason": f"duplicate of {keep}: "
                    + (
                        "the cycle was billed at two POPs (a subscriber handed over before they "
                        "synced); charged once"
                        if purchase.startswith("cycle:")
                        else f"payment {purchase} was applied at two POPs; charged once"
                    ),
                },
            )
            materialize(store, "invoice", d["number"])
            event(log, "sync.duplicate_purchase", level=30, kept=keep, voided=d["number"])


def _settle_all(store: Store, todo: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Materialise by rank, repeating while progress is made (a plan unblocks subscribers)."""
    waiting = set(todo)
    while waiting:
        order = sorted(waiting, key=lambda ek: (ENTITIES[ek[0]].rank, ek))
        still = {ek for ek in order if not _settle(store, *ek)}
        if still == waiting:
            break
        waiting = still
    return waiting


def pending(store: Store) -> list[tuple[str, str]]:
    """Entities waiting for a referenced row (or in conflict)."""
    return sorted(_pending(store))
