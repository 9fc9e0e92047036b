"""The customer's pages under load: 200 phones at once against the real listener.

    .venv/bin/python bench/portal.py [--phones 200] [--seconds 15]

A real `jasiyo agent run` on 127.0.0.1 (its web listener in its own thread, as in
production) with a few packages sold on the portal and a suspended customer with an open
session. ``--phones`` httpx async clients (one connection each, keep-alive, as phones
would) load in turn: the hotspot page with MikroTik's variables (plans read, template
rendered, CSRF cookie set), the pay page (the customer found by source address, what is
due computed), and a static file. Prints p50/p90/p99/max latency, requests/s and the
agent's CPU per request (from /proc: the load generator shares the machine's cores, so
the CPU figure is the one that compares across runs).
The per-address page limit is raised for the run: every phone here is 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jasiyo import config  # noqa: E402
from jasiyo.agent import plans  # noqa: E402
from jasiyo.agent import subscribers as subs  # noqa: E402
from jasiyo.agent.store import Store, init_store  # noqa: E402

HOTSPOT = {
    "mac": "AA:BB:CC:00:00:01",
    "ip": "10.5.50.20",
    "link-login-only": "http://10.5.50.1/login",
    "link-orig": "http://example.com/",
    "chap-id": "\\371",
    "chap-challenge": "\\357" * 16,
}


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(tmp: Path) -> tuple[config.Config, int]:
    port = free_port()
    text = (
        f'[agent]\ndata_dir = "data"\n[radius]\nauth_port = {free_port(socket.SOCK_DGRAM)}\n'
        f"acct_port = {free_port(socket.SOCK_DGRAM)}\nworkers = 1\n"
        f"[web]\nport = {port}\n[portal]\npage_rate = 100000.0\npage_burst = 1000000\n"
    )
    (tmp / "jasiyo.toml").write_text(text)
    cfg = config.parse(text, tmp, tmp / "jasiyo.toml")
    init_store(cfg)
    store = Store.open(cfg)
    try:
        for name, price, period in (
            ("1hour", 1000, "1h"),
            ("24hours", 5000, "24h"),
            ("7days", 30000, "7d"),
            ("home", 150000, "30d"),
        ):
            plans.add(
                store,
                plans.build(name, rate="5M/5M", price=str(price / 100), period=period, portal=name != "home"),
                "bench",
            )
        subs.add(store, subs.NewSubscriber.build("alice", password="alice-pw", plan="home"), "bench")
        now = store.now()
        store.execute(
            "INSERT INTO radius_sessions (nas_ip, acct_session_id, username, framed_ip, "
            "started_at, last_update_at) VALUES ('127.0.0.1', 'b1', 'alice', '127.0.0.1', ?, ?)",
            (now, now),
        )
    finally:
        store.close()
    return cfg, port


async def phone(
    client: httpx.AsyncClient, path: str, until: float, lat: list[float], errors: list[int]
) -> None:
    while time.perf_counter() < until:
        t0 = time.perf_counter()
        try:
            r = await client.get(path)
        except httpx.TransportError as exc:  # counted: a phone whose request got no answer
            errors.append(0)
            if errors.count(0) == 1:
                print(f"  first failed request: {type(exc).__name__}: {exc}", flush=True)
            continue
        lat.append(time.perf_counter() - t0)
        if r.status_code != 200:
            errors.append(r.status_code)


async def load(url: str, path: str, phones: int, seconds: float) -> tuple[list[float], list[int], float]:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [httpx.AsyncClient(base_url=url, timeout=30, limits=limits) for _ in range(phones)]
    lat: list[float] = []
    errors: list[int] = []
    try:
        # Warm: one connection per phone, all at once (sequentially, the first would sit idle
        # past the listener's keep-alive timeout before the load starts).
        await asyncio.gather(*(c.get("/static/portal.css") for c in clients))
        start = time.perf_counter()
        until = start + seconds
        await asyncio.gather(*(phone(c, path, until, lat, errors) for c in clients))
        elapsed = time.perf_counter() - start
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return lat, errors, elapsed


def _load_part(job: tuple[str, str, int, float]) -> tuple[list[float], list[int], float]:
    return asyncio.run(load(*job))


def load_procs(
    url: str, path: str, phones: int, seconds: float, procs: int
) -> tuple[list[float], list[int], float]:
    """``phones`` spread over ``procs`` generator processes (one Python process cannot keep
    200 httpx clients busy)."""
    if procs <= 1:
        return asyncio.run(load(url, path, phones, seconds))
    from multiprocessing import get_context

    share = [phones // procs + (1 if i < phones % procs else 0) for i in range(procs)]
    with get_context("spawn").Pool(procs) as pool:
        parts = pool.map(_load_part, [(url, path, n, seconds) for n in share])
    lat = [x for p in parts for x in p[0]]
    errors = [x for p in parts for x in p[1]]
    return lat, errors, max(p[2] for p in parts)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--phones", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--procs", type=int, default=2, help="load generator processes")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="jasiyo-bench-portal-"))
    proc = None
    try:
        cfg, port = setup(tmp)
        env = {**os.environ, "JASIYO_CONFIG": str(tmp / "jasiyo.toml")}
        log = open(tmp / "agent.log", "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "jasiyo.cli", "agent", "run"],
            cwd=tmp,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the agent did not start: see " + str(tmp / "agent.log"))
            time.sleep(0.2)
        print(
            f"{args.phones} phones in {args.procs} generator processes, {args.seconds:.0f} s "
            f"per page, agent run on 127.0.0.1 ({os.cpu_count()} cores)"
        )
        for label, path in (
            ("hotspot page", "/hotspot?" + urlencode(HOTSPOT)),
            ("pay page", "/pay"),
            ("static css", "/static/portal.css"),
        ):
            cpu0 = cpu_seconds(proc.pid)
            lat, errors, elapsed = load_procs(url, path, args.phones, args.seconds, args.procs)
            cpu = (cpu_seconds(proc.pid) - cpu0) / max(1, len(lat) + args.phones)
            print(
                f"{label:13s} {len(lat):6d} requests  {len(lat) / elapsed:7.0f} req/s  "
                f"p50 {pct(lat, 50):6.1f} ms  p90 {pct(lat, 90):6.1f} ms  "
                f"p99 {pct(lat, 99):6.1f} ms  max {max(lat) * 1000:6.1f} ms  "
                f"agent CPU {cpu * 1000:.2f} ms/request  "
                f"errors {len(errors)}" + (f" {sorted(set(errors))} (0: no answer)" if errors else "")
            )
            if label == "hotspot page":
                size = len(httpx.get(url + path).content)
                css = len(httpx.get(url + "/static/portal.css").content)
                print(f"{'':13s} page {size} bytes + css {css} bytes, no other requests")
            if statistics.mean(lat) > 60:
                break
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
