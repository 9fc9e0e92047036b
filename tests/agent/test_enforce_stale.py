"""Sessions marked stale while the agent was down still get Disconnects and CoAs."""

from __future__ import annotations

import asyncio

from jasiyo.agent import billing, enforce, sessions
from jasiyo.agent import subscribers as subs
from jasiyo.agent.keys import SecretBox, load_key
from jasiyo.agent.radius_backend import StoreBackend
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.radius.backend import AcctRecord
from tests.agent.billing_support import DAY, T0, Clock, NasListener


def run(db: Store, cfg: Config) -> int:
    return asyncio.run(enforce.process_pending(db, cfg))


def test_subscriber_expiring_while_the_agent_was_down_is_disconnected(
    db: Store,
    bcfg: Config,
    clock: Clock,
    nas: NasListener,
) -> None:
    # alice paid until T0 + 30 d and is online; the agent is down from 29.9 d to 30.5 d
    clock.set(T0 + 30.5 * DAY)
    assert sessions.close_stale(db, bcfg) == 1  # the reaper runs first on start
    billing.tick(db, bcfg)
    assert subs.get(db, "alice").status == "suspended"
    run(db, bcfg)
    assert nas.kinds() == ["disconnect"]
    assert nas.received[0]["Acct-Session-Id"] == ["s-1"]


def test_interim_reopening_a_stale_session_of_a_suspended_subscriber_disconnects_it(
    db: Store,
    bcfg: Config,
    clock: Clock,
    nas: NasListener,
) -> None:
    clock.set(T0 + DAY)
    assert sessions.close_stale(db, bcfg) == 1
    subs.suspend(db, "alice", "noc", "abuse")
    with db.transaction():  # the Disconnect sent then was lost, or given up on long ago
        db.conn.execute("UPDATE enforce_jobs SET status = 'failed'")
    backend = StoreBackend(bcfg, SecretBox(load_key(bcfg.key_path)))
    try:
        backend.record_accounting(
            [
                AcctRecord(
                    nas_address="127.0.0.1",
                    status_type="Interim-Update",
                    received_at=clock(),
                    acct_session_id="s-1",
                    username="alice",
                    session_time=int(DAY),
                )
            ]
        )
    finally:
        backend.close()
    assert db.scalar("SELECT status FROM radius_sessions WHERE acct_session_id = 's-1'") == "active"
    run(db, bcfg)
    assert nas.kinds() == ["disconnect"]
