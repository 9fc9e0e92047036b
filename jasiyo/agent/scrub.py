"""Erasure of a person, as every POP applies it (the ``erase`` event; :mod:`.erase` writes it).

Their personal data removed on every POP and in the cloud's copy.

``jasiyo subscriber erase`` writes one ``erase`` event for the subscriber, keyed by a new
pseudonym (``erased-<hex>``) and naming the person only by a hash of their username. Every
POP that applies it (the one that wrote it first) does the same, in one transaction:

- the subscriber row is renamed to the pseudonym; name, phone, IP, tax PIN, the device's MAC
  are cleared (and the MAC on vouchers used from it), the
  password replaced by a random one the event carries, the status ``terminated``;
- money (payments, ledger, invoices, credit notes, consent records) is kept, as the law
  requires, under the pseudonym: the rows point at the renamed subscriber, and their sync
  events are rewritten to name the pseudonym;
- usage summaries shared between POPs (keyed ``username|cycle|agent``) move to the pseudonym;
- the dashboard's requests about them (a new subscriber's carries name, phone, password),
  their results, and unmatched payments that named them are rewritten without them;
- RADIUS sessions and raw accounting lose their addresses and MACs, messages their text
  and phone number, payment requests and the suspense list the phone and payer, sealed
  callbacks and incoming SMS about them are replaced, and audit details naming them too;
- every local event that carried personal data is rewritten without it (re-sealed), and
  queued in ``cloud_redactions`` so the pusher replaces the cloud's copy of each event
  this POP originated or holds, and drops the webhook bodies of the person's payments.

The store deletes securely (``PRAGMA secure_delete``) and the WAL is checkpointed after an
erasure, so the old bytes are gone from the files too. The erasure itself is kept: the
``erasures`` table and the audit line say who asked, when and why.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from jasiyo.agent.store import Row, Store
from jasiyo.log import event, get_logger

log = get_logger(__name__)
ERASED = "[erased]"
#: Subscriber fields that are personal data: cleared in the row and in every event.
PERSONAL = ("name", "phone", "ip", "tax_pin", "mac")
#: Fields of money and consent events that may name or reach the person.
_MONEY_PERSONAL = ("phone", "payer", "customer_tax_pin", "source", "msisdn")
_PSEUDONYM = re.compile(r"^erased-[0-9a-f]{12}$")


def subject_of(username: str) -> str:
    """How an erasure names the person: a hash of the username, never the name itself."""
    return hashlib.sha256(f"jasiyo-erasure|{username}".encode()).hexdigest()


@dataclass(frozen=True)
class Erased:
    pseudonym: str
    actor: str
    reason: str
    at: float
    events_rewritten: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _traces(row: Row) -> list[str]:
    """Strings that identify the person inside free text: name, phone in its usual forms."""
    out = []
    if row.get("name") and len(row["name"]) >= 3:
        out.append(row["name"])
    digits = re.sub(r"\D", "", row.get("phone") or "")
    if len(digits) >= 9:
        out.append(digits[-9:])  # +254 7xx, 2547xx, 07xx all contain the last nine digits
    return out


def _scrub_text(value: str, traces: list[str]) -> str:
    for t in traces:
        if t in value:
            value = value.replace(t, ERASED)
    return value


def _scrub(
    data: dict[str, Any],
    username: str,
    pseudonym: str,
    traces: list[str],
    personal: tuple[str, ...],
    password: str | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        if k in personal:
            out[k] = None
        elif k == "password" and password is not None:
            out[k] = password
        elif k == "username" and v == username:
            out[k] = pseudonym
        elif isinstance(v, str):
            out[k] = _scrub_text(v, traces)
        else:
            out[k] = v
    return out


def _rewrite(store: Store, rows: list[Row], key: str | None, scrub: Any) -> list[str]:
    """Re-seal each event row with its data scrubbed (and its key changed); their ids."""
    changed = []
    for r in rows:
        data = scrub(store.event_data(r))
        payload = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        store.execute(
            "UPDATE events SET key = ?, data = ? WHERE id = ?",
            (key or r["key"], store.box.seal(payload, f"event:{r['id']}"), r["id"]),
        )
        changed.append(r["id"])
    return changed


def _money_keys(store: Store, sid: int) -> dict[str, list[str]]:
    def col(sql: str) -> list[str]:
        return [r["k"] for r in store.all(sql, (sid,))]

    return {
        "payment": col("SELECT reference AS k FROM payments WHERE subscriber_id = ?"),
        "ledger": col(
            "SELECT kind || ':' || reference AS k FROM ledger WHERE subscriber_id = ? "
            "AND reference IS NOT NULL"
        ),
        "invoice": col("SELECT number AS k FROM invoices WHERE subscriber_id = ?"),
        "credit_note": col("SELECT number AS k FROM credit_notes WHERE subscriber_id = ?"),
        "sms_consent": col("SELECT ref AS k FROM sms_consent WHERE subscriber_id = ?"),
    }


def _events_of(store: Store, entity: str, keys: list[str]) -> list[Row]:
    out: list[Row] = []
    for i in range(0, len(keys), 500):
        part = keys[i : i + 500]
        out += store.all(
            f"SELECT id, key, data FROM events WHERE entity = ? AND key IN ({','.join('?' * len(part))})",
            (entity, *part),
        )
    return out


def _find(store: Store, subject: str) -> str | None:
    """The username an erasure's hash names, among subscribers or their events."""
    for r in store.all("SELECT username FROM subscribers WHERE username NOT LIKE 'erased-%'"):
        if subject_of(r["username"]) == subject:
            return str(r["username"])
    for r in store.all("SELECT DISTINCT key FROM events WHERE entity = 'subscriber' AND op <> 'erase'"):
        if subject_of(r["key"]) == subject:
            return str(r["key"])
    return None


