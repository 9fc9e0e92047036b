"""Wall time of everyday CLI commands on a 50,000-subscriber store, beside `python -c pass`.

    .venv/bin/python bench/cli.py [--subscribers 50000] [--repeat 7]

Builds a throw-away store (real schema and migrations) with N subscribers, each with a
payment, a paid invoice and a ledger entry, a quarter online; then runs, as separate
processes like a person at a shell, `python -c pass` (the interpreter's own start),
`jasiyo --help`, `jasiyo plan list`, `jasiyo subscriber list --limit 50`, `jasiyo subscriber
list --search ...` and `jasiyo subscriber show` (output to /dev/null, as in a script).
Prints min and median wall time of each, its CPU time (user + system), and how far above
the interpreter's start each is. Aim: each within 0.25 s of it. The machine's
load shows in wall times; the minimum CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jasiyo.agent import plans, routers
from jasiyo.agent.store import Store, init_store
from jasiyo.agent.subscribers import password_context
from jasiyo.config import parse

DAY = 86400.0


def build(where: Path, n: int) -> Path:
    text = '[agent]\ndata_dir = "data"\n'
    path = where / "jasiyo.toml"
    path.write_text(text)
    cfg = parse(text, where, path)
    init_store(cfg)
    now = time.time()
    store = Store.open(cfg)
    plans.add(store, plans.build("home", rate="10M/10M", price="1000"), "bench")
    plans.add(store, plans.build("fast", rate="50M/50M", price="3000"), "bench")
    routers.add(
        store, "core-1", driver="mikrotik", host="10.0.0.1", radius_secret="bench-secret-1", actor="bench"
    )
    ids = [r["id"] for r in store.all("SELECT id FROM plans ORDER BY id")]
    t = time.perf_counter()
    # One sealed password reused: sealing 50,000 would only slow the build down.
    blob = store.seal("pw", password_context("user000000"))
    with store.transaction():
        for i in range(n):
            user = f"user{i:06d}"
            store.conn.execute(
                "INSERT INTO subscribers (username, password_enc, plan_id, service, phone, name, "
                "status, status_changed_at, paid_until, created_at, updated_at) "
                "VALUES (?, ?, ?, 'pppoe', ?, ?, 'active', ?, ?, ?, ?)",
                (
                    user,
                    blob,
                    ids[i % 2],
                    f"+2547{i:08d}",
                    f"Customer {i}",
                    now - DAY,
                    now + 20 * DAY,
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
                (
                    f"INV-BENCH-2026-{i + 1:06d}",
                    sid,
                    now - DAY,
                    now + 29 * DAY,
                    now - DAY,
                    now - DAY,
                    now - DAY,
                ),
            )
            store.conn.execute(
                "INSERT INTO ledger (subscriber_id, at, kind, amount_minor, currency, reference) "
                "VALUES (?, ?, 'payment', 100000, 'KES', ?), (?, ?, 'charge', -100000, 'KES', ?)",
                (sid, now - DAY, f"P{i}", sid, now - DAY, f"INV-BENCH-2026-{i + 1:06d}"),
            )
            if i % 4 == 0:
                store.conn.execute(
                    "INSERT INTO radius_sessions (nas_ip, acct_session_id, username, started_at, "
                    "last_update_at, status, input_octets, output_octets) "
                    "VALUES ('10.0.0.1', ?, ?, ?, ?, 'active', 123456789, 987654321)",
                    (f"s{i}", user, now - 3600, now - 60),
                )
    store.conn.execute("ANALYZE")
    store.close()
    print(f"built {n:,} subscribers in {time.perf_counter() - t:.1f} s")
    return path


def timed(argv: list[str], env: dict[str, str], repeat: int) -> tuple[list[float], list[float]]:
    """Wall times and CPU times (user + system, of the child) of ``repeat`` runs."""
    import resource

    wall, cpu = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.decode()[-500:]}")
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    py = sys.executable
    jasiyo = [py, "-m", "jasiyo.cli"]
    with tempfile.TemporaryDirectory(prefix="jasiyo-bench-cli-") as tmp:
        cfg_path = build(Path(tmp), args.subscribers)
        env = {**os.environ, "JASIYO_CONFIG": str(cfg_path)}
        mid = f"user{args.subscribers // 2:06d}"
        cases = [
            ("python -c pass", [py, "-c", "pass"]),
            ("jasiyo --help", [*jasiyo, "--help"]),
            ("jasiyo plan list", [*jasiyo, "plan", "list"]),
            ("jasiyo subscriber list --limit 50", [*jasiyo, "subscriber", "list", "--limit", "50"]),
            (
                "jasiyo subscriber list --search 'Customer 4999'",
                [*jasiyo, "subscriber", "list", "--search", "Customer 4999"],
            ),
            (f"jasiyo subscriber show {mid}", [*jasiyo, "subscriber", "show", mid]),
        ]
        results = [(name, timed(argv, env, args.repeat)) for name, argv in cases]
    base = min(results[0][1][0])
    base_cpu = min(results[0][1][1])
    print(
        f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
        "(CPU time is the steadier figure on a busy machine)"
    )
    print(f"{'command':<50} {'min s':>7} {'median s':>9} {'above python':>13} {'cpu s':>7} {'cpu above':>10}")
    for name, (wall, cpu) in results:
        print(
            f"{name:<50} {min(wall):7.3f} {statistics.median(wall):9.3f} "
            f"{min(wall) - base:13.3f} {min(cpu):7.3f} {min(cpu) - base_cpu:10.3f}"
        )


if __name__ == "__main__":
    main()
