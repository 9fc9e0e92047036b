"""Voucher generation: N codes into a store (with their sync events), and the A4 sheet.

    .venv/bin/python bench/vouchers.py [--count 10000] [--repeat 3] [--keep]

Builds a throw-away store (real schema, migrations, triggers) with one hotspot plan, then
times ``vouchers.generate`` (codes drawn with ``secrets``, checked unique, inserted with
one sync event each and an audit line, in one transaction), reading them back, and
``voucher_pdf.sheet`` (24 cards per A4 page, fpdf2). Prints the best and median of
``--repeat`` runs, each into a fresh store, and the sheet's size and page count.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jasiyo.agent import plans, voucher_pdf, vouchers
from jasiyo.agent.store import Store, init_store
from jasiyo.config import parse


def one_run(where: Path, count: int) -> dict[str, float]:
    cfg = parse('[agent]\ndata_dir = "data"\nbusiness_name = "Bench Wi-Fi"\n', where, where / "jasiyo.toml")
    init_store(cfg)
    store = Store.open(cfg)
    plans.add(
        store, plans.build("24h", rate="5M/5M", price="50", period="24h", data="2G", portal=True), "bench"
    )
    t0 = time.perf_counter()
    codes = vouchers.generate(store, "24h", count, "bench")
    t1 = time.perf_counter()
    items = vouchers.list_(store)
    t2 = time.perf_counter()
    pdf = voucher_pdf.sheet(cfg, items)
    t3 = time.perf_counter()
    assert len(set(codes)) == count == len(items)
    store.close()
    return {
        "generate": t1 - t0,
        "read": t2 - t1,
        "sheet": t3 - t2,
        "bytes": len(pdf),
        "pages": -(-count // (voucher_pdf.COLS * voucher_pdf.ROWS)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="jasiyo-bench-vouchers-") as tmp:
            runs.append(one_run(Path(tmp), args.count))
    print(f"vouchers: {args.count} codes, {args.repeat} run(s), fresh store each")
    for key, label in (
        ("generate", "generate (store + events)"),
        ("read", "read back"),
        ("sheet", "A4 sheet (PDF)"),
    ):
        vals = [r[key] for r in runs]
        print(
            f"  {label:28s} best {min(vals):7.3f} s  median {statistics.median(vals):7.3f} s"
            f"  ({args.count / min(vals):,.0f} codes/s)"
        )
    print(f"  sheet: {runs[0]['pages']} pages, {runs[0]['bytes'] / 1024:,.0f} KiB")


if __name__ == "__main__":
    main()
