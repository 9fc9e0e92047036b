"""The store-backed RADIUS backend: accounting semantics on the real SQLite store."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from jasiyo.agent import plans, retention, routers, sessions
from jasiyo.agent import subscribers as subs
from jasiyo.agent.keys import SecretBox, load_key
from jasiyo.agent.radius_backend import StoreBackend
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.radius.backend import AcctRecord

NAS = "127.0.0.1"


def rec(status: str, sid: str = "", t: float = 1000.0, **kw: object) -> AcctRecord:
    return AcctRecord(nas_address=NAS, status_type=status, received_at=t, acct_session_id=sid,
                      username="alice", **kw)  # type: ignore[arg-type]


def _backend(cfg: Config) -> StoreBackend:
    return StoreBackend(cfg, SecretBox(load_key(cfg.key_path)))


def _status(store: Store, sid: str) -> str:
    return store.scalar("SELECT status FROM radius_sessions WHERE acct_session_id = ?", (sid,))


def test_every_nas_reboot_closes_sessions(cfg: Config, store: Store) -> None:
    b = _backend(cfg)
    b.record_accounting([rec("Accounting-On", t=1000), rec("Start", "s1", t=1001)])
    b.record_accounting([rec("Accounting-On", t=2000)])
    assert _status(store, "s1") == "closed"
    b.record_accounting([rec("Start", "s3", t=3000)])
    b.record_accounting([rec("Accounting-On", t=4000)])  # a second reboot, not a retransmission
    assert _status(store, "s3") == "closed"
    # an On retransmitted with its Acct-Delay-Time updated is still one On
    b.record_accounting([rec("Accounting-On", t=4003, delay_time=3)])
    assert store.scalar("SELECT count(*) FROM accounting WHERE status_type = 'Accounting-On'") == 3
    b.close()


def test_stale_session_heard_from_again_is_reopened(cfg: Config, store: Store) -> None:
    b = _backend(cfg)
    now = time.time()
    b.record_accounting([rec("Start", "s1", t=now - 3600)])
    assert sessions.close_stale(store, cfg, now=now) == 1
    assert _status(store, "s1") == "stale"
    b.record_accounting([rec("Interim-Update", "s1", t=now, session_time=3600, input_octets=5)])
    row = store.one("SELECT status, stopped_at, input_octets FROM radius_sessions")
    assert row == {"status": "active", "stopped_at": None, "input_octets": 5}
    b.record_accounting([rec("Stop", "s1", t=now + 10, session_time=3610, input_octets=9)])
    b.record_accounting([rec("Interim-Update", "s1", t=now + 5, session_time=3605)])  # late
    assert _status(store, "s1") == "closed"
    b.close()


@pytest.mark.slow  # holds the write lock past the 5 s busy timeout, by design
def test_accounting_waits_for_a_long_cli_transaction_instead_of_failing(
    cfg: Config, store: Store
) -> None:
    plans.add(store, plans.build("home", rate="1M", price="1"), "t")
    routers.add(store, "r", driver="mikrotik", host=NAS, radius_secret="testing123", actor="t")
    b = _backend(cfg)
    done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            b.record_accounting([rec("Start", "during-import", t=time.time())])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        done.set()

    holder = Store.open(cfg)
    with holder.transaction():  # a CLI import holding the write lock past the 5 s default
        subs.add(holder, subs.NewSubscriber.build("bob", password="pw", plan="home"), "t")
        t = threading.Thread(target=write)
        t.start()
        assert not done.wait(6.0)
    t.join(30)
    holder.close()
    assert not errors and done.is_set()
    assert _status(store, "during-import") == "active"
    b.close()
    conn = sqlite3.connect(cfg.db_path)
    assert conn.execute("SELECT count(*) FROM accounting").fetchone()[0] == 1
    conn.close()


def test_retention_prunes_old_accounting_but_not_open_sessions(cfg: Config, store: Store) -> None:
    b = _backend(cfg)
    day = 86400.0
    now = 1000 * day
    b.record_accounting([rec("Start", "old", t=now - 500 * day),
                         rec("Stop", "old", t=now - 499 * day, session_time=86400),
                         rec("Start", "long-lived", t=now - 450 * day),
                         rec("Start", "new", t=now - day)])
    removed = retention.prune(store, cfg, now=now)  # accounting and sessions: 400 days
    assert removed["accounting"] == 3 and removed["sessions"] == 1
    left = {r["acct_session_id"]: r["status"] for r in store.all("SELECT * FROM radius_sessions")}
    assert left == {"long-lived": "active", "new": "active"}  # an open session is kept
    assert store.scalar("SELECT count(*) FROM accounting") == 1
    b.close()


def test_removing_a_subscriber_queues_a_disconnect(cfg: Config, store: Store) -> None:
    plans.add(store, plans.build("home", rate="1M", price="1"), "t")
    subs.add(store, subs.NewSubscriber.build("alice", password="pw", plan="home"), "t")
    b = _backend(cfg)
    b.record_accounting([rec("Start", "s9", t=time.time())])
    subs.remove(store, "alice", "t")
    jobs = store.all("SELECT username, action, acct_session_id, status FROM enforce_jobs")
    assert jobs == [{"username": "alice", "action": "disconnect", "acct_session_id": "s9",
                     "status": "pending"}]
    b.close()


def test_one_unreadable_row_does_not_stop_radius(cfg: Config, store: Store) -> None:
    plans.add(store, plans.build("home", rate="1M", price="1"), "t")
    for name in ("alice", "bob"):
        subs.add(store, subs.NewSubscriber.build(name, password=f"{name}-pw", plan="home"), "t")
    routers.add(store, "r1", driver="mikrotik", host="10.0.0.1", radius_secret="secret-one-1",
                actor="t")
    routers.add(store, "r2", driver="mikrotik", host="10.0.0.2", radius_secret="secret-two-2",
                actor="t")
    store.conn.execute("UPDATE routers SET radius_secret_enc = x'00' WHERE name = 'r2'")
    store.conn.execute("UPDATE subscribers SET password_enc = x'00' WHERE username = 'bob'")
    b = _backend(cfg)
    assert b.warm() == 1
    assert b.nas("10.0.0.1") is not None and b.nas("10.0.0.2") is None
    assert b.subject("alice") is not None and b.subject("bob") is None
    b.close()