def _scrub_local_tables(
    store: Store, row: Row, username: str, pseudonym: str, traces: list[str]
) -> list[str]:
    """Sessions, accounting, messages, requests, suspense, inboxes, audit. Hook ids to drop."""
    sid = row["id"]
    store.execute(
        "UPDATE radius_sessions SET username = ?, framed_ip = NULL, "
        "calling_station_id = NULL, nas_port_id = NULL WHERE username = ?",
        (pseudonym, username),
    )
    store.execute("UPDATE accounting SET username = ? WHERE username = ?", (pseudonym, username))
    store.execute(
        "UPDATE notifications SET username = ?, phone = '', message = ?, vars = NULL, "
        "text_sent = NULL, key = 'erased:' || id WHERE username = ?",
        (pseudonym, ERASED, username),
    )
    store.execute(
        "UPDATE payment_requests SET phone = NULL, account = ? WHERE subscriber_id = ? OR account = ?",
        (pseudonym, sid, username),
    )
    store.execute(
        "UPDATE payment_suspense SET phone = NULL, payer = NULL, account = ? WHERE account = ?",
        (pseudonym, username),
    )
    store.execute(
        "UPDATE payment_suspense SET allocated_to = ? WHERE allocated_to = ?", (pseudonym, username)
    )
    store.execute("UPDATE enforce_jobs SET username = ? WHERE username = ?", (pseudonym, username))
    store.execute("UPDATE sms_consent SET source = '' WHERE subscriber_id = ?", (sid,))
    # Free text in the money kept (a credit's reason naming them): as their events are.
    for table, col in (("ledger", "description"), ("credit_notes", "reason")):
        for r in store.all(f"SELECT id, {col} AS t FROM {table} WHERE subscriber_id = ?", (sid,)):
            if isinstance(r["t"], str) and _scrub_text(r["t"], traces) != r["t"]:
                store.execute(
                    f"UPDATE {table} SET {col} = ? WHERE id = ?", (_scrub_text(r["t"], traces), r["id"])
                )
    if row.get("mac"):  # vouchers used from their device no longer name it
        store.execute("UPDATE vouchers SET mac = NULL WHERE mac = ?", (row["mac"],))
        store.execute("UPDATE voucher_uses SET mac = NULL WHERE mac = ?", (row["mac"],))
    refs = {
        r["reference"] for r in store.all("SELECT reference FROM payments WHERE subscriber_id = ?", (sid,))
    }
    hooks: list[str] = []
    blank = json.dumps({"erased": True})
    for r in store.all("SELECT id, source, reference, sealed FROM payment_inbox"):
        if r["reference"] in refs or _opens_to(store, r, "inbox", username, traces):
            store.execute(
                "UPDATE payment_inbox SET sealed = ?, remote = NULL WHERE id = ?",
                (store.seal(blank, f"inbox:{r['source']}"), r["id"]),
            )
            if r["source"].startswith("cloud:"):
                hooks.append(r["source"].removeprefix("cloud:"))
    for r in store.all("SELECT id, source, sealed FROM sms_inbox"):
        if _opens_to(store, r, "sms-inbox", username, traces):
            store.execute(
                "UPDATE sms_inbox SET sealed = ?, remote = NULL WHERE id = ?",
                (store.seal(blank, f"sms-inbox:{r['source']}"), r["id"]),
            )
            if r["source"].startswith("cloud:"):
                hooks.append(r["source"].removeprefix("cloud:"))
    _scrub_audit(store, username, pseudonym, traces)
    return hooks


