"""The accounting writer's two ways of storing records give the same store.

Runs of plain records (Interim-Updates, Stops, Starts of subscribers who already have a
home) are written with multi-row statements (:func:`jasiyo.agent.acct_rows.store_batch`),
the others record at a time, in their place. Both are run here on two stores with the
same batches, then every table accounting touches is compared.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from jasiyo.agent import plans, routers
from jasiyo.agent import subscribers as subs
from jasiyo.agent.acct_rows import store_batch
from jasiyo.agent.radius_backend import StoreBackend, _store_accounting
from jasiyo.agent.session_ips import address_nases
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.radius.accounting import GroupCommitWriter, PendingAcct
from jasiyo.radius.backend import AcctRecord
from tests.support.config import make_config

NAS = "127.0.0.1"
USERS = ["u1", "u2", "u3", "u4", "u5", "ghost", ""]


def _seed(cfg: Config) -> Store:
    store = Store.open(cfg)
    plans.add(store, plans.build("home", rate="1M", price="1"), "t")
    routers.add(store, "r1", driver="mikrotik", host=NAS, radius_secret="secret-one-1", actor="t")
    for name in USERS[:5]:
        subs.add(store, subs.NewSubscriber.build(name, password="pw", plan="home"), "t")
    store.execute("UPDATE subscribers SET home_router = 'r1' WHERE username IN ('u1', 'u2', 'u3')")
    return store


def _batches(seed: int) -> list[list[AcctRecord]]:
    rnd = random.Random(seed)
    sent: list[AcctRecord] = []
    out = []
    t = 1_700_000_000.123
    for _ in range(60):
        batch = []
        for _ in range(rnd.randint(1, 40)):
            t += rnd.random()
            if sent and rnd.random() < 0.1:
                batch.append(rnd.choice(sent))  # a retransmission, maybe in its own batch
                continue
            status = rnd.choice(["Start", "Interim-Update", "Interim-Update", "Stop"])
            if rnd.random() < 0.01:
                status = "Accounting-On"
            n = rnd.randint(0, 30)
            r = AcctRecord(
                nas_address=NAS,
                status_type=status,
                received_at=t,
                acct_session_id=f"s{n}" if n else "",
                username=rnd.choice(USERS),
                framed_ip=f"10.0.0.{n}" if n % 3 else "",
                calling_station_id="02:00:00:00:00:01",
                session_time=rnd.randint(0, 600),
                input_octets=rnd.randint(0, 1 << 40),
                output_octets=rnd.randint(0, 1 << 36),
                delay_time=rnd.choice([0, 0, 2]),
                terminate_cause="User-Request" if status == "Stop" else "",
            )
            sent.append(r)
            batch.append(r)
        out.append(batch)
    return out


def _tables(store: Store) -> dict[str, list[dict]]:
    return {
        "accounting": store.all("SELECT * FROM accounting ORDER BY id"),
        "radius_sessions": store.all("SELECT * FROM radius_sessions ORDER BY id"),
        "enforce_jobs": store.all(
            "SELECT username, action, router, nas_ip, acct_session_id, reason FROM enforce_jobs ORDER BY id"
        ),
        "subscribers": store.all("SELECT username, home_router, clock_pending FROM subscribers ORDER BY id"),
        "usage_rev": store.all("SELECT n FROM usage_rev"),
    }


def test_plain_batches_store_exactly_what_record_at_a_time_stores(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cfg_a, cfg_b = make_config(tmp_path / "a"), make_config(tmp_path / "b")
    a, b = _seed(cfg_a), _seed(cfg_b)
    plain = total = 0
    for batch in _batches(7):
        with a.transaction():
            plain += store_batch(a, batch, address_nases(a), lambda r: _store_accounting(a, r, cfg_a))
        total += len(batch)
        with b.transaction():
            for r in batch:
                _store_accounting(b, r, cfg_b)
    assert total / 2 < plain < total  # both ways were taken, in most batches
    assert _tables(a) == _tables(b)
    a.close()
    b.close()


def test_a_record_the_store_refuses_does_not_take_its_batch_down(cfg: Config, store: Store) -> None:
    """A counter past SQLite's integers (Gigawords near 2**32) is refused: the records
    batched with it are still stored and answered, it alone is left unanswered."""
    backend = StoreBackend(cfg, store.box)
    answered: list[str] = []
    unanswered: list[str] = []

    def rec(sid: str, octets: int = 5) -> PendingAcct:
        r = AcctRecord(NAS, "Start", 1000.0, sid, "u1", input_octets=octets)
        return PendingAcct(r, sid)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        writer = GroupCommitWriter(
            backend,
            loop,
            lambda batch: answered.extend(p.context for p in batch),
            lambda batch, exc: unanswered.extend(p.context for p in batch),
        )
        for item in (rec("s1"), rec("s2", octets=(1 << 64) - 1), rec("s3")):
            writer.submit(item)  # queued before the thread starts: one batch
        writer.start()
        await writer.stop()
        await asyncio.sleep(0)  # the writer's calls into the loop

    asyncio.run(run())
    backend.close()
    assert sorted(answered) == ["s1", "s3"] and unanswered == ["s2"]
    stored = store.all("SELECT acct_session_id FROM accounting ORDER BY id")
    assert [r["acct_session_id"] for r in stored] == ["s1", "s3"]
