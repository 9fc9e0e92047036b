#!/usr/bin/env python3
"""The accounting writer's cost per record, load-independent: no sockets, one thread.

    .venv/bin/python bench/radius_acct_store.py                    # CPU us per record
    .venv/bin/python bench/radius_acct_store.py --profile          # + cProfile, top 25
    valgrind --tool=callgrind --toggle-collect=functools_reduce \
        .venv/bin/python bench/radius_acct_store.py --sessions 1000 --dir /tmp/acct-store
        # instructions of the writer's loop only: Ir / records = instructions per record

A demo store (``jasiyo init --demo``: router 127.0.0.1, 10,000 subscribers), then the
Accounting-Requests ``bench/radius_auth.py`` sends (Start, Interim-Update, Stop of one
session per user in turn, MikroTik attributes, counters past 4 GiB), decoded by
:func:`jasiyo.radius.accounting.decode_record` and stored by
``StoreBackend.record_accounting`` in batches of ``--batch`` (the group-commit writer's
batches at 64 outstanding are 20-60 records), chains interleaved as at a window of 64.
The first Start of each subscriber also learns its home router, as in the load bench
(``--homes-known`` measures the steady state, where every subscriber has one).

CPU time is the process's (``time.process_time``, the writer's thread only here); the
fsync of each commit is I/O, not counted. ``--dir``: a folder kept between runs, so that a
run under valgrind finds the demo store made (copy it first: every run adds records).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _radius_gen import Codec  # noqa: E402
from pyrad.packet import AcctPacket  # noqa: E402

from jasiyo.agent import demo  # noqa: E402
from jasiyo.agent.radius_backend import StoreBackend  # noqa: E402
from jasiyo.agent.store import Store, init_store  # noqa: E402
from jasiyo.config import parse  # noqa: E402
from jasiyo.radius.accounting import decode_record  # noqa: E402
from jasiyo.radius.backend import AcctRecord  # noqa: E402
from jasiyo.radius.dictionaries import load_dictionary  # noqa: E402

USERS = 10_000


def records(sessions: int, window: int) -> list[AcctRecord]:
    """Start/Interim/Stop of ``sessions`` sessions, ``window // 3`` chains interleaved."""
    codec = Codec("testing123", USERS)
    d = load_dictionary()
    out: list[AcctRecord] = []
    lanes = max(1, window // 3)
    now = time.time()
    for base in range(0, sessions, lanes):
        group = range(base, min(sessions, base + lanes))
        for step in range(3):
            for s in group:
                data, _ = codec.accounting_request(s % 256, s % USERS, f"bench-{s:08x}".encode(), step)
                pkt = AcctPacket(secret=b"testing123", dict=d, packet=data)
                out.append(decode_record(pkt, "127.0.0.1", now + len(out) * 1e-4))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=6000, help="sessions (3 records each)")
    ap.add_argument("--batch", type=int, default=32, help="records per record_accounting call")
    ap.add_argument("--window", type=int, default=64, help="outstanding requests interleaved")
    ap.add_argument("--homes-known", action="store_true", help="give every subscriber a home first")
    ap.add_argument("--profile", action="store_true", help="print cProfile's top 25 (cumulative)")
    ap.add_argument("--dir", help="work here instead of a temp dir")
    args = ap.parse_args()

    work = Path(args.dir or tempfile.mkdtemp(prefix="jasiyo-acct-store-"))
    cfg = parse('[agent]\ndata_dir = "./data"\nname = "bench"\n', work)
    init_store(cfg)
    store = Store.open(cfg)
    try:
        demo.seed(store, cfg, "bench", USERS)
        if args.homes_known:
            store.execute("UPDATE subscribers SET home_router = ?, home_pop = ''", (demo.DEMO_ROUTER,))
    finally:
        store.close()
    backend = StoreBackend(cfg, Store.open(cfg).box)
    backend.record_accounting([])  # opens the writer's connection outside the measurement
    recs = records(args.sessions, args.window)
    batches = [recs[i : i + args.batch] for i in range(0, len(recs), args.batch)]

    prof = cProfile.Profile() if args.profile else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if prof:
        prof.enable()
    # through functools.reduce, a C function: callgrind --toggle-collect=functools_reduce
    # counts the instructions of this loop and of nothing else
    functools.reduce(lambda _, b: backend.record_accounting(b), batches, None)
    if prof:
        prof.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    backend.close()
    n = max(1, len(recs))
    print(
        f"{len(recs)} records in {len(batches)} batches of {args.batch}: "
        f"{cpu / n * 1e6:.1f} us CPU/record, {wall / n * 1e6:.1f} us wall/record "
        f"({wall:.2f} s wall, fsync included){' [profiled]' if prof else ''}"
    )
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
