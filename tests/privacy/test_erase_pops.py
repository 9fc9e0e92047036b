"""Erasure across two POPs and the cloud (SQLite and PostgreSQL): afterwards neither agent's
store file (WAL included) nor any cloud table holds the person's name, phone or password,
in plain text or in anything the tenant key opens; the money still adds up everywhere."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import psycopg

from jasiyo.agent import erase, payments, snapshot, tenantkeys
from jasiyo.agent.radius_backend import open_backend
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.radius.backend import AcctRecord
from jasiyo.sync.keyring import Keyring
from jasiyo.sync.snapshotfmt import decode
from tests.privacy.people import MAC, NAME, OTHER, PASSWORD, PHONE, add_person, voucher_used_by
from tests.privacy.test_erase_local import raw_bytes
from tests.sync.harness import Cloud, Tenant, snap, sync

SECRETS = (NAME, PHONE, PHONE[4:], PASSWORD)


def cloud_rows(where: object) -> list[tuple]:
    """Every row of every cloud table, as the tables' owner sees them."""
    if isinstance(where, Path):
        conn = sqlite3.connect(where)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            names = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
            return [row for n in names for row in conn.execute(f"SELECT * FROM {n}")]
        finally:
            conn.close()
    with psycopg.connect(str(where)) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
        conn.execute("SET row_security = off")  # the owner, not the service: every tenant
        return [row for n in names for row in conn.execute(f"SELECT * FROM {n}")]


def opened_by_tenant_key(where: object, ring: Keyring) -> str:
    """The plain text of every event envelope the cloud holds that the tenant key opens."""
    if isinstance(where, Path):
        conn = sqlite3.connect(where)
        rows = conn.execute("SELECT id, origin, envelope FROM events").fetchall()
        conn.close()
    else:
        with psycopg.connect(str(where)) as conn:
            conn.execute("SET row_security = off")
            rows = conn.execute("SELECT id, origin, envelope FROM events").fetchall()
    return "\n".join(ring.open(env, i, o).decode() for i, o, env in rows)


def opened_snapshots(where: object, ring: Keyring) -> str:
    """The plain text of every snapshot part the cloud holds (the tenant key opens them)."""
    sql = ("SELECT p.snapshot_id, p.part, p.envelope, s.origin FROM snapshot_parts p JOIN "
           "snapshots s ON s.tenant_id = p.tenant_id AND s.id = p.snapshot_id "
           "ORDER BY p.snapshot_id, p.part")
    if isinstance(where, Path):
        conn = sqlite3.connect(where)
        rows = conn.execute(sql).fetchall()
        conn.close()
    else:
        with psycopg.connect(str(where)) as conn:
            conn.execute("SET row_security = off")
            rows = conn.execute(sql).fetchall()
    by_snap: dict[str, list[bytes]] = {}
    for snap_id, part, env, origin in rows:
        by_snap.setdefault(snap_id, []).append(ring.open(env, f"snapshot:{snap_id}:{part}", origin))
    return "\n".join(json.dumps(e) for chunks in by_snap.values() for e in decode(chunks))


def session_at(cfg: Config, username: str) -> None:
    backend = open_backend(cfg)
    import time

    backend.record_accounting([AcctRecord(
        "10.0.0.2", "Start", time.time(), acct_session_id="b0b0cafe", username=username,
        framed_ip="100.64.9.9", calling_station_id=MAC)])
    backend.close()


def ledger_sums(cfg: Config) -> tuple:
    s = Store.open(cfg)
    try:
        return (s.all("SELECT s.username, sum(l.amount_minor) AS balance FROM ledger l JOIN "
                      "subscribers s ON s.id = l.subscriber_id GROUP BY 1 ORDER BY 1"),
                s.scalar("SELECT sum(total_minor) FROM invoices"),
                s.scalar("SELECT sum(amount_minor) FROM payments"))
    finally:
        s.close()


def test_erasure_reaches_both_pops_and_the_cloud(any_cloud: tuple[Cloud, Path | str, str],
                                                  tmp_path: Path) -> None:
    c, where, _ = any_cloud
    isp = Tenant(c, tmp_path).setup(2)
    a, b = isp.agents
    add_person(a)  # subscriber, consent, payment, session and SMS at POP A
    voucher_used_by(a, MAC)  # and a voucher used from their device
    add_person(a, "baraka", ref="QK7PAY002", **OTHER)
    sync(a, b)
    s = Store.open(b)
    payments.record(s, b, "wanjiku", "1500", "QK7PAY003", method="mpesa", actor="noc:b")
    s.close()
    session_at(b, "wanjiku")
    sync(a, b)
    snapshot.write(a)  # the cloud's snapshot holds the person too
    ring = Keyring.load(isp.recovery)
    plain = opened_by_tenant_key(where, ring) + opened_snapshots(where, ring)
    assert NAME in plain and PASSWORD in plain  # the check does see what is there

    s = Store.open(b)
    done = erase.erase(s, "wanjiku", "noc:b", "asked in writing")
    s.close()
    sync(b, a, rounds=3)
    s = Store.open(a)
    assert snapshot.periodic(s, a) is not None  # an erasure makes a new snapshot due
    s.close()

    assert snap(a) == snap(b)  # the same pseudonymised state at both POPs
    sums = ledger_sums(a)
    assert sums == ledger_sums(b)
    balances = dict((r["username"], r["balance"]) for r in sums[0])
    assert set(balances) == {"baraka", done.pseudonym} and sums[2] == 3 * 150000
    for cfg in (a, b):
        blob = raw_bytes(cfg.db_path)
        for secret in (*SECRETS, MAC, "wanjiku"):
            assert secret.encode() not in blob, (cfg.agent.name, secret)
        assert OTHER["name"].encode() in blob  # the other subscriber is still there
    rows = repr(cloud_rows(where))
    if isinstance(where, Path):
        rows += repr(raw_bytes(where))
    plain = opened_by_tenant_key(where, ring) + opened_snapshots(where, ring)
    for secret in (*SECRETS, MAC):
        assert secret not in rows and secret not in plain, secret
    assert "wanjiku" not in plain and OTHER["name"] in plain
    erasure = [json.loads(line) for line in plain.splitlines() if '"erase"' in line]
    assert erasure and erasure[0]["data"]["reason"] == "asked in writing"

    # A POP rebuilt from the cloud now has the pseudonymised subscriber and all the money.
    c2 = isp.add_agent("pop-rebuilt")
    tenantkeys.restore_from_cloud(c2, isp.recovery)
    assert snap(c2) == snap(a)
