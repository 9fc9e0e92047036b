"""Sync benchmark: push and pull throughput for N events, and A->B latency with long-poll.

    .venv/bin/python bench/sync.py [--events 100000] [--backend sqlite|postgres|both]

The cloud runs as its own process (`jasiyo cloud serve`) on 127.0.0.1; two agents (two
stores) in this process talk to it over HTTP with the real client: every event is decrypted
from the local store, sealed with the tenant key, signed, pushed in batches of 1000, pulled,
opened and applied (materialised as subscriber rows on B). Latency: A writes and pushes one
change at a time; B sits in a long-poll loop; we time from A's write to B's commit.
PostgreSQL uses $JASIYO_TEST_POSTGRES_DSN (default postgresql://postgres@127.0.0.1/test)
to create a scratch database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jasiyo import config  # noqa: E402
from jasiyo.agent import cloudlink, plans, synclog, tenantkeys  # noqa: E402
from jasiyo.agent.store import Store, init_store  # noqa: E402
from jasiyo.cloud import admin  # noqa: E402
from jasiyo.cloud.server import new_operator_token  # noqa: E402
from jasiyo.sync.client import RemoteEvent  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cloud(db: str, tmp: Path, owner_db: str | None = None) -> tuple[subprocess.Popen, str, str]:
    port = free_port()
    token = new_operator_token()
    env = {**os.environ, "JASIYO_OPERATOR_TOKEN": token}
    if owner_db:  # PostgreSQL: only the tables' owner may create operator tokens
        subprocess.run(
            [sys.executable, "-m", "jasiyo.cli", "cloud", "create-operator", "--from-env", "--db", owner_db],
            env=env,
            cwd=tmp,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jasiyo.cli",
            "cloud",
            "serve",
            "--db",
            db,
            "--port",
            str(port),
            "--rate",
            "100000",
            "--max-body",
            str(16 * 1024 * 1024),
        ],
        env=env,
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                return proc, url, token
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the cloud did not start")


def agent(tmp: Path, name: str, url: str, admin_token: str) -> config.Config:
    cfg = config.parse(f'[agent]\ndata_dir = "{tmp / name}"\n', tmp)
    init_store(cfg)
    cloudlink.enroll_agent(cfg, url, admin.issue_enrolment(url, admin_token)["token"])
    return cfg


def seed(store: Store, n: int) -> None:
    """One plan and ``n`` subscriber-creation events (the outbox), written in bulk."""
    plans.add(store, plans.build("bench", rate="10M/10M", price="1000"), "bench")
    with store.transaction():
        for i in range(n - 1):
            store.emit(
                "subscriber",
                f"user{i:07d}",
                "upsert",
                {
                    "username": f"user{i:07d}",
                    "password": f"pw-{i:07d}",
                    "plan": "bench",
                    "service": "pppoe",
                    "ip": None,
                    "phone": None,
                    "name": None,
                    "sms_consent": False,
                    "status": "active",
                },
            )


class MemoryLog:
    """A log that only keeps its cursor: measures pull + decrypt without applying."""

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
        self.meta: dict[str, str] = {}

    def outbox(self, limit: int) -> list:
        return []

    def mark_pushed(self, ids: list[str]) -> None:
        pass

    def backlog(self) -> tuple[int, float | None]:
        return 0, None

    def get(self, key: str) -> str | None:
        return self.meta.get(key)

    def put(self, values: dict[str, str]) -> None:
        self.meta.update(values)

    def apply(self, events: list[RemoteEvent], meta: dict[str, str] | None = None) -> int:
        self.meta.update(meta or {})
        return len(events)

    def quarantined(self) -> list:
        return []

    def release(self, ids: list[str]) -> None:
        pass


class TimedLog(synclog.AgentLog):
    """B's log: notes when each latency probe (data['t0']) is committed."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.latencies: list[float] = []

    def apply(self, events: list[RemoteEvent], meta: dict[str, str] | None = None) -> int:
        n = super().apply(events, meta)
        done = time.time()
        self.latencies += [done - e.data["t0"] for e in events if "t0" in e.data]
        return n