def _opens_to(store: Store, row: Row, kind: str, username: str, traces: list[str]) -> bool:
    """Does a sealed inbox row (``sealed`` and ``source`` selected) mention the person?"""
    try:
        text = store.unseal(row["sealed"], f"{kind}:{row['source']}")
    except Exception:  # noqa: BLE001 - an unreadable row cannot be about anyone we can tell
        return False
    try:
        body = base64.b64decode(json.loads(text).get("body", "")).decode(errors="replace")
    except (ValueError, AttributeError):
        body = ""
    hay = text + body
    return any(t in hay for t in traces) or f'"{username}"' in hay


def _scrub_audit(store: Store, username: str, pseudonym: str, traces: list[str]) -> None:
    from jasiyo.agent import audit

    for r in store.all("SELECT * FROM audit"):
        target = r["target"]
        new_target = f"subscriber:{pseudonym}" if target == f"subscriber:{username}" else target
        detail = audit.detail_of(store, r)
        text = json.dumps(detail, sort_keys=True, default=str)
        hit = any(t in text for t in traces) or f'"{username}"' in text
        if not hit and new_target == target:
            continue
        if hit:
            detail = _scrub(detail, username, pseudonym, traces, PERSONAL + _MONEY_PERSONAL, None)
        store.execute(
            "UPDATE audit SET target = ?, detail = '{}', detail_enc = ? WHERE id = ?",
            (new_target, audit.seal_detail(store, new_target, detail), r["id"]),
        )


def _rename_usage(store: Store, username: str, pseudonym: str) -> list[str]:
    """Usage summaries are keyed ``username|cycle|agent`` (:mod:`.usage_sync`): their rows,
    field clocks and events move to the pseudonym, so no summary names the person."""
    prefix, n = username + "|", len(username) + 1
    rows = store.all(
        "SELECT id, key, data FROM events WHERE entity = 'usage' AND substr(key, 1, ?) = ?", (n, prefix)
    )
    changed: list[str] = []
    for r in rows:
        changed += _rewrite(
            store,
            [r],
            pseudonym + r["key"][len(username) :],
            lambda d: {**d, "username": pseudonym} if d.get("username") == username else d,
        )
    for table in ("usage_summaries", "field_clocks"):
        scope = "entity = 'usage' AND " if table == "field_clocks" else ""
        store.execute(
            f"UPDATE OR IGNORE {table} SET key = ? || substr(key, ?) WHERE {scope}substr(key, 1, ?) = ?",
            (pseudonym + "|", n + 1, n, prefix),
        )
        store.execute(f"DELETE FROM {table} WHERE {scope}substr(key, 1, ?) = ?", (n, prefix))
    store.execute("UPDATE usage_summaries SET username = ? WHERE username = ?", (pseudonym, username))
    return changed


def _scrub_dashboard(store: Store, username: str, pseudonym: str, traces: list[str]) -> list[str]:
    """The dashboard's requests about them and their results (:mod:`.requests`: a new
    subscriber's request carries the name, phone, address and password), and unmatched
    payments that named them (:mod:`.suspense_sync`)."""
    word = re.compile(rf"(?<![\w.@-]){re.escape(username)}(?![\w@-])")

    def text(value: Any) -> Any:
        return _scrub_text(word.sub(pseudonym, value), traces) if isinstance(value, str) else value

    def request(d: dict[str, Any]) -> dict[str, Any]:
        out = {k: text(v) for k, v in d.items()}
        return {**out, **{k: None for k in (*PERSONAL, "password") if k in d}}

    def suspense(d: dict[str, Any]) -> dict[str, Any]:
        out = {k: text(v) for k, v in d.items()}
        return {**out, **{k: None for k in _MONEY_PERSONAL if k in d}}

    def about(d: dict[str, Any], fields: tuple[str, ...]) -> bool:
        return any(d.get(f) == username for f in fields) or any(
            isinstance(v, str) and t in v for v in d.values() for t in traces
        )

    keys: set[str] = set()
    rows: dict[str, list[Row]] = {"request": [], "suspense": []}
    for entity, fields in (("request", ("username",)), ("suspense", ("account", "allocated_to"))):
        for r in store.all("SELECT id, key, data FROM events WHERE entity = ?", (entity,)):
            if about(store.event_data(r), fields):
                rows[entity].append(r)
                keys.add(r["key"])
    changed = _rewrite(store, rows["request"], None, request)
    changed += _rewrite(store, rows["suspense"], None, suspense)
    results = _events_of(store, "request_result", [r["key"] for r in rows["request"]])
    changed += _rewrite(store, results, None, lambda d: {k: text(v) for k, v in d.items()})
    for table in ("dashboard_results", "dashboard_runs"):
        for r in store.all(f"SELECT key, message FROM {table} WHERE message IS NOT NULL"):
            if r["key"] in keys and text(r["message"]) != r["message"]:
                store.execute(f"UPDATE {table} SET message = ? WHERE key = ?", (text(r["message"]), r["key"]))
    return changed


