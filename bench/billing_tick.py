"""Billing tick over many subscribers: a tick where nothing is due, and one where 5% expire.

    .venv/bin/python bench/billing_tick.py [--subscribers 50000] [--expire 0.05] [--repeat 20]

Builds a throw-away store (real schema, migrations, triggers) with N prepaid subscribers,
each with a payment, a paid invoice and a scheduled expiry, a fraction of them with an
online session. Then times ``billing.tick``: first with nothing due (the every-minute
case), then with the chosen fraction expiring at once (each suspended, with its event,
audit line, suspension notice and Disconnect job). Prints time per tick and per subscriber.
Aim: a no-change tick under one second at 50,000 subscribers.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jasiyo.agent import billing, plans, routers
from jasiyo.agent.store import Store, init_store
from jasiyo.agent.subscribers import password_context
from jasiyo.config import parse

DAY = 86400.0


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def build(where: Path, n: int, expire: float, now: float) -> tuple[Store, object, int]:
    text = '[agent]\ndata_dir = "data"\n[billing]\nreminder_days = [3, 1]\n'
    cfg = parse(text, where, where / "jasiyo.toml")
    init_store(cfg)
    clock = Clock(now)
    store = Store.open(cfg, now=clock)
    plans.add(store, plans.build("home", rate="10M/10M", price="1000"), "bench")
    routers.add(
        store, "core-1", driver="mikrotik", host="10.0.0.1", radius_secret="bench-secret-1", actor="bench"
    )
    plan_id = store.scalar("SELECT id FROM plans")
    rng = random.Random(7)
    expiring = set(rng.sample(range(n), int(n * expire)))
    t = time.perf_counter()
    with store.transaction():
        for i in range(n):
            user = f"user{i:06d}"
            # future expiries spread over the next 30 days; the chosen ones expire soon
            paid_until = now + 30 if i in expiring else now + rng.uniform(2 * DAY, 30 * DAY)
            store.conn.execute(
                "INSERT INTO subscribers (username, password_enc, plan_id, service, phone, "
                "sms_consent, status, status_changed_at, paid_until, created_at, updated_at) "
                "VALUES (?, ?, ?, 'pppoe', ?, ?, 'active', ?, ?, ?, ?)",
                (
                    user,
                    store.seal(f"pw-{i}", password_context(user)),
                    plan_id,
                    "+254700000000",
                    int(i % 3 == 0),
                    now - DAY,
                    paid_until,
                    now - DAY,
                    now - DAY,
                ),
            )
            sid = store.conn.execute("SELECT last_insert_rowid()").fetchone()[0]
            store.conn.execute(
                "INSERT INTO invoices (number, subscriber_id, plan, billing, cycle_start, "
                "cycle_end, amount_minor, tax_minor, total_minor, currency, issued_at, due_at, "
                "status, paid_at) VALUES (?, ?, 'home', 'prepaid', ?, ?, 100000, 0, 100000, "
                "'KES', ?, ?, 'paid', ?)",
                (f"INV-{i}", sid, now - DAY, paid_until, now - DAY, now - DAY, now - DAY),
            )
            store.conn.execute(
                "INSERT INTO ledger (subscriber_id, at, kind, amount_minor, currency, reference) "
                "VALUES (?, ?, 'payment', 100000, 'KES', ?), (?, ?, 'charge', -100000, 'KES', ?)",
                (sid, now - DAY, f"P{i}", sid, now - DAY, f"INV-{i}"),
            )
            # what a previous tick would have scheduled: the next reminder or the expiry
            nxt = paid_until - 3 * DAY if i % 3 == 0 and paid_until - 3 * DAY > now else paid_until
            store.conn.execute(
                "UPDATE billing_state SET next_action_at = ?, reminded_until = ? WHERE subscriber_id = ?",
                (nxt, now - DAY, sid),
            )
            if i % 4 == 0:  # a quarter online
                store.conn.execute(
                    "INSERT INTO radius_sessions (nas_ip, acct_session_id, username, started_at, "
                    "last_update_at, status) VALUES ('10.0.0.1', ?, ?, ?, ?, 'active')",
                    (f"s{i}", user, now - 3600, now - 60),
                )
    print(
        f"built {n:,} subscribers in {time.perf_counter() - t:.1f} s "
        f"({len(expiring):,} expiring, {n // 4:,} online)"
    )
    store.set_meta("billing.quota_checked_at", repr(now))  # as after the previous tick
    return store, cfg, len(expiring)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=50_000)
    ap.add_argument("--expire", type=float, default=0.05)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    now = 1_780_000_000.0
    with tempfile.TemporaryDirectory(prefix="jasiyo-bench-") as tmp:
        store, cfg, n_expiring = build(Path(tmp), args.subscribers, args.expire, now)
        store.conn.execute("ANALYZE")

        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            report = billing.tick(store, cfg, now)
            times.append(time.perf_counter() - t)
            assert report.examined == 0, report
        med = statistics.median(times)
        print(
            f"no-change tick: median {med * 1000:.2f} ms, max {max(times) * 1000:.2f} ms "
            f"over {args.repeat} ticks; {med / args.subscribers * 1e9:.1f} ns per subscriber"
        )

        # A busy minute on a quota plan: interim updates arrived for a fifth of the online
        # sessions since the last tick, so their cycle usage is summed and checked.
        store.conn.execute("UPDATE plans SET quota_bytes = 100000000000, fup_rate = '1M/1M'")
        busy = store.conn.execute(
            "UPDATE radius_sessions SET last_update_at = ?, input_octets = 5000000 WHERE id % 5 = 0",
            (now + 10,),
        ).rowcount
        t = time.perf_counter()
        report = billing.tick(store, cfg, now + 20)
        took = time.perf_counter() - t
        print(
            f"quota tick ({busy:,} sessions with new accounting, none over quota): "
            f"{took * 1000:.1f} ms; {report.examined} due"
        )
        store.conn.execute("UPDATE plans SET quota_bytes = NULL, fup_rate = NULL")

        later = now + 60
        t = time.perf_counter()
        report = billing.tick(store, cfg, later)
        took = time.perf_counter() - t
        print(
            f"expiry tick ({report.examined:,} due of {args.subscribers:,}): "
            f"{took:.3f} s; {took / max(1, report.examined) * 1000:.3f} ms per expiring "
            f"subscriber, {took / args.subscribers * 1e6:.2f} us per subscriber overall; "
            f"transitions {report.transitions}"
        )
        jobs = store.scalar("SELECT count(*) FROM enforce_jobs WHERE reason LIKE 'status%'")
        notes = store.scalar("SELECT count(*) FROM notifications")
        print(f"  queued {jobs:,} Disconnect jobs and {notes:,} suspension notices")
        assert report.transitions.get("suspended") == n_expiring

        t = time.perf_counter()
        report = billing.tick(store, cfg, later)
        print(
            f"tick right after: {(time.perf_counter() - t) * 1000:.2f} ms, {report.examined} due (idempotent)"
        )
        store.close()


if __name__ == "__main__":
    main()
