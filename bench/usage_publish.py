"""What sharing usage between POPs costs: ``usage_sync.publish`` (the scheduler's minute
job) over N subscribers who each had a session move in the last minute, then the billing
clock's quota check reading every POP's usage.

    .venv/bin/python bench/usage_publish.py [--subscribers 10000]

Prints the seconds for the first publish (N summaries written: N events), a second one
with nothing changed (no event), one after every session grew (deferred: a summary is
rewritten at most every 15 minutes), the same 15 minutes later, and ``check_quotas``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jasiyo import config  # noqa: E402
from jasiyo.agent import imports, payments, plans, usage, usage_sync  # noqa: E402
from jasiyo.agent import subscribers as subs  # noqa: E402
from jasiyo.agent.radius_backend import open_backend  # noqa: E402
from jasiyo.agent.store import Store, init_store  # noqa: E402
from jasiyo.radius.backend import AcctRecord  # noqa: E402


def timed(fn) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subscribers", type=int, default=10_000)
    args = ap.parse_args()
    n = args.subscribers
    tmp = Path(tempfile.mkdtemp(prefix="jasiyo-usage-"))
    try:
        cfg = config.parse(f'[agent]\ndata_dir = "{tmp / "data"}"\nname = "BENCH1"\n', tmp)
        init_store(cfg)
        store = Store.open(cfg)
        with store.transaction():  # as if enrolled: publish only runs with other POPs
            store.set_meta("sync.tenant_id", "bench-tenant")
        plans.add(store, plans.build("home", rate="10M/10M", price="1000", quota="100G",
                                     fup_rate="1M/1M"), "bench")
        imports.import_rows(store, [subs.NewSubscriber.build(f"c{i:05d}", password="pw",
                                                             plan="home") for i in range(n)],
                            "bench", cfg=cfg)
        for i in range(n):
            payments.record(store, cfg, f"c{i:05d}", 100000, f"USE{i:07d}", method="mpesa",
                            actor="bench")
        be = open_backend(cfg)
        now = time.time()
        be.record_accounting([AcctRecord("127.0.0.1", "Start", now, acct_session_id=f"s{i}",
                                         username=f"c{i:05d}") for i in range(n)])
        be.record_accounting([AcctRecord("127.0.0.1", "Interim-Update", now + 1,
                                         acct_session_id=f"s{i}", username=f"c{i:05d}",
                                         session_time=60, input_octets=10**6,
                                         output_octets=10**7) for i in range(n)])
        first, written = timed(lambda: usage_sync.publish(store))
        again, none = timed(lambda: usage_sync.publish(store))
        be.record_accounting([AcctRecord("127.0.0.1", "Interim-Update", now + 2,
                                         acct_session_id=f"s{i}", username=f"c{i:05d}",
                                         session_time=120, input_octets=2 * 10**6,
                                         output_octets=2 * 10**7) for i in range(n)])
        grown, deferred = timed(lambda: usage_sync.publish(store))
        later, rewritten = timed(lambda: usage_sync.publish(store, time.time()
                                                           + usage_sync.SUMMARY_GAP + 1))
        quotas, _ = timed(lambda: usage.check_quotas(store, time.time()))
        be.close()
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"usage_publish: {n} subscribers with a session that moved")
    print(f"  first publish      {first:7.3f} s  ({written} summaries)")
    print(f"  nothing changed    {again:7.3f} s  ({none} summaries)")
    print(f"  every session grew {grown:7.3f} s  ({deferred} summaries: deferred, "
          f"rewritten at most every {usage_sync.SUMMARY_GAP:.0f} s)")
    print(f"  15 minutes later   {later:7.3f} s  ({rewritten} summaries)")
    print(f"  check_quotas       {quotas:7.3f} s")


if __name__ == "__main__":
    main()