def apply_erasure(store: Store, event_id: str, pseudonym: str, data: dict[str, Any]) -> int:
    """Carry out an erasure event on this store (in the caller's transaction); how many
    events were rewritten.

    Idempotent: a second application finds nobody left under the hashed name (0), as
    does a store that never held the person.
    """
    subject = str(data.get("subject", ""))
    password = data.get("password")
    if not _PSEUDONYM.match(pseudonym) or not isinstance(password, str):
        event(log, "privacy.erasure_ignored", level=30, id=event_id, reason="malformed")
        return 0
    store.execute(
        "INSERT OR IGNORE INTO erasures (pseudonym, subject, reason, actor, at, event_id) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            pseudonym,
            subject,
            str(data.get("reason") or "")[:500],
            str(data.get("by") or "?"),
            float(data.get("at") or store.now()),
            event_id,
        ),
    )
    username = _find(store, subject)
    if username is None:
        return 0
    row = store.one("SELECT * FROM subscribers WHERE username = ?", (username,))
    traces = _traces(row or {})
    if row is None:  # its events arrived, its row not (yet): the events still hold them
        first = store.all(
            "SELECT id, key, data FROM events WHERE entity = 'subscriber' AND key = ?", (username,)
        )
        for r in first:
            traces += _traces(store.event_data(r))
        traces = sorted(set(traces))

    def sub_scrub(d: dict[str, Any]) -> dict[str, Any]:
        return _scrub(d, username, pseudonym, traces, PERSONAL, password)

    def money_scrub(d: dict[str, Any]) -> dict[str, Any]:
        return _scrub(d, username, pseudonym, traces, _MONEY_PERSONAL, None)

    changed = _rewrite(
        store,
        store.all("SELECT id, key, data FROM events WHERE entity = 'subscriber' AND key = ?", (username,)),
        pseudonym,
        sub_scrub,
    )
    store.execute(
        "UPDATE OR IGNORE field_clocks SET key = ? WHERE entity = 'subscriber' AND key = ?",
        (pseudonym, username),
    )
    store.execute("DELETE FROM field_clocks WHERE entity = 'subscriber' AND key = ?", (username,))
    changed += _rename_usage(store, username, pseudonym)
    changed += _scrub_dashboard(store, username, pseudonym, traces)
    hooks: list[str] = []
    if row is not None:
        for entity, keys in _money_keys(store, row["id"]).items():
            changed += _rewrite(store, _events_of(store, entity, keys), None, money_scrub)
        if row.get("mac"):  # vouchers used from their device: the events name the MAC

            def mac_scrub(d: dict[str, Any]) -> dict[str, Any]:
                return {**d, "mac": None} if d.get("mac") == row["mac"] else d

            codes = [
                r["code"]
                for r in store.all(
                    "SELECT code FROM vouchers WHERE mac = ? UNION SELECT code FROM voucher_uses "
                    "WHERE mac = ?",
                    (row["mac"], row["mac"]),
                )
            ]
            for entity in ("voucher", "voucher_use"):
                changed += _rewrite(store, _events_of(store, entity, codes), None, mac_scrub)
        store.execute(
            "UPDATE subscribers SET username = ?, name = NULL, phone = NULL, ip = NULL, "
            "tax_pin = NULL, mac = NULL, sms_consent = 0, status = 'terminated', "
            "status_reason = 'erased', "
            "password_enc = ?, updated_at = ? WHERE id = ?",
            (pseudonym, store.seal(password, f"subscriber:{pseudonym}:password"), store.now(), row["id"]),
        )
        hooks = _scrub_local_tables(store, row, username, pseudonym, traces)
    store.executemany(
        "INSERT OR IGNORE INTO cloud_redactions (kind, id) VALUES ('event', ?)", [(i,) for i in changed]
    )
    store.executemany(
        "INSERT OR IGNORE INTO cloud_redactions (kind, id) VALUES ('hook', ?)", [(h,) for h in hooks]
    )
    # A snapshot in the cloud may still hold the person: the agent's hourly check writes a
    # new one (which replaces it) at once rather than after [privacy] snapshot_days.
    store.set_meta("snapshot.last_at", "0")
    event(log, "privacy.erased", pseudonym=pseudonym, events=len(changed), hooks=len(hooks))
    return len(changed)
