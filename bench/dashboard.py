"""Dashboard benchmark: from opening the app to a usable subscriber list, for a tenant with
50,000 subscribers and 1,000,000 events; first open (from the snapshot) and reopen.

    .venv/bin/python bench/dashboard.py [--subscribers 50000] [--events 1000000] [--full-log]

The cloud runs in this process on 127.0.0.1 (SQLite). A real POP (an agent store enrolled
in it, holding the tenant key) writes one plan, subscriber and payment through the library,
and those events are the templates: the log is generated from them, sealed with the tenant
key and written straight into the cloud's store (pushing a million events over HTTP would
time the push, not the dashboard). Then the log is compacted as the privacy issue's
snapshots do (jasiyo/agent/snapshot.py keeps, per row, the events whose fields no later
event overwrote, and every immutable record): the snapshot is sealed in parts and
committed, and the cloud drops the events it covers; a tail of events follows it.

In Debian's Chromium (headless, Playwright): sign in with the recovery file (first open:
the snapshot, then the tail), a search, then a reload and unlock (reopen: the sealed
IndexedDB cache, then the long-poll catches up). Times are from the click on "Sign in" or
"Unlock" to the list showing every subscriber, and to "up to date". ``--full-log`` also
times a first open before compaction (the browser opens every one of the events).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jasiyo import config  # noqa: E402
from jasiyo.agent import cloudlink, payments, plans, synclog, tenantkeys  # noqa: E402
from jasiyo.agent import subscribers as subs  # noqa: E402
from jasiyo.agent.store import Store, init_store  # noqa: E402
from jasiyo.cloud import admin  # noqa: E402
from jasiyo.cloud.app import CloudSettings  # noqa: E402
from jasiyo.cloud.backend import open_storage  # noqa: E402
from jasiyo.cloud.server import ThreadedServer, ensure_operator, new_operator_token  # noqa: E402
from jasiyo.sync.ids import uuid7  # noqa: E402
from jasiyo.sync.keyring import Keyring  # noqa: E402
from jasiyo.sync.snapshotfmt import encode  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
PASSPHRASE = "bench passphrase, long enough"
BATCH = 10_000
APPEND = {"payment", "ledger"}


class Log:
    """Sealed events in the order the cloud gets them, and what a snapshot keeps."""

    def __init__(self, storage: Any, tenant: str, origin: str, ring: Keyring, t0: float) -> None:
        self.storage, self.tenant, self.origin, self.ring = storage, tenant, origin, ring
        self.ms = int(t0 * 1000)
        self.n = 0
        self.rows: list[tuple[str, str, str]] = []
        #: (entity, key) -> its events, oldest first, as snapshot dicts.
        self.history: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def add(self, entity: str, key: str, op: str, data: dict[str, Any]) -> None:
        self.ms += 1
        self.n += 1
        ev = {
            "id": uuid7(),
            "hlc": f"{self.ms:015d}.{0:06d}.{self.origin}",
            "origin": self.origin,
            "entity": entity,
            "key": key,
            "op": op,
            "data": data,
        }
        plain = json.dumps(
            {k: ev[k] for k in ("hlc", "entity", "key", "op", "data")}, sort_keys=True, separators=(",", ":")
        ).encode()
        self.rows.append((ev["id"], self.origin, self.ring.seal(plain, ev["id"], self.origin)))
        self.history.setdefault((entity, key), []).append(ev)
        if len(self.rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.storage.push(self.tenant, self.rows, time.time())
            self.rows = []

    def kept(self) -> list[dict[str, Any]]:
        """As jasiyo.agent.snapshot._kept: per row, newest first, an event is kept unless a
        later one overwrote all its fields (state entities); every record is kept."""
        out: list[dict[str, Any]] = []
        for (entity, _), evs in self.history.items():
            if entity in APPEND:
                out.extend(evs)
                continue
            later: set[str] = set()
            row: list[dict[str, Any]] = []
            for ev in reversed(evs):
                fields = set(ev["data"])
                if not fields <= later:
                    row.append(ev)
                later |= fields
            out.extend(reversed(row))
        return out


def templates(tmp: Path, url: str, admin_token: str) -> tuple[config.Config, str, dict[str, dict[str, Any]]]:
    """A real POP writes a plan, a subscriber and a payment: their events' data, by entity."""
    cfg = config.parse(f'[agent]\ndata_dir = "{tmp / "pop"}"\nname = "bench-pop"\n', tmp)
    init_store(cfg)
    origin = cloudlink.enroll_agent(cfg, url, admin.issue_enrolment(url, admin_token)["token"])["agent_id"]
    tenantkeys.init_tenant(cfg)
    store = Store.open(cfg)
    try:
        plans.add(store, plans.build("home", rate="10M/10M", price="1500"), "bench")
        subs.add(
            store,
            subs.NewSubscriber.build("tpl", password="pw", plan="home", phone="0712000000", name="T"),
            "bench",
        )
        payments.record(store, cfg, "tpl", "1500", "TPL1", method="mpesa", actor="bench")
        out: dict[str, dict[str, Any]] = {}
        for ev in synclog.AgentLog(store).outbox(100):
            name = ev.entity if ev.entity != "ledger" else f"ledger:{ev.data.get('kind')}"
            out.setdefault(name, ev.data)
    finally:
        store.close()
    return cfg, origin, out


