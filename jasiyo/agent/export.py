"""Data portability: everything held about one subscriber, or the whole ISP, as JSON.

A subscriber's document (``jasiyo.subscriber/1``) and a tenant export's manifest
(``jasiyo.tenant/1``) are described by the JSON Schema ``export_schema.json`` beside this
module (also in ``docs/export-schema.json``). Times are ISO 8601 in the tenant's time zone
(``[billing] timezone``), money integer minor units. Sealed columns (passwords, router
credentials, raw provider callbacks) are never exported: they are named in ``withheld``.
Every export is audited.
"""

from __future__ import annotations

import csv
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from jasiyo.agent import audit, ledger, timeparse
from jasiyo.agent.store import Row, Store
from jasiyo.config import Config
from jasiyo.errors import AlreadyExists, ConfigError, NotFound

SUBSCRIBER_FORMAT = "jasiyo.subscriber/1"
TENANT_FORMAT = "jasiyo.tenant/1"
#: Columns a document never carries: local row ids (meaningless elsewhere).
_LOCAL = ("id", "subscriber_id", "plan_id", "inbox_id")
_TIMES = ("paid_until", "cycle_start", "cycle_end")
#: The whole ISP: the tables a tenant export writes, and the sealed columns left out.
TENANT_TABLES: dict[str, tuple[str, ...]] = {
    "plans": (), "subscribers": ("password_enc",),
    "routers": ("password_enc", "radius_secret_enc"), "payments": (), "ledger": (),
    "invoices": (), "credit_notes": (), "sms_consent": (), "payment_requests": (),
    "payment_suspense": (), "radius_sessions": (), "accounting": (), "notifications": (),
    "vouchers": (), "audit": ("detail", "detail_enc"),
}


def schema() -> dict[str, Any]:
    """The JSON Schema of exported documents (draft 2020-12)."""
    text = resources.files("jasiyo.agent").joinpath("export_schema.json").read_text()
    return dict(json.loads(text))


def _is_time(column: str) -> bool:
    return column == "at" or column.endswith("_at") or column in _TIMES


def clean(row: Row, tz: str, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A row as exported: no local ids, no sealed bytes, times in the tenant's zone."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k in _LOCAL or k in drop or isinstance(v, bytes):
            continue
        out[k] = timeparse.local(v, tz) if _is_time(k) and isinstance(v, int | float) else v
    return out


def _has_table(store: Store, name: str) -> bool:
    return bool(store.scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                             (name,)))


def _columns(store: Store, table: str) -> set[str]:
    return {r["name"] for r in store.all(f"PRAGMA table_info({table})")}


def _vouchers(store: Store, mac: str | None) -> list[Row]:
    """Vouchers used from (or bound to) the subscriber's device, with their first use.

    A voucher is not an account (see :mod:`jasiyo.agent.vouchers`): what ties one to a
    person is the device, the MAC address their subscription is bound to.
    """
    if not mac or not _has_table(store, "vouchers"):
        return []
    return store.all(
        "SELECT v.*, p.name AS plan, u.started_at AS used_at, u.mac AS used_by_mac, "
        "u.pop AS used_at_pop FROM vouchers v JOIN plans p ON p.id = v.plan_id "
        "LEFT JOIN voucher_uses u ON u.code = v.code WHERE v.mac = ? OR u.mac = ? "
        "ORDER BY v.code", (mac, mac))


def _plan_history(store: Store, username: str, tz: str) -> list[dict[str, Any]]:
    """Each plan the subscriber was on, from the event log, oldest first."""
    out: list[dict[str, Any]] = []
    for r in store.all("SELECT id, hlc, data, created_at FROM events WHERE entity = "
                       "'subscriber' AND key = ? AND op = 'upsert' ORDER BY hlc, id",
                       (username,)):
        plan = store.event_data(r).get("plan")
        if plan and (not out or out[-1]["plan"] != plan):
            out.append({"plan": plan, "from": timeparse.local(r["created_at"], tz)})
    return out


