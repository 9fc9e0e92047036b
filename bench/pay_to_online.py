"""Pay to online: from a provider's callback reaching the cloud to the customer restored and
the Disconnect sent to the NAS.

    .venv/bin/python bench/pay_to_online.py [--payments 200] [--burst 2000] [--burst-seconds 60]

Real processes on 127.0.0.1: `jasiyo cloud serve` (SQLite), an enrolled `jasiyo agent run`
(its payments worker long-polls the cloud's sealed webhooks), and in this process a NAS
that answers Disconnect-Requests and notes when each arrives. Every subscriber starts
suspended for non-payment with an open session, so a payment must restore them and kick
the walled-garden session.

1. **Latency.** One M-Pesa C2B confirmation at a time (the Daraja body shape, posted to the
   tenant's webhook URL as Safaricom would); from just before the POST to the Disconnect at
   the NAS. p50/p90/p99/max over ``--payments``.
2. **Month-end burst.** ``--burst`` confirmations for as many subscribers, spread over
   ``--burst-seconds``, plus ``--duplicates`` of them sent twice (Daraja retries); then
   waits for every Disconnect. Prints the drain time after the last callback and checks that
   each receipt was applied exactly once (payments = distinct receipts, no duplicate).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
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
from pyrad.packet import AcctPacket, CoAPacket, DisconnectACK, DisconnectRequest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jasiyo import config  # noqa: E402
from jasiyo.agent import charge, cloudlink, imports, paywork, plans, tenantkeys  # noqa: E402
from jasiyo.agent import subscribers as subs  # noqa: E402
from jasiyo.agent.store import Store, init_store  # noqa: E402
from jasiyo.cloud import admin  # noqa: E402
from jasiyo.cloud.server import new_operator_token  # noqa: E402
from jasiyo.radius.dictionaries import load_dictionary  # noqa: E402

SECRET = b"bench-nas-secret"
SHORTCODE = "174379"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nas:
    """Answers Disconnect-Requests with ACK; remembers when each user's first one came."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.first: dict[str, float] = {}
        self.count = 0
        self._stop = threading.Event()
        self._dict = load_dictionary()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            now = time.monotonic()
            pkt = CoAPacket(secret=SECRET, dict=self._dict, packet=data)
            if pkt.code != DisconnectRequest:
                continue
            user = pkt["User-Name"][0]
            self.first.setdefault(user, now)
            self.count += 1
            reply = pkt.CreateReply()
            reply.code = DisconnectACK
            self.sock.sendto(reply.ReplyPacket(), addr)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        self.sock.close()


