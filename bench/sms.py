"""The SMS sender: outbox drain rate against the Africa's Talking simulator, and the agent's
RADIUS latency while 10,000 reminders drain (sending must not slow authentication).

    .venv/bin/python bench/sms.py [--messages 10000] [--duration 10] [--window 8]
                                  [--rate-per-minute 60000] [--skip-drain]
                                  [--sender process|thread] [--workers N]

Everything on 127.0.0.1, in a temp dir; the simulator (`jasiyo dev sms-sim`) and the agent
(`jasiyo agent run`) are child processes, stopped at the end.

1. **Drain alone**: ``Sender.step`` in this process drains N queued reminders through the
   real Africa's Talking client to the simulator (one HTTP request per message, as the API
   is used for personalised texts): messages per second.
2. **RADIUS while draining**: `jasiyo agent run` on the same store (demo router and users
   ``user00001``..; delivery reports come back to its web listener) and the RADIUS load
   generator (PAP, ``--window`` outstanding) for ``--duration`` seconds: first with the
   outbox empty, then right after N fresh reminders are queued, while the agent drains
   them. p50/p99 of both, and the drain rate inside the agent.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from _freeradius import wait_ready  # noqa: E402
from _radius_gen import Codec, Target, probe, run_load  # noqa: E402

from jasiyo import config  # noqa: E402
from jasiyo.agent import demo, notify, smsops  # noqa: E402
from jasiyo.agent.smswork import Sender, gateway  # noqa: E402
from jasiyo.agent.store import Store, init_store  # noqa: E402

JASIYO = [sys.executable, "-m", "jasiyo.cli"]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(store: Store) -> None:
    """Every demo subscriber consents and has a phone (before the agent starts: the change
    wakes each one's billing clock)."""
    with store.transaction():
        store.conn.execute(
            "UPDATE subscribers SET sms_consent = 1, phone = '+2547' || "
            "substr('00000000' || id, -8, 8) WHERE username LIKE 'user%'"
        )


def queue(store: Store, n: int, tag: str) -> None:
    """One reminder for each of N subscribers."""
    with store.transaction():
        now = store.now()
        for sub in store.all(
            "SELECT s.*, p.name AS plan FROM subscribers s JOIN plans p "
            "ON p.id = s.plan_id ORDER BY s.id LIMIT ?",
            (n,),
        ):
            notify.queue(
                store,
                sub,
                "reminder",
                f"reminder:{sub['username']}:{tag}",
                f"Your {sub['plan']} internet expires in 3 day(s). Pay KES 1,500.00 to stay connected.",
                now,
                not_after=now + 3 * 86400,
            )


def done(store: Store) -> int:
    return int(store.scalar("SELECT count(*) FROM notifications WHERE status IN ('sent', 'delivered')"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--window", type=int, default=8)
    ap.add_argument("--rate-per-minute", type=int, default=60_000)
    ap.add_argument("--skip-drain", action="store_true", help="only the agent run part")
    ap.add_argument(
        "--sender",
        choices=("process", "thread"),
        default="process",
        help="the agent's sender: its own process at nice 10 (default) or a thread",
    )
    ap.add_argument("--workers", type=int, default=0, help="[radius] workers of the agent (0: one per core)")
    ap.add_argument(
        "--wait", type=float, default=120.0, help="seconds to wait for the agent to drain everything"
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="jasiyo-sms-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        sim_port, web_port = free_port(), free_port()
        auth, acct = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
        text = (
            f'[agent]\ndata_dir = "{tmp / "data"}"\nname = "bench"\n'
            'log_level = "warning"\n'
            f'[radius]\naddress = "127.0.0.1"\nauth_port = {auth}\nacct_port = {acct}\n'
            f"workers = {args.workers}\n"
            f'[web]\nport = {web_port}\npublic_url = "http://127.0.0.1:{web_port}"\n'
            f'[sms]\nprovider = "africastalking"\nbase_url = "http://127.0.0.1:{sim_port}"\n'
            'username = "sandbox"\napi_key = "sim-at-api-key"\n'
            f"rate_per_minute = {args.rate_per_minute}\n"
            f"process = {str(args.sender == 'process').lower()}\n"
            'quiet_start = "00:00"\nquiet_end = "00:00"\n'
        )
        path = tmp / "jasiyo.toml"
        path.write_text(text)
        cfg = config.parse(text, tmp, path)
        init_store(cfg)
        store = Store.open(cfg)
        demo.seed(store, cfg, "bench", users=args.messages)
        prepare(store)
        dlr = smsops.callback_urls(store, cfg)["sms-dlr"]
        log = (tmp / "sim.log").open("wb")
        procs.append(
            subprocess.Popen(
                [
                    *JASIYO,
                    "dev",
                    "sms-sim",
                    "--port",
                    str(sim_port),
                    "--dlr-url",
                    dlr,
                    "--callback-delay",
                    "0.5",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        wait_ready(lambda: _up(sim_port), procs[-1], 30)

        if not args.skip_drain:
            queue(store, args.messages, "a")
            gw = gateway(cfg)
            assert gw is not None
            sender = Sender(cfg, store, gw)
            t = time.perf_counter()
            while done(store) < args.messages:
                sender.step(500)
            took = time.perf_counter() - t
            gw.close()
            print(
                f"drain alone: {args.messages} messages in {took:.1f} s = "
                f"{args.messages / took:.0f} msg/s (one HTTP request each, cap "
                f"{args.rate_per_minute}/min)"
            )

        store.conn.execute(
            "UPDATE notifications SET status = 'delivered' WHERE status != 'delivered'"
        )  # phase 1 is over
        store.close()
        alog = (tmp / "agent.log").open("wb")
        agent = subprocess.Popen(
            [*JASIYO, "--config", str(path), "agent", "run"], stdout=alog, stderr=subprocess.STDOUT
        )
        procs.append(agent)
        target = Target("jasiyo", "127.0.0.1", auth, acct, demo.DEMO_SECRET, agent.pid)
        codec = Codec(demo.DEMO_SECRET, args.messages)
        if not wait_ready(lambda: probe(target, codec, 0, timeout=0.3)[0] == 2, agent, 60):
            raise SystemExit("the agent did not answer RADIUS:\n" + (tmp / "agent.log").read_text()[-1500:])
        # The same agent, after its start-up work, first with an empty outbox...
        idle = run_load(target, codec, "auth", args.window, args.duration)
        print(f"RADIUS, outbox empty:   {idle.line()}")
        store = Store.open(cfg)
        base_done = done(store)
        queue(store, args.messages, "b")  # ...then with N reminders to drain
        t0, d0 = time.perf_counter(), done(store) - base_done
        during = run_load(target, codec, "auth", args.window, args.duration)
        t1, d1 = time.perf_counter(), done(store) - base_done
        print(f"RADIUS, while draining: {during.line()}")
        print(
            f"agent run: {d1 - d0} sent during the {t1 - t0:.1f} s of load = "
            f"{(d1 - d0) / (t1 - t0):.0f} msg/s (cap {args.rate_per_minute}/min)"
        )
        deadline = time.monotonic() + args.wait
        while done(store) - base_done < args.messages and time.monotonic() < deadline:
            time.sleep(0.5)
        total = done(store) - base_done
        took = time.perf_counter() - t0
        print(
            f"agent run: {total}/{args.messages} sent {took:.1f} s after queueing "
            f"({total / took:.0f} msg/s overall)"
        )
        retried = store.scalar("SELECT count(*) FROM notifications WHERE attempts > 1")
        msgs = httpx.get(f"http://127.0.0.1:{sim_port}/sim/messages", timeout=60).json()
        expected = (0 if args.skip_drain else args.messages) + total
        print(
            f"simulator: {len(msgs)} messages received (at least {expected}); "
            f"{retried} needed more than one attempt"
        )
        store.close()
        print(
            json.dumps(
                {
                    "sender": args.sender,
                    "workers": args.workers,
                    "during_p99_ms": during.p99_ms,
                    "idle_p99_ms": idle.p99_ms,
                    "during_rps": during.rps,
                    "idle_rps": idle.rps,
                }
            )
        )
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def _up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/sim/faults", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