def subscriber_document(store: Store, cfg: Config, username: str) -> dict[str, Any]:
    """Everything this POP holds about ``username`` (not audited: see :func:`export_subscriber`)."""
    tz = cfg.billing.timezone
    row = store.one("SELECT s.*, p.name AS plan FROM subscribers s JOIN plans p "
                    "ON p.id = s.plan_id WHERE s.username = ?", (username,))
    if row is None:
        raise NotFound(f"no subscriber named {username!r}")
    sid = row["id"]

    def rows(sql: str, params: tuple = (sid,)) -> list[dict[str, Any]]:
        return [clean(r, tz) for r in store.all(sql, params)]

    profile = clean(row, tz)
    profile["sms_consent"] = bool(profile["sms_consent"])
    return {
        "format": SUBSCRIBER_FORMAT,
        "exported_at": timeparse.local(store.now(), tz),
        "timezone": tz,
        "agent": {"id": store.agent_id, "name": store.meta("agent_name") or ""},
        "withheld": ["password (held sealed; the subscriber can set a new one)"],
        "subscriber": profile,
        "consent": rows("SELECT given, how, actor, source, at FROM sms_consent "
                        "WHERE subscriber_id = ? ORDER BY at, id"),
        "plan_history": _plan_history(store, username, tz),
        "payments": rows("SELECT * FROM payments WHERE subscriber_id = ? ORDER BY received_at"),
        "payment_requests": rows("SELECT * FROM payment_requests WHERE subscriber_id = ? "
                                 "ORDER BY created_at"),
        "invoices": rows("SELECT * FROM invoices WHERE subscriber_id = ? ORDER BY issued_at"),
        "credit_notes": rows("SELECT * FROM credit_notes WHERE subscriber_id = ? "
                             "ORDER BY issued_at"),
        "ledger": rows("SELECT * FROM ledger WHERE subscriber_id = ? ORDER BY at, id"),
        "balance_minor": ledger.balance(store, sid),
        "sessions": rows("SELECT * FROM radius_sessions WHERE username = ? ORDER BY started_at",
                         (username,)),
        "usage": rows("SELECT * FROM accounting WHERE username = ? ORDER BY received_at",
                      (username,)),
        "messages": rows("SELECT * FROM notifications WHERE username = ? ORDER BY created_at",
                         (username,)),
        "vouchers": [clean(v, tz) for v in _vouchers(store, row.get("mac"))],
        "audit": [{**line.to_dict(), "at": timeparse.local(line.at, tz), "id": None}
                  for line in audit.about(store, username)],
    }


def _private_file(path: Path) -> Any:
    """A new file only its owner can read (it holds personal data); never overwrite."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise AlreadyExists(f"{path} exists; choose a new file name") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    return os.fdopen(fd, "w", newline="")


def _empty_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror}") from None
    if any(path.iterdir()):
        raise AlreadyExists(f"{path} is not empty; give a new or empty directory")


def write_csv(doc: dict[str, Any], dest: Path) -> list[str]:
    """The document's lists as one CSV file each (and the profile as subscriber.csv)."""
    _empty_dir(dest)
    written = []
    sections = {"subscriber": [doc["subscriber"]]}
    sections.update({k: v for k, v in doc.items() if isinstance(v, list) and k != "withheld"})
    for name, items in sections.items():
        items = [{k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in i.items()}
                 for i in items]
        cols = sorted({k for i in items for k in i})
        with _private_file(dest / f"{name}.csv") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            w.writerows(items)
        written.append(f"{name}.csv")
    return written


def export_subscriber(store: Store, cfg: Config, username: str, actor: str,
                      output: Path | None = None, csv_dir: Path | None = None) -> dict[str, Any]:
    """The subscriber's document; written to ``output`` / ``csv_dir`` if given. Audited."""
    doc = subscriber_document(store, cfg, username)
    if output is not None:
        with _private_file(output) as fh:
            json.dump(doc, fh, indent=2, default=str)
    if csv_dir is not None:
        write_csv(doc, csv_dir)
    with store.transaction():
        store.audit(actor, "subscriber.export", f"subscriber:{username}",
                    output=str(output or "-"), csv=str(csv_dir or "-"))
    return doc


def export_tenant(store: Store, cfg: Config, dest: Path, actor: str) -> dict[str, Any]:
    """The whole ISP as seen by this POP: one JSON file per table and ``manifest.json``."""
    tz = cfg.billing.timezone
    _empty_dir(dest)
    tables: dict[str, dict[str, Any]] = {}
    for table, sealed in TENANT_TABLES.items():
        if not _has_table(store, table):
            continue
        rows = store.all(f"SELECT * FROM {table} ORDER BY rowid")
        if table in ("payments", "ledger", "invoices", "credit_notes", "sms_consent"):
            names = {r["id"]: r["username"]
                     for r in store.all("SELECT id, username FROM subscribers")}
            rows = [{**r, "username": names.get(r["subscriber_id"])} for r in rows]
        if table == "subscribers":
            plans = {r["id"]: r["name"] for r in store.all("SELECT id, name FROM plans")}
            rows = [{**r, "plan": plans.get(r["plan_id"])} for r in rows]
        out = [clean(r, tz, sealed) for r in rows]
        if table == "audit":
            out = [{**line.to_dict(), "at": timeparse.local(line.at, tz)}
                   for line in reversed(audit.list_(store, limit=10**9))]
        with _private_file(dest / f"{table}.json") as fh:
            json.dump(out, fh, indent=1, default=str)
        tables[table] = {"file": f"{table}.json", "rows": len(out)}
    manifest = {"format": TENANT_FORMAT, "exported_at": timeparse.local(store.now(), tz),
                "timezone": tz, "agent": {"id": store.agent_id,
                                          "name": store.meta("agent_name") or ""},
                "tenant_id": store.meta("sync.tenant_id"),
                "withheld": ["subscriber passwords", "router credentials and RADIUS secrets",
                             "raw provider callbacks and incoming SMS (sealed inboxes)"],
                "tables": tables}
    with _private_file(dest / "manifest.json") as fh:
        json.dump(manifest, fh, indent=2)
    with store.transaction():
        store.audit(actor, "tenant.export", "tenant", output=str(dest),
                    tables=len(tables))
    return manifest
