"""A failed disconnect says so; the enforcement queue keeps only the last
wanted state, per NAS, and can be listed, retried and cancelled."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from jasiyo.agent.store import Store
from jasiyo.config import Config
from tests.agent.billing_support import NasListener
from tests.support.cli import Cli

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def jasiyo(bcfg: Config, db: Store) -> Run:
    """`jasiyo --config <bcfg> ...` in process, over the ``db`` fixture's store."""
    return Cli(bcfg)


def test_disconnect_that_times_out_fails_and_says_why(jasiyo: Run, nas: NasListener) -> None:
    nas.mode = "silent"
    code, _, err = jasiyo("session", "disconnect", "alice")
    assert code == 1
    assert "0 of 1 session(s) disconnected" in err and "no answer from core-1" in err
    code, out, _ = jasiyo("--json", "session", "disconnect", "alice")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False and data["results"][0]["result"] == "timeout"


def test_disconnect_refused_names_the_error_cause(jasiyo: Run, nas: NasListener) -> None:
    nas.mode = "nak"
    code, _, err = jasiyo("session", "disconnect", "alice")
    assert code == 1 and "NAK, Error-Cause Unsupported-Attribute" in err


def test_disconnect_of_a_session_the_router_no_longer_has_succeeds(
    jasiyo: Run,
    nas: NasListener,
) -> None:
    nas.mode = "nak503"
    code, out, _ = jasiyo("session", "disconnect", "alice")
    assert code == 0 and "1 of 1 session(s) disconnected" in out
    assert jasiyo("--json", "session", "list", "--active")[1].strip() == "[]"


def test_disconnect_acked(jasiyo: Run, nas: NasListener) -> None:
    code, out, _ = jasiyo("--json", "session", "disconnect", "alice")
    assert code == 0 and json.loads(out)["ok"] is True


def _pending(db: Store) -> list[dict]:
    return db.all(
        "SELECT id, action, acct_session_id FROM enforce_jobs "
        "WHERE status = 'pending' AND action != 'reconcile' ORDER BY id"
    )


def test_suspend_then_resume_leaves_one_disconnect(
    db: Store,
    bcfg: Config,
    nas: NasListener,
) -> None:
    import asyncio

    from jasiyo.agent import enforce
    from jasiyo.agent import subscribers as subs

    nas.mode = "silent"
    subs.suspend(db, "alice", "noc", "abuse")
    asyncio.run(enforce.process_pending(db, bcfg))  # times out: retried later
    subs.resume(db, "alice", "noc")
    (job,) = _pending(db)
    assert job["action"] == "disconnect"
    old = db.one(
        "SELECT status, result FROM enforce_jobs WHERE id < ? AND action = "
        "'disconnect' ORDER BY id DESC LIMIT 1",
        (job["id"],),
    )
    assert old == {"status": "done", "result": "superseded"}
    nas.mode, nas.received[:] = "ack", []
    asyncio.run(enforce.process_pending(db, bcfg))
    assert nas.kinds() == ["disconnect"] and _pending(db) == []


def test_two_plan_changes_send_one_coa(db: Store, bcfg: Config, nas: NasListener) -> None:
    import asyncio

    from jasiyo.agent import billing, enforce

    billing.change_plan(db, "alice", "fast", "noc", bcfg)
    billing.change_plan(db, "alice", "home", "noc", bcfg)
    assert [j["action"] for j in _pending(db)] == ["coa"]
    asyncio.run(enforce.process_pending(db, bcfg))
    assert nas.kinds() == ["coa"]


def test_enforce_list_retry_cancel(jasiyo: Run, db: Store, nas: NasListener) -> None:
    from jasiyo.agent import subscribers as subs

    subs.suspend(db, "alice", "noc", "abuse")
    code, out, _ = jasiyo("--json", "enforce", "list", "--pending", "--user", "alice")
    (job,) = json.loads(out)
    assert code == 0 and job["action"] == "disconnect" and job["target"] == "127.0.0.1"
    code, out, _ = jasiyo("enforce", "cancel", str(job["id"]))
    assert code == 0 and "1 pending job(s) cancelled" in out
    code, out, _ = jasiyo("--json", "enforce", "list", "--failed")
    assert [j["result"] for j in json.loads(out)] == ["cancelled"]
    code, out, _ = jasiyo("enforce", "retry", "--user", "alice")
    assert code == 0 and "1 failed job(s) queued again" in out
    code, _, err = jasiyo("enforce", "retry", "999")
    assert code == 1 and "no enforcement job 999" in err
    assert jasiyo("enforce", "list")[0] == 0