def generate(log: Log, tpl: dict[str, dict[str, Any]], n_subs: int, n_events: int, t0: float) -> list[str]:
    rng = random.Random(16)
    for name, price in (("home", 150000), ("fibre", 300000), ("lite", 80000)):
        log.add("plan", name, "upsert", {**tpl["plan"], "name": name, "price_minor": price})
    names = [f"user{i:06d}" for i in range(n_subs)]
    for i, u in enumerate(names):
        log.add(
            "subscriber",
            u,
            "upsert",
            {
                **tpl["subscriber"],
                "username": u,
                "password": f"pw-{i}",
                "plan": ("home", "fibre", "lite")[i % 3],
                "name": f"Customer {i}",
                "phone": f"+2547{i:08d}",
            },
        )
    pay = 0

    def payment(u: str) -> None:
        nonlocal pay
        pay += 1
        ref = f"BENCH{pay:09d}"
        at = t0 + pay * 20
        log.add(
            "payment",
            ref,
            "append",
            {**tpl["payment"], "reference": ref, "username": u, "amount_minor": 150000, "received_at": at},
        )
        log.add(
            "ledger",
            f"payment:{ref}",
            "append",
            {**tpl["ledger:payment"], "username": u, "reference": ref, "amount_minor": 150000, "at": at},
        )

    for u in names:
        payment(u)
    i = 0
    while log.n < n_events:
        i += 1
        u = names[rng.randrange(n_subs)]
        if i % 10 == 0 and log.n + 2 <= n_events:
            payment(u)
        elif i % 3 == 0:
            log.add("subscriber", u, "upsert", {"fup_active": bool(i % 2)})
        else:
            log.add("subscriber", u, "upsert", {"paid_until": t0 + i * 60})
    log.flush()
    return names


def compact(log: Log) -> tuple[int, int, float]:
    """Seal and commit a snapshot of the log so far: (events kept, events dropped, s)."""
    t = time.perf_counter()
    seq = log.storage.pull(log.tenant, 0, 1)[1]
    kept = log.kept()
    chunks = encode(kept)
    snap = uuid7()
    for i, chunk in enumerate(chunks):
        env = log.ring.seal(chunk, f"snapshot:{snap}:{i}", log.origin)
        log.storage.put_snapshot_part(log.tenant, snap, log.origin, seq, len(chunks), i, env, time.time())
    dropped = log.storage.commit_snapshot(log.tenant, snap, log.origin, [], time.time())
    return len(kept), int(dropped or 0), time.perf_counter() - t