def wait(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def c2b_doc(username: str, receipt: str, amount: int) -> bytes:
    return json.dumps(
        {
            "TransactionType": "Pay Bill",
            "TransID": receipt,
            "TransTime": time.strftime("%Y%m%d%H%M%S"),
            "TransAmount": f"{amount}.00",
            "BusinessShortCode": SHORTCODE,
            "BillRefNumber": username,
            "InvoiceNumber": "",
            "OrgAccountBalance": "",
            "ThirdPartyTransID": "",
            "MSISDN": "25470****149",
            "FirstName": "JOHN",
            "MiddleName": "",
            "LastName": "DOE",
        }
    ).encode()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--payments", type=int, default=200, help="latency samples (one at a time)")
    ap.add_argument("--burst", type=int, default=2000, help="callbacks in the month-end burst")
    ap.add_argument("--burst-seconds", type=float, default=60.0, help="spread the burst over")
    ap.add_argument("--duplicates", type=int, default=200, help="burst callbacks sent twice")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="jasiyo-pay-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    nas = Nas()
    try:
        op = new_operator_token()
        cport = free_port()
        cloud_url = f"http://127.0.0.1:{cport}"
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "jasiyo.cli",
                    "cloud",
                    "serve",
                    "--db",
                    str(tmp / "cloud.db"),
                    "--port",
                    str(cport),
                ],
                stdout=subprocess.DEVNULL,
                stderr=(tmp / "cloud.log").open("wb"),
                env={**os.environ, "JASIYO_OPERATOR_TOKEN": op},
            )
        )

        def cloud_up() -> bool:
            try:
                return httpx.get(cloud_url + "/v1/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait(cloud_up, 30, "the cloud")
        tenant = admin.create_tenant(cloud_url, op, "bench")
        auth, acct = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
        text = (
            f'[agent]\ndata_dir = "{tmp / "pop"}"\nlog_level = "info"\n'
            f"[radius]\nauth_port = {auth}\nacct_port = {acct}\n"
            "[sync]\ninterval = 1\n[web]\nport = 0\n[billing]\nenforce_interval = 0.2\n"
            f'[payments.mpesa]\nbase_url = "http://127.0.0.1:9"\nconsumer_key = "k"\n'
            f'consumer_secret = "s"\nshortcode = "{SHORTCODE}"\npasskey = "p"\n'
        )
        (tmp / "jasiyo.toml").write_text(text)
        cfg = config.parse(text, tmp, tmp / "jasiyo.toml")
        init_store(cfg)
        cloudlink.enroll_agent(
            cfg, cloud_url, admin.issue_enrolment(cloud_url, tenant["admin_token"])["token"]
        )
        tenantkeys.init_tenant(cfg)
        total = args.payments + args.burst
        names = [f"cust{n:05d}" for n in range(total)]
        store = Store.open(cfg)
        plans.add(store, plans.build("home", rate="10M/10M", price="1000"), "bench")
        imports.import_rows(
            store, [subs.NewSubscriber.build(n, password="pw", plan="home") for n in names], "bench", cfg=cfg
        )
        with store.transaction():
            store.conn.execute("UPDATE subscribers SET status = 'suspended', status_reason = 'expired'")
        store.close()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "jasiyo.cli",
                "--config",
                str(tmp / "jasiyo.toml"),
                "router",
                "add",
                "nas",
                "--driver",
                "mikrotik",
                "--host",
                "127.0.0.1",
                "--radius-secret",
                SECRET.decode(),
                "--coa-port",
                str(nas.port),
            ],
            check=True,
            capture_output=True,
        )
        store = Store.open(cfg)
        url = charge.callback_url(store, cfg, "mpesa-c2b", register=paywork.cloud_register(cfg, store))
        store.close()

        log = (tmp / "agent.log").open("wb")
        agent = subprocess.Popen(
            [sys.executable, "-m", "jasiyo.cli", "--config", str(tmp / "jasiyo.toml"), "agent", "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(agent)
        wait(
            lambda: b"web.start" in (tmp / "agent.log").read_bytes() or agent.poll() is not None,
            60,
            "the agent",
        )

        # Everyone online in the walled garden: an Accounting-Start each.
        d = load_dictionary()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            for i, name in enumerate(names):
                pkt = AcctPacket(secret=SECRET, dict=d)
                for k, v in (
                    ("User-Name", name),
                    ("Acct-Status-Type", "Start"),
                    ("Acct-Session-Id", f"b{i:07x}"),
                    ("NAS-IP-Address", "127.0.0.1"),
                    ("Framed-IP-Address", f"100.64.{i // 250}.{i % 250 + 1}"),
                ):
                    pkt.AddAttribute(k, v)
                s.sendto(pkt.RequestPacket(), ("127.0.0.1", acct))
                s.recv(4096)

        http = httpx.Client(timeout=30)
        # 1. latency, one at a time
        lat: list[float] = []
        for i in range(args.payments):
            name = names[i]
            t0 = time.monotonic()
            r = http.post(
                url, content=c2b_doc(name, f"LAT{i:07d}", 1000), headers={"content-type": "application/json"}
            )
            assert r.status_code == 200, r.text
            wait(lambda n=name: n in nas.first, 30, f"the Disconnect for {name}")
            lat.append(nas.first[name] - t0)
        print(
            f"pay to online, {len(lat)} payments one at a time (callback POST to the cloud -> "
            f"restored -> Disconnect at the NAS):"
        )
        print(
            f"  p50 {pct(lat, 50) * 1000:.0f} ms  p90 {pct(lat, 90) * 1000:.0f} ms  "
            f"p99 {pct(lat, 99) * 1000:.0f} ms  max {max(lat) * 1000:.0f} ms  "
            f"mean {statistics.mean(lat) * 1000:.0f} ms"
        )

        # 2. month-end burst, with Daraja-style repeats
        burst = names[args.payments :]
        docs = [(n, f"BST{i:07d}") for i, n in enumerate(burst)]
        docs += random.Random(7).sample(docs, min(args.duplicates, len(docs)))
        random.Random(8).shuffle(docs)
        gap = args.burst_seconds / max(1, len(docs))
        t_start = time.monotonic()
        errors = 0
        for k, (name, receipt) in enumerate(docs):
            due = t_start + k * gap
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            r = http.post(
                url, content=c2b_doc(name, receipt, 1000), headers={"content-type": "application/json"}
            )
            errors += r.status_code != 200
        t_sent = time.monotonic()
        wait(lambda: all(n in nas.first for n in burst), 600, "the burst's Disconnects")
        t_done = max(nas.first[n] for n in burst)
        agent.terminate()
        agent.wait(60)
        store = Store.open(cfg)
        paid = store.scalar("SELECT count(*) FROM payments WHERE reference LIKE 'BST%'")
        distinct = store.scalar("SELECT count(DISTINCT reference) FROM payments WHERE reference LIKE 'BST%'")
        inbox = dict(
            store.conn.execute("SELECT status, count(*) FROM payment_inbox GROUP BY status").fetchall()
        )
        restored = store.scalar("SELECT count(*) FROM subscribers WHERE status = 'active'")
        store.close()
        print(
            f"month-end burst: {len(docs)} callbacks ({len(burst)} receipts, "
            f"{len(docs) - len(burst)} repeated) over {t_sent - t_start:.1f} s, "
            f"{errors} refused by the cloud"
        )
        print(
            f"  drained {t_done - t_sent:.2f} s after the last callback; "
            f"{(t_done - t_start):.1f} s from the first"
        )
        print(
            f"  payments {paid} for {distinct} distinct receipts (expected {len(burst)}); "
            f"inbox {inbox}; {restored}/{total} subscribers restored"
        )
        ok = paid == distinct == len(burst) and restored == total
        print("  exactly once: " + ("yes" if ok else "NO"))
    finally:
        nas.close()
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
