"""The dashboard's fold at a tenant's scale, in headless Chromium (Debian's build).

    .venv/bin/python bench/dashboard_fold.py                      # 50,000 subscribers, 1,000,000 events
    .venv/bin/python bench/dashboard_fold.py --events 200000 --json-out /tmp/fold.json

A real ``jasiyo cloud`` app serves the web app (/app/); the page
``vectors/bench.html`` makes synthetic events like the agents' (a plan, the subscribers,
paid-through updates, payments and their ledger entries) and prints: events opened per
second (AES-256-GCM through WebCrypto, on a sample), the fold of all events, the cache
(``Fold.toJSON``: size, IndexedDB put and get), the reopen (``Fold.fromJSON`` to the
subscriber rows, then their balances) and the first fold after a reopen.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def run(subscribers: int, events: int, sample: int) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    from jasiyo.cloud.app import CloudSettings
    from jasiyo.cloud.backend import open_storage
    from jasiyo.cloud.server import ThreadedServer

    with tempfile.TemporaryDirectory() as tmp:
        storage = open_storage(str(Path(tmp) / "cloud.db"))
        storage.migrate()
        server = ThreadedServer(storage, CloudSettings(rate=10_000, burst=10_000)).start()
        url = f"{server.url}/app/vectors/bench.html"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--no-sandbox", "--disable-gpu"],
                )
                try:
                    page = browser.new_page()
                    resp = page.goto(f"{url}#subscribers={subscribers}&events={events}&sample={sample}")
                    if resp is None or resp.status != 200:
                        status = resp.status if resp else "nothing"
                        return {"error": f"{url} answered {status} (jasiyo installed from another tree?)"}
                    page.wait_for_selector("#result[data-done]", state="attached", timeout=1_800_000)
                    result: dict[str, object] = json.loads(page.text_content("#result") or "{}")
                finally:
                    browser.close()
        finally:
            server.stop()
            storage.close()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=50_000)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--sample", type=int, default=20_000, help="events sealed and opened to time WebCrypto")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    result = run(args.subscribers, args.events, args.sample)
    if "error" in result:
        sys.exit(f"the page failed: {result['error']}")
    for k, v in result.items():
        print(f"{k:32} {v}")
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