def text_becomes(page: Any, selector: str, ok: Any, timeout: float = 60) -> None:
    """Poll the element's text (20 ms) until ``ok(text)``."""
    deadline = time.monotonic() + timeout
    while not ok(text := page.inner_text(selector)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{selector} still says {text!r}")
        time.sleep(0.02)


def browse(url: str, admin_token: str, recovery: Path, n_subs: int, full_log: bool) -> dict[str, float]:
    from playwright.sync_api import expect, sync_playwright

    everyone = f"of {n_subs:,} subscribers"
    out: dict[str, float] = {}

    def until_ready(page: Any, t: float, prefix: str) -> None:
        expect(page.locator("#sub-count")).to_contain_text(everyone, timeout=900_000)
        out[f"{prefix} list"] = time.perf_counter() - t
        print(f"  {prefix}: list in {out[f'{prefix} list']:.2f} s", flush=True)
        expect(page.locator("#sync-status")).to_have_text("up to date", timeout=900_000)
        out[f"{prefix} up to date"] = time.perf_counter() - t
        print(f"  {prefix}: up to date in {out[f'{prefix} up to date']:.2f} s", flush=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        try:
            page.goto(url + "/app/")
            page.fill("#admin-token", admin_token)
            page.fill("#dash-name", "bench")
            page.set_input_files("#recovery-file", str(recovery))
            page.fill("#new-pass", PASSPHRASE)
            page.fill("#new-pass2", PASSPHRASE)
            t = time.perf_counter()
            page.click("#signin-go")
            until_ready(page, t, "full log, first open" if full_log else "first open")
            if full_log:
                return out
            page.set_default_timeout(60_000)
            t = time.perf_counter()
            page.fill("#search", f"user{n_subs - 1:06d}")
            text_becomes(page, "#sub-count", lambda x: x.startswith("1–1 of 1 "))
            out["search one of all"] = time.perf_counter() - t
            t = time.perf_counter()
            page.fill("#search", "customer 4")
            text_becomes(page, "#sub-count", lambda x: "of 11,111 " in x)
            out["search many"] = time.perf_counter() - t
            t = time.perf_counter()
            page.click("#lock")  # saves the sealed cache, then a fresh page
            page.wait_for_selector("#unlock", timeout=900_000)
            out["lock (seal and store the cache)"] = time.perf_counter() - t
            print(f"  lock: {out['lock (seal and store the cache)']:.2f} s", flush=True)
            page.reload()
            page.wait_for_selector("#unlock")
            page.fill("#passphrase", PASSPHRASE)
            t = time.perf_counter()
            page.click("#unlock-go")
            expect(page.locator("#sub-count")).to_contain_text(everyone, timeout=900_000)
            out["reopen list"] = time.perf_counter() - t
            # Typing at once: the search waits while the page restores the whole fold.
            page.fill("#search", f"user{n_subs - 2:06d}")
            text_becomes(page, "#sub-count", lambda x: x.startswith("1–1 of 1 "))
            out["reopen: a search typed at once"] = time.perf_counter() - t
            page.fill("#search", "")
            expect(page.locator("#sync-status")).to_have_text("up to date", timeout=900_000)
            out["reopen up to date"] = time.perf_counter() - t
            view, shown, fold = (
                float(x) / 1000 for x in page.get_attribute("#sync-status", "data-open").split()
            )
            out["  in the page: open the list's cache"] = view
            out["  in the page: show the list"] = shown
            out["  in the page: restore the whole fold"] = fold
        except Exception:
            page.screenshot(path="/tmp/bench-dashboard-failure.png")
            print(f"(a screenshot of the page is in /tmp/bench-dashboard-failure.png; figures so far: {out})")
            raise
        finally:
            browser.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=50_000)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--tail", type=int, default=2_000, help="events after the snapshot")
    ap.add_argument("--full-log", action="store_true", help="also time a first open before compaction")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        storage = open_storage(str(tmp / "cloud.db"))
        storage.migrate()
        op = new_operator_token()
        ensure_operator(storage, op)
        server = ThreadedServer(storage, CloudSettings(rate=100_000, burst=100_000)).start()
        try:
            tenant = admin.create_tenant(server.url, op, "bench-dashboard")
            cfg, origin, tpl = templates(tmp, server.url, tenant["admin_token"])
            recovery = tmp / "recovery.json"
            tenantkeys.export_recovery(cfg, recovery)
            ring = Keyring.load(cloudlink.keyring_path(cfg))
            t0 = time.time() - 60 * 86400
            log = Log(storage, tenant["tenant_id"], origin, ring, t0)
            t = time.perf_counter()
            names = generate(log, tpl, args.subscribers, args.events, t0)
            print(
                f"generated and stored {log.n:,} sealed events in {time.perf_counter() - t:.1f} s", flush=True
            )
            figures: dict[str, float] = {}
            if args.full_log:
                figures.update(browse(server.url, tenant["admin_token"], recovery, args.subscribers, True))
            kept, dropped, secs = compact(log)
            print(
                f"snapshot: {kept:,} events kept, {dropped:,} dropped from the log, {secs:.1f} s", flush=True
            )
            rng = random.Random(1)
            for i in range(args.tail):
                log.add(
                    "subscriber", names[rng.randrange(len(names))], "upsert", {"paid_until": time.time() + i}
                )
            log.flush()
            print(f"tail: {args.tail:,} events after the snapshot", flush=True)
            figures.update(browse(server.url, tenant["admin_token"], recovery, args.subscribers, False))
        finally:
            # The page's long-poll is still waiting in the cloud: its cancellation is expected.
            logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
            server.stop()
            storage.close()
    print(f"\n{args.subscribers:,} subscribers, {args.events:,} events (+{args.tail:,} after the snapshot)")
    for name, secs in figures.items():
        print(f"  {name:<34} {secs:7.2f} s")


if __name__ == "__main__":
    main()
