#!/usr/bin/env python3
"""Micro-benchmark of the RADIUS server's per-packet CPU cost, and a loopback load run.

    .venv/bin/python bench/radius_micro.py              # in-process handler cost only
    .venv/bin/python bench/radius_micro.py --serve 18140 # serve 10,000 users for a load tool
    .venv/bin/python bench/radius_micro.py --load       # serve + ../shared/bench/radius_load.py

In-process: calls RadiusServer.datagram() directly (no sockets) with pre-built, distinct
Access-Requests (PAP + Message-Authenticator, like a MikroTik) and Accounting-Requests,
and prints microseconds of CPU per packet. Users: user00001..user10000 / pw-<n>, NAS
127.0.0.1 secret testing123, reply Mikrotik-Rate-Limit 10M/10M: the same as the shared
FreeRADIUS baseline, so figures compare.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pyrad.packet import AcctPacket, AuthPacket  # noqa: E402
from pyrad.server_async import ServerType  # noqa: E402

from jasiyo.network import Access, DesiredState, Service  # noqa: E402
from jasiyo.radius.backend import AuthSubject, NasClient  # noqa: E402
from jasiyo.radius.dictionaries import load_dictionary  # noqa: E402
from jasiyo.radius.memory import MemoryBackend  # noqa: E402
from jasiyo.radius.server import RadiusServer, _Protocol  # noqa: E402

SECRET = b"testing123"
USERS = 10_000


def backend() -> MemoryBackend:
    b = MemoryBackend()
    b.add_nas(NasClient("bench", "127.0.0.1", SECRET))
    for n in range(1, USERS + 1):
        name = f"user{n:05d}"
        st = DesiredState(name, Service.PPPOE, Access.ALLOW, "10M/10M", "bench")
        b.add_subject(AuthSubject(name, f"pw-{n}", st))
    return b


class Sink:
    def __init__(self) -> None:
        self.count = 0

    def sendto(self, data: bytes, addr: Any) -> None:
        self.count += 1

    def is_closing(self) -> bool:
        return False


def auth_packets(n: int) -> list[bytes]:
    d = load_dictionary()
    out = []
    for i in range(n):
        u = i % USERS + 1
        p = AuthPacket(secret=SECRET, dict=d, id=i % 256, message_authenticator=True)
        p.authenticator = os.urandom(16)
        p.AddAttribute("User-Name", f"user{u:05d}")
        p.AddAttribute("User-Password", p.PwCrypt(f"pw-{u}"))
        p.AddAttribute("NAS-IP-Address", "127.0.0.1")
        p.AddAttribute("NAS-Port-Type", "Ethernet")
        p.AddAttribute("Calling-Station-Id", "AA:BB:CC:DD:EE:FF")
        p.AddAttribute("Service-Type", "Framed-User")
        p.AddAttribute("Framed-Protocol", "PPP")
        out.append(p.RequestPacket())
    return out


def acct_packets(n: int) -> list[bytes]:
    d = load_dictionary()
    out = []
    for i in range(n):
        p = AcctPacket(secret=SECRET, dict=d, id=i % 256)
        p.AddAttribute("User-Name", f"user{i % USERS + 1:05d}")
        p.AddAttribute("Acct-Status-Type", "Interim-Update")
        p.AddAttribute("Acct-Session-Id", f"s{i}")
        p.AddAttribute("Acct-Input-Octets", i)
        p.AddAttribute("Acct-Output-Octets", 2 * i)
        p.AddAttribute("Acct-Session-Time", 60)
        out.append(p.RequestPacket())
    return out


async def micro(n: int) -> None:
    server = RadiusServer(backend(), "127.0.0.1", 0, 0)
    await server.start()
    try:
        for kind, packets, label in (
            (ServerType.Auth, auth_packets(n), "Access-Request PAP"),
            (ServerType.Acct, acct_packets(n), "Accounting-Request (to queue)"),
        ):
            proto = _Protocol("127.0.0.1", 0, server.logger, server, kind, {}, None)
            sink = Sink()
            proto.transport = sink
            t0 = time.process_time()
            for i, data in enumerate(packets):
                server.datagram(proto, data, ("127.0.0.1", 30000 + i % 20000))
            cpu = time.process_time() - t0
            await asyncio.sleep(0.5)  # let the writer commit and the replies go out
            print(f"{label:32s} {cpu / n * 1e6:7.1f} us CPU/packet  answered={sink.count}/{n}")
    finally:
        await server.stop()
    print("stats:", {k: v for k, v in server.stats.as_dict().items() if v})


async def serve(port: int) -> None:
    server = RadiusServer(backend(), "127.0.0.1", port, port + 10)
    await server.start()
    print(f"serving auth {server.auth_port} acct {server.acct_port} pid {os.getpid()}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def load(port: int, levels: str, duration: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        print(proc.stdout.readline().strip())  # type: ignore[union-attr]
        tool = ROOT.parent / "shared" / "bench" / "radius_load.py"
        base = [
            sys.executable,
            str(tool),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--acct-port",
            str(port + 10),
            "--secret",
            SECRET.decode(),
            "--server-pid",
            str(proc.pid),
            "-d",
            str(duration),
        ]
        subprocess.run(base + ["--probe"], check=False)
        subprocess.run(base + ["--conc-levels", levels, "--label", "jasiyo"], check=False)
        subprocess.run(base + ["--workload", "acct", "-c", "64", "--label", "jasiyo-acct"], check=False)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=20_000, help="packets per kind (in-process)")
    ap.add_argument("--serve", type=int, metavar="PORT")
    ap.add_argument("--load", action="store_true")
    ap.add_argument("--port", type=int, default=18140)
    ap.add_argument("--levels", default="1,16,64,256")
    ap.add_argument("--duration", type=int, default=5)
    a = ap.parse_args()
    if a.serve:
        asyncio.run(serve(a.serve))
    elif a.load:
        load(a.port, a.levels, a.duration)
    else:
        asyncio.run(micro(a.n))


if __name__ == "__main__":
    main()
