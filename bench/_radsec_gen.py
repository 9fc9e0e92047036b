"""A RadSec (RFC 6614) load generator: PAP Access-Requests pipelined over TLS connections.

Same requests as bench/_radius_gen.py (its Codec, secret "radsec"), ``window`` outstanding
in all, spread over ``connections`` TLS connections (IDs 0-255 per connection). Replies are
matched by ID and only their code is checked (the UDP generator verifies signatures).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from array import array
from pathlib import Path

from _radius_gen import Codec, Result, Target, box_cpu, children, family_cpu


def _context(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(cert, key)
    ctx.check_hostname = False
    return ctx


async def _load(
    target: Target,
    codec: Codec,
    ctx: ssl.SSLContext,
    port: int,
    window: int,
    connections: int,
    warmup: float,
    duration: float,
) -> Result:
    conns = [await asyncio.open_connection("127.0.0.1", port, ssl=ctx) for _ in range(connections)]
    per = max(1, min(256, window // connections))
    lat = array("d")
    counts = {"accept": 0, "reject": 0, "other": 0}
    state = {"measuring": False, "sending": True, "sent": 0, "answered": 0}
    users = codec.users
    nxt = [0]
    t_measure = time.perf_counter() + warmup
    t_stop = t_measure + duration

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sent_at: dict[int, float] = {}
        free = list(range(256))
        credit = asyncio.Semaphore(per)

        async def send() -> None:
            while state["sending"]:
                await credit.acquire()
                if not state["sending"]:
                    break
                rid = free.pop()
                i = nxt[0]
                nxt[0] = (i + 1) % users
                pkt, _ = codec.access_request(rid, i)
                sent_at[rid] = time.perf_counter()
                writer.write(pkt)
                state["sent"] += 1
                if writer.transport.get_write_buffer_size() > 65536:
                    await writer.drain()

        sender = asyncio.create_task(send())
        try:
            while state["sending"] or sent_at:
                try:
                    head = await asyncio.wait_for(reader.readexactly(4), 2.0)
                    body = await reader.readexactly(int.from_bytes(head[2:4], "big") - 4)
                except (TimeoutError, asyncio.IncompleteReadError):
                    break
                t1 = time.perf_counter()
                rid = head[1]
                t0 = sent_at.pop(rid, None)
                free.append(rid)
                credit.release()
                state["answered"] += 1
                if t0 is None or not state["measuring"] or t1 > t_stop:
                    continue
                lat.append(t1 - t0)
                code = head[0]
                counts["accept" if code == 2 else "reject" if code == 3 else "other"] += 1
                del body
        finally:
            state["sending"] = False
            credit.release()
            await sender
            writer.close()

    tasks = [asyncio.create_task(one(r, w)) for r, w in conns]
    pids = [target.pid, *children(target.pid)] if target.pid else []
    await asyncio.sleep(max(0.0, t_measure - time.perf_counter()))
    state["measuring"] = True
    cpu0, srv0, box0 = os.times(), family_cpu(pids), box_cpu()
    await asyncio.sleep(max(0.0, t_stop - time.perf_counter()))
    cpu1, srv1, box1 = os.times(), family_cpu(pids), box_cpu()
    state["sending"] = False
    await asyncio.gather(*tasks, return_exceptions=True)
    done = len(lat)
    ordered = sorted(lat)

    def q(p: float) -> float:
        return ordered[min(done - 1, int(p * done))] * 1000 if done else 0.0

    srv_s = None if srv0 is None or srv1 is None else srv1 - srv0
    client = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return Result(
        label=f"{target.label}-radsec",
        workload="auth",
        window=window,
        duration=duration,
        rps=done / duration,
        p50_ms=q(0.5),
        p99_ms=q(0.99),
        accept=counts["accept"],
        reject=counts["reject"],
        other=counts["other"],
        sent_total=state["sent"],
        answered_total=state["answered"],
        client_cpu_pct=client / duration * 100,
        server_cpu_pct=None if srv_s is None else srv_s / duration * 100,
        server_us_per_req=None if srv_s is None or not done else srv_s / done * 1e6,
        box_busy_pct=(box1[0] - box0[0]) / max(1.0, box1[1] - box0[1]) * 100,
    )


def run_radsec_load(
    target: Target,
    users: int,
    port: int,
    ca: Path,
    cert: Path,
    key: Path,
    window: int,
    duration: float,
    warmup: float = 1.0,
    connections: int = 1,
) -> Result:
    """PAP over RadSec at ``window`` outstanding; figures cover ``duration`` only."""
    codec = Codec("radsec", users)
    return asyncio.run(
        _load(target, codec, _context(ca, cert, key), port, window, connections, warmup, duration)
    )
