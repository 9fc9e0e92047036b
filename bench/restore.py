"""Restore benchmark: a tenant with N events, cloud bytes and restore time before and after
a snapshot compacts its log.

    .venv/bin/python bench/restore.py [--events 1000000] [--subscribers 10000] [--before N]

The cloud runs as its own process (`jasiyo cloud serve`, SQLite) on 127.0.0.1. POP A holds
the tenant: a plan, ``--subscribers`` subscribers, and then changes until the log has
``--events`` events: paid-until moves, FUP toggles, and every tenth change a payment with its
ledger entry (immutable records: a snapshot keeps each of them). A pushes everything. We
print the cloud's bytes for the tenant, then A writes a snapshot (`jasiyo sync snapshot`),
and we print the bytes again and the time for a wiped POP to restore (newest snapshot + the
tail) and check its state equals A's. ``--before N``: also time a restore from the whole
log when it holds at most N events (replaying a long log is the cost snapshots remove;
0 skips it).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sync import agent, start_cloud  # noqa: E402

from jasiyo.agent import cloudlink, plans, snapshot, tenantkeys  # noqa: E402
from jasiyo.agent.store import Store  # noqa: E402
from jasiyo.cloud import admin  # noqa: E402
from jasiyo.cloud.backend import open_storage  # noqa: E402
from jasiyo.config import Config  # noqa: E402


def seed(store: Store, events: int, subscribers: int) -> tuple:
    """Write the log; the state its fold must give (as :func:`state` reads it)."""
    plans.add(store, plans.build("bench", rate="10M/10M", price="1000"), "bench")
    rng = random.Random(7)
    names = [f"user{i:06d}" for i in range(subscribers)]
    written = 1
    with store.transaction():
        for u in names:
            store.emit("subscriber", u, "upsert", {
                "username": u, "password": f"pw-{u}", "plan": "bench", "service": "pppoe",
                "ip": None, "phone": None, "name": f"Customer {u}", "sms_consent": False,
                "status": "active"})
            written += 1
    t0 = time.time() - 400 * 86400
    i = 0
    paid: dict[str, float] = {}
    fup: dict[str, bool] = {}
    pay_n = 0
    while written < events:
        with store.transaction():
            for _ in range(min(20_000, events - written)):
                u = names[rng.randrange(subscribers)]
                i += 1
                if i % 10 == 0 and written + 2 <= events:
                    ref = f"BENCH{i:09d}"
                    store.emit("payment", ref, "append", {
                        "reference": ref, "username": u, "amount_minor": 100000,
                        "currency": "KES", "method": "mpesa", "received_at": t0 + i,
                        "recorded_by": "bench"})
                    store.emit("ledger", f"payment:{ref}", "append", {
                        "username": u, "at": t0 + i, "kind": "payment", "amount_minor": 100000,
                        "currency": "KES", "reference": ref, "description": "bench"})
                    written += 2
                    pay_n += 1
                elif i % 3 == 0:
                    store.emit("subscriber", u, "upsert", {"fup_active": bool(i % 2)})
                    fup[u] = bool(i % 2)
                    written += 1
                else:
                    store.emit("subscriber", u, "upsert", {"paid_until": t0 + i * 60})
                    paid[u] = t0 + i * 60
                    written += 1
                if written >= events:
                    break
    print(f"seeded {written} events", flush=True)
    return (subscribers, sum(paid.values()) if paid else None, sum(fup.values()),
            (pay_n, pay_n * 100000), pay_n * 100000)


def state(cfg: Config) -> tuple:
    s = Store.open(cfg)
    try:
        pays = s.one("SELECT count(*) AS n, sum(amount_minor) AS total FROM payments") or {}
        return (s.scalar("SELECT count(*) FROM subscribers"),
                s.scalar("SELECT sum(paid_until) FROM subscribers"),
                s.scalar("SELECT sum(fup_active) FROM subscribers"),
                (pays.get("n"), pays.get("total") or 0),
                s.scalar("SELECT sum(amount_minor) FROM ledger") or 0)
    finally:
        s.close()


def same(got: tuple, want: tuple) -> bool:
    """Equal, the paid-until sums to the float rounding of summing a million times."""
    return got[0] == want[0] and got[2:] == want[2:] and (
        got[1] == want[1] or abs((got[1] or 0) - (want[1] or 0)) < 1e-3 * max(1, abs(want[1] or 1)))


def restore(tmp: Path, name: str, url: str, admin_token: str, recovery: Path) -> tuple:
    cfg = agent(tmp, name, url, admin_token)
    t = time.perf_counter()
    result = tenantkeys.restore_from_cloud(cfg, recovery)
    return time.perf_counter() - t, result, cfg


def fmt(b: dict[str, int]) -> str:
    total = b["event_bytes"] + b["snapshot_bytes"] + b["webhook_bytes"]
    return (f"{b['events']:>9,} events, {total / 1e6:8.1f} MB "
            f"(events {b['event_bytes'] / 1e6:.1f} MB, snapshot {b['snapshot_bytes'] / 1e6:.1f} MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument("--before", type=int, default=100_000,
                    help="also time a restore from the whole log if it is at most this long")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        db = str(tmp / "cloud.db")
        proc, url, op = start_cloud(db, tmp)
        try:
            tenant = admin.create_tenant(url, op, "bench-restore")
            a = agent(tmp, "a", url, tenant["admin_token"])
            tenantkeys.init_tenant(a)
            recovery = tmp / "rec.json"
            tenantkeys.export_recovery(a, recovery)
            sa = Store.open(a)
            t = time.perf_counter()
            expected = seed(sa, args.events, args.subscribers)
            print(f"generate: {time.perf_counter() - t:.1f} s", flush=True)
            t = time.perf_counter()
            with cloudlink.open_client(a, sa, batch=1000) as ca:
                pushed = ca.push()
            sa.close()
            print(f"push: {pushed:,} events in {time.perf_counter() - t:.1f} s", flush=True)
            storage = open_storage(db)
            before = storage.tenant_bytes(tenant["tenant_id"])
            print(f"cloud before compaction: {fmt(before)}", flush=True)
            if args.before and args.events <= args.before:
                secs, _, cfg = restore(tmp, "full", url, tenant["admin_token"], recovery)
                ok = same(state(cfg), expected)
                print(f"restore from the whole log: {secs:.1f} s (equal: {ok})", flush=True)
            t = time.perf_counter()
            sa = Store.open(a)
            with cloudlink.open_client(a, sa) as ca:
                ca.pull()  # A's cursor catches up with its own pushes (a running POP's is)
            sa.close()
            print(f"A's cursor to the head: {time.perf_counter() - t:.1f} s", flush=True)
            t = time.perf_counter()
            snap = snapshot.write(a)
            print(f"snapshot: {snap['events']:,} events in {snap['parts']} parts, "
                  f"{snap['bytes'] / 1e6:.1f} MB; dropped {snap['dropped']:,}; "
                  f"{time.perf_counter() - t:.1f} s", flush=True)
            after = storage.tenant_bytes(tenant["tenant_id"])
            print(f"cloud after compaction:  {fmt(after)}", flush=True)
            storage.close()
            secs, result, cfg = restore(tmp, "restored", url, tenant["admin_token"], recovery)
            ok = same(state(cfg), expected)
            print(f"restore from snapshot + tail: {secs:.1f} s, {result['subscribers']:,} "
                  f"subscribers, {result['payments']:,} payments (equal to the log's fold: {ok})")
            if not ok:
                raise SystemExit("the restored POP differs from what the log says")
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
