"""What full durability costs a payment: ``payments.record`` with ``synchronous=NORMAL``
(WAL: a commit may be lost on power failure, never corrupted) against ``FULL`` (fsync of
the WAL before the commit returns), on this machine's disk.

    .venv/bin/python bench/payment_durability.py [--payments 500] [--dir DIR]

Each payment is a whole ``record``: payment row, ledger entry, a prepaid period bought
(invoice and its charge), the receipt SMS queued, events and audit, in one transaction.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jasiyo import config  # noqa: E402
from jasiyo.agent import imports, payments, plans  # noqa: E402
from jasiyo.agent import subscribers as subs  # noqa: E402
from jasiyo.agent.store import Store, init_store  # noqa: E402


def run(tmp: Path, mode: str, n: int) -> list[float]:
    root = tmp / mode
    root.mkdir()
    text = f'[agent]\ndata_dir = "{root / "data"}"\n'
    cfg = config.parse(text, root)
    init_store(cfg)
    store = Store.open(cfg, synchronous=mode)
    plans.add(store, plans.build("home", rate="10M/10M", price="1000"), "bench")
    imports.import_rows(
        store,
        [subs.NewSubscriber.build(f"c{i:05d}", password="pw", plan="home") for i in range(n)],
        "bench",
        cfg=cfg,
    )
    times = []
    for i in range(n):
        t = time.perf_counter()
        payments.record(store, cfg, f"c{i:05d}", 100000, f"DUR{i:07d}", method="mpesa", actor="bench")
        times.append(time.perf_counter() - t)
    store.close()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--payments", type=int, default=500)
    ap.add_argument("--dir", default=None, help="where the stores go (default: a temp dir)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="jasiyo-dur-", dir=args.dir))
    try:
        res = {m: run(tmp, m, args.payments) for m in ("NORMAL", "FULL")}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for mode, t in res.items():
        t.sort()
        print(
            f"synchronous={mode:6}  {args.payments} payments: mean "
            f"{statistics.mean(t) * 1000:.2f} ms  p50 {t[len(t) // 2] * 1000:.2f} ms  "
            f"p99 {t[int(len(t) * 0.99) - 1] * 1000:.2f} ms  ({len(t) / sum(t):.0f}/s)"
        )
    extra = statistics.mean(res["FULL"]) - statistics.mean(res["NORMAL"])
    print(f"full durability costs {extra * 1000:.2f} ms per payment")


if __name__ == "__main__":
    main()