def _two_nas(db: Store, bcfg: Config) -> None:
    """alice online at the real listener (127.0.0.1); bob at a router that never answers."""
    from jasiyo.agent import routers
    from jasiyo.agent import subscribers as subs
    from tests.agent.billing_support import add_sub, start_session

    routers.add(
        db,
        "far-1",
        driver="mikrotik",
        host="far-1.example",
        nas_ip="10.255.0.1",
        radius_secret="nas-secret-456",
        actor="t",
    )
    add_sub(db, "bob")
    start_session(db, "bob", "b-1", framed_ip="100.64.0.9", nas_ip="10.255.0.1")
    subs.suspend(db, "bob", "noc")
    subs.suspend(db, "alice", "noc")


def _sender_silent_at(address: str, bcfg: Config, release: object) -> object:
    """The real RADIUS sender, except that the NAS at ``address`` never answers (the test
    must not send packets beyond 127.0.0.1)."""
    from jasiyo.agent import enforce
    from jasiyo.radius import coa

    real = enforce.radius_sender(bcfg)

    async def send(action: str, nas_client: object, attrs: dict) -> coa.CoAResult:
        if nas_client.address == address:  # type: ignore[attr-defined]
            await release.wait()  # type: ignore[attr-defined]
            return coa.CoAResult(coa.CoAStatus.TIMEOUT, 1)
        return await real(action, nas_client, attrs)  # type: ignore[arg-type]

    return send


def test_a_silent_nas_does_not_delay_another_routers_disconnects(
    db: Store,
    bcfg: Config,
    nas: NasListener,
) -> None:
    import asyncio
    import time

    from jasiyo.agent import enforce

    _two_nas(db, bcfg)

    async def scenario() -> None:
        release = asyncio.Event()
        d = enforce.Dispatcher(db, bcfg, _sender_silent_at("10.255.0.1", bcfg, release))
        started = d.run_once()
        assert len([t for t in started if "nas:" in t.get_name()]) == 2
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            row = db.one(
                "SELECT status, result FROM enforce_jobs WHERE username = 'alice' AND action = 'disconnect'"
            )
            if row["status"] == "done":
                break
            await asyncio.sleep(0.02)
        assert row == {"status": "done", "result": "ack"}
        bob = db.one("SELECT status FROM enforce_jobs WHERE username = 'bob'")
        assert bob["status"] == "pending"  # still waiting for its own NAS
        assert not [t for t in d.run_once() if "10.255.0.1" in t.get_name()]  # no second worker
        release.set()
        await d.drain()

    asyncio.run(scenario())


def test_scheduler_log_stays_quiet_while_a_nas_is_silent(
    db: Store,
    bcfg: Config,
    nas: NasListener,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import asyncio
    import logging
    from dataclasses import replace

    from jasiyo.agent import scheduler
    from jasiyo.agent.store import Store as StoreCls

    _two_nas(db, bcfg)
    cfg = replace(bcfg, billing=replace(bcfg.billing, enforce_interval=0.02))

    async def scenario() -> None:
        release = asyncio.Event()
        jobs, close = scheduler.agent_jobs(
            cfg,
            lambda: StoreCls(cfg.db_path, db.box, now=db.now),
            send=_sender_silent_at("10.255.0.1", cfg, release),
        )
        sched = scheduler.build_scheduler({"enforce": jobs["enforce"]})
        sched.start()
        deadline = asyncio.get_running_loop().time() + 10
        while asyncio.get_running_loop().time() < deadline:
            if (
                db.scalar(
                    "SELECT status FROM enforce_jobs WHERE username = 'alice' AND action = 'disconnect'"
                )
                == "done"
            ):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # many more intervals while far-1 stays silent
        release.set()
        sched.shutdown(wait=False)
        await asyncio.sleep(0.05)
        close()

    with caplog.at_level(logging.WARNING, logger="apscheduler"):
        asyncio.run(scenario())
    assert not [r for r in caplog.records if "maximum number of running instances" in r.getMessage()]