def run(backend: str, db: str, n: int, probes: int, tmp: Path, owner_db: str | None = None) -> dict[str, Any]:
    proc, url, op = start_cloud(db, tmp, owner_db)
    try:
        tenant = admin.create_tenant(url, op, f"bench-{backend}")
        a = agent(tmp, "a", url, tenant["admin_token"])
        b = agent(tmp, "b", url, tenant["admin_token"])
        tenantkeys.init_tenant(a)
        tenantkeys.export_recovery(a, tmp / "rec.json")
        tenantkeys.import_recovery(b, tmp / "rec.json")
        sa, sb = Store.open(a), Store.open(b)
        seed(sa, n)
        ca = cloudlink.open_client(a, sa, batch=1000)
        t = time.perf_counter()
        pushed = ca.push()
        push_s = time.perf_counter() - t
        cb = cloudlink.open_client(b, sb)
        real_log = cb.log
        cb.log = MemoryLog(sb.agent_id)  # type: ignore[assignment]
        t = time.perf_counter()
        pulled = cb.pull()[0]
        pull_only_s = time.perf_counter() - t
        cb.log = real_log
        t = time.perf_counter()
        received, applied = cb.pull()
        pull_s = time.perf_counter() - t
        assert received == n and sb.scalar("SELECT count(*) FROM subscribers") == n - 1
        # Latency: B long-polls in a thread; A writes and pushes one change at a time.
        log_b = TimedLog(sb)
        cb.log = log_b
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                cb.pull(wait=5)

        waiter = threading.Thread(target=loop, daemon=True)
        waiter.start()
        time.sleep(0.3)
        for i in range(probes):
            with sa.transaction():
                sa.emit("plan", "bench", "upsert", {"price_minor": 1000 + i, "t0": time.time()})
            ca.push()
            time.sleep(0.02)
        deadline = time.monotonic() + 30
        while len(log_b.latencies) < probes and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        waiter.join(10)
        lat = sorted(log_b.latencies)
        ca.close()
        cb.close()
        sa.close()
        sb.close()
        return {
            "backend": backend,
            "events": n,
            "push_s": push_s,
            "push_eps": pushed / push_s,
            "pull_eps": pulled / pull_only_s,
            "pull_apply_s": pull_s,
            "pull_apply_eps": applied / pull_s,
            "probes": len(lat),
            "p50_ms": statistics.median(lat) * 1000 if lat else float("nan"),
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan"),
            "max_ms": lat[-1] * 1000 if lat else float("nan"),
        }
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--probes", type=int, default=300)
    ap.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    args = ap.parse_args()
    results = []
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as d:
            results.append(run("sqlite", str(Path(d) / "cloud.db"), args.events, args.probes, Path(d)))
    if args.backend in ("postgres", "both"):
        from tests.cloud.pgutil import admin_dsn, scratch_database

        with scratch_database(admin_dsn()) as scratch, tempfile.TemporaryDirectory() as d:
            results.append(
                run("postgres", scratch.app_dsn, args.events, args.probes, Path(d), scratch.owner_dsn)
            )
    print(
        f"{'backend':9} {'events':>7} {'push s':>7} {'push ev/s':>10} {'pull ev/s':>10} "
        f"{'pull+apply s':>12} "
        f"{'pull+apply ev/s':>15} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}"
    )
    for r in results:
        print(
            f"{r['backend']:9} {r['events']:>7} {r['push_s']:>7.1f} {r['push_eps']:>10.0f} "
            f"{r['pull_eps']:>10.0f} "
            f"{r['pull_apply_s']:>12.1f} {r['pull_apply_eps']:>15.0f} {r['p50_ms']:>7.1f} "
            f"{r['p99_ms']:>7.1f} {r['max_ms']:>7.1f}"
        )


if __name__ == "__main__":
    main()
