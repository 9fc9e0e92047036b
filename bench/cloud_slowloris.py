"""The cloud under slowloris and long-poll load: does /v1/health keep answering quickly?

    .venv/bin/python bench/cloud_slowloris.py [--slow 1100] [--polls 600] [--probes 20]
                                              [--probe-in-loop] [--trace] [--nice -10]

Starts `jasiyo cloud serve` (SQLite) with ``ulimit -n 1024`` (systemd's default), opens
``--slow`` slowloris connections from 127.0.0.2 (they reconnect whenever closed) and
``--polls`` signed long-polls from 127.0.1.1-10, probes /v1/health from 127.0.0.1 with a
fresh connection each time (from a process of its own, as a monitor on another host),
then pushes one event and times how long all the long-polls take to answer. Prints
figures; nothing passes or fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cloud.slowload import cloud_process, raise_own_fd_limit, run_load


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slow", type=int, default=1100)
    ap.add_argument("--polls", type=int, default=600)
    ap.add_argument("--probes", type=int, default=20)
    ap.add_argument("--nofile", type=int, default=1024, help="the cloud's ulimit -n")
    ap.add_argument(
        "--probe-in-loop",
        action="store_true",
        help="time the probes in the load's own event loop (as before: slower)",
    )
    ap.add_argument("--trace", action="store_true", help="print every probe over 20 ms")
    ap.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run the bench and the cloud at this niceness (root: -10 on a shared "
        "machine; also sets this session's autogroup nice)",
    )
    args = ap.parse_args()
    raise_own_fd_limit(args.slow + args.polls * 2 + 256)
    if args.nice:
        os.nice(args.nice)
        with contextlib.suppress(OSError):  # autogroup scheduling: the session's share
            Path("/proc/self/autogroup").write_text(str(args.nice))
    print(
        f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
        + (f", nice {args.nice}" if args.nice else "")
    )
    with tempfile.TemporaryDirectory() as d, cloud_process(Path(d), args.nofile) as target:
        began = time.time()
        r = asyncio.run(
            run_load(target, args.slow, args.polls, args.probes, probe_in_loop=args.probe_in_loop)
        )
    h = sorted(r.health_ms)
    print(
        f"cloud ulimit -n {args.nofile}; {args.slow} slowloris connections (one address), "
        f"{args.polls} long-polls (ten addresses)"
    )
    print(
        f"slow connections: peak open {r.slow_peak}, open during probes "
        f"{r.slow_during_probes}, refused or closed {r.slow_refused}"
    )
    if r.push_error:
        print(f"the push that should wake the long-polls failed: {r.push_error}")
    print(
        f"long-polls: {r.polls_started} started, {r.polls_answered} answered with the pushed "
        f"event, all within {r.wake_ms:.0f} ms of the push; answers {r.poll_status}"
    )
    if h:
        print(
            f"/v1/health: {len(h)} ok, {r.health_failed} failed; p50 "
            f"{statistics.median(h):.1f} ms, p95 {h[max(0, int(len(h) * 0.95) - 1)]:.1f} ms, "
            f"max {h[-1]:.1f} ms"
        )
    else:
        print(f"/v1/health: no answer ({r.health_failed} failed)")
    if args.trace:
        for at, ms in r.health_trace:
            if ms > 20:
                print(f"  probe at +{at - began:.2f} s: {ms:.1f} ms")


if __name__ == "__main__":
    main()
