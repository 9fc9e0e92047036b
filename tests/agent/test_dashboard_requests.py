"""The dashboard's requests at one agent (issue 16): each action carried out once through the
library, with a result a person reads; refusals final and published; hostile values refused
with nothing stored; a request for another POP's subscriber left to that POP; a suspend
from the browser (a plain subscriber upsert) changes the RADIUS answer and queues the
Disconnect. Events arrive as they do from the cloud: through the agent's event log."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jasiyo.agent import payments, plans, pops, routers, synclog
from jasiyo.agent import requests as dash
from jasiyo.agent import subscribers as subs
from jasiyo.agent.radius_backend import StoreBackend
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.radius.policy import AuthMethod, AuthRequest, authorize
from jasiyo.sync.client import RemoteEvent
from jasiyo.sync.ids import uuid7
from tests.agent.billing_support import start_session
from tests.support.config import make_config

DASH = "0192f000-0000-7000-8000-00000000da5b"  # the dashboard's origin (its agent id)


@pytest.fixture
def dcfg(tmp_path: Path) -> Config:
    return make_config(tmp_path, suspended_action="reject")


@pytest.fixture
def pop(dcfg: Config) -> Iterator[Store]:
    """An enrolled POP (its name announced) with plans, a router and two subscribers."""
    s = Store.open(dcfg)
    with s.transaction():
        s.set_meta("sync.tenant_id", "tenant-1")
    s.close()
    s = Store.open(dcfg)  # announces the POP
    plans.add(s, plans.build("home", rate="10M/10M", price="1000"), "t")
    plans.add(s, plans.build("fast", rate="20M/20M", price="2000"), "t")
    routers.add(s, "r1", driver="mikrotik", host="127.0.0.1", radius_secret="secret-r1-1", actor="t")
    for u in ("alice", "bob"):
        subs.add(s, subs.NewSubscriber.build(u, password=f"{u}-pw-1", plan="home"), "t")
        pops.set_home(s, u, "r1", "t")
    yield s
    s.close()


_seq = [0]


def _event(entity: str, key: str, op: str, data: dict[str, Any], origin: str = DASH) -> RemoteEvent:
    wall = int(time.time() * 1000)
    _seq[0] += 1
    return RemoteEvent(uuid7(), f"{wall:015d}.{_seq[0]:06d}.{origin}", origin, entity, key, op, data)


def deliver(store: Store, cfg: Config, *events: RemoteEvent) -> None:
    """As the sync client does: apply a batch with the cursor at the cloud's head."""
    _seq[0] += 1
    head = str(10_000 + _seq[0])
    synclog.AgentLog(store, cfg).apply(list(events), {"sync.cursor": head, "sync.head": head})


def ask(store: Store, cfg: Config, action: str, key: str | None = None, **fields: Any) -> str:
    key = key or uuid7()
    data = {"action": action, "by": "front-desk", "at": time.time(), **fields}
    deliver(store, cfg, _event("request", key, "append", data))
    return key


def result(store: Store, key: str) -> dict[str, Any] | None:
    return store.one("SELECT status, message, pop FROM dashboard_results WHERE key = ?", (key,))


def results_emitted(store: Store, key: str) -> list[dict[str, Any]]:
    rows = store.all(
        "SELECT id, data FROM events WHERE entity = 'request_result' AND key = ? AND origin = ?",
        (key, store.agent_id),
    )
    return [store.event_data(r) for r in rows]


def money(store: Store) -> tuple[int, int]:
    return (store.scalar("SELECT count(*) FROM payments"), store.scalar("SELECT count(*) FROM ledger"))


def test_a_cash_payment_is_recorded_once_with_a_receipt_of_its_own(dcfg: Config, pop: Store) -> None:
    key = ask(pop, dcfg, "payment", username="alice", amount_minor=150000, note="paid at the desk")
    me = pop.meta("pop.name")
    r = result(pop, key)
    assert r is not None and r["status"] == "done" and r["pop"] == me
    receipt = f"CASH-{key.replace('-', '').upper()}"
    assert receipt in r["message"] and "KES 1,500.00 from alice" in r["message"]
    p = payments.get(pop, receipt)
    assert (p.username, p.amount_minor, p.method, p.recorded_by) == (
        "alice",
        150000,
        "cash",
        "dashboard:front-desk",
    )
    assert pop.scalar("SELECT count(*) FROM audit WHERE actor = 'dashboard:front-desk'") >= 2
    (published,) = results_emitted(pop, key)
    assert set(published) == {"status", "message", "pop", "at"} and published["status"] == "done"
    # The same request again (a replay, or the browser pushing it twice under a new event
    # id), a restart, another batch: nothing more.
    before = money(pop)
    ask(pop, dcfg, "payment", key=key, username="alice", amount_minor=150000)
    deliver(pop, dcfg)
    pop.close()
    again = Store.open(dcfg)
    try:
        deliver(again, dcfg)
        assert money(again) == before and len(results_emitted(again, key)) == 1
        assert again.scalar("SELECT count(*) FROM payments WHERE reference = ?", (receipt,)) == 1
    finally:
        again.close()


def test_plan_change_new_subscriber_resume_and_allocation(dcfg: Config, pop: Store) -> None:
    key = ask(pop, dcfg, "plan", username="alice", plan="fast")
    assert result(pop, key)["status"] == "done" and subs.get(pop, "alice").plan == "fast"

    key = ask(
        pop,
        dcfg,
        "subscriber.add",
        username="carol",
        password="carol-pw-1",
        plan="home",
        router="r1",
        phone="0712000111",
        name="Carol W",
    )
    assert result(pop, key)["status"] == "done", result(pop, key)
    carol = subs.get(pop, "carol")
    assert (carol.home_router, carol.home_pop, carol.phone, carol.name) == (
        "r1",
        pop.meta("pop.name"),
        "+254712000111",
        "Carol W",
    )
    assert subs.password_of(pop, "carol") == "carol-pw-1"

    subs.suspend(pop, "bob", "noc", "cheque bounced")
    key = ask(pop, dcfg, "resume", username="bob")
    assert result(pop, key)["status"] == "done" and subs.get(pop, "bob").status == "active"

    # An unmatched payment received at another POP arrives as state; allocated here.
    ref = "QXB2UNMATCHED"
    deliver(
        pop,
        dcfg,
        _event(
            "suspense",
            ref,
            "upsert",
            {
                "reference": ref,
                "provider": "mpesa",
                "amount_minor": 100000,
                "currency": "KES",
                "account": "b0b",
                "phone": "+254712000222",
                "reason": "no subscriber with account 'b0b'",
                "received_at": time.time() - 60,
                "status": "open",
                "allocated_to": None,
                "allocated_at": None,
                "allocated_by": None,
                "pop": "pop-elsewhere",
            },
            origin="0192f000-0000-7000-8000-0000000000b2",
        ),
    )
    assert pop.scalar("SELECT status FROM payment_suspense WHERE reference = ?", (ref,)) == "open"
    key = ask(pop, dcfg, "allocate", reference=ref.lower(), username="bob")
    assert result(pop, key)["status"] == "done", result(pop, key)
    assert payments.get(pop, ref).username == "bob"
    row = pop.one(
        "SELECT status, allocated_to, allocated_by FROM payment_suspense WHERE reference = ?", (ref,)
    )
    assert row == {"status": "allocated", "allocated_to": "bob", "allocated_by": "dashboard:front-desk"}
    ours = [
        pop.event_data(e)
        for e in pop.all(
            "SELECT id, data FROM events WHERE entity = 'suspense' AND origin = ?", (pop.agent_id,)
        )
    ]
    assert [(e["status"], e["allocated_to"], e["pop"], e["amount_minor"]) for e in ours] == [
        ("allocated", "bob", "pop-elsewhere", 100000)
    ]


@pytest.mark.parametrize(
    ("action", "fields", "says"),
    [
        ("payment", {"username": "nobody", "amount_minor": 100}, "no subscriber named 'nobody'"),
        ("payment", {"username": "alice", "amount_minor": 0}, "above 0"),
        ("payment", {"username": "alice", "amount_minor": -500}, "above 0"),
        ("payment", {"username": "alice", "amount_minor": 10**13}, "at most"),
        ("payment", {"username": "alice", "amount_minor": 12.5}, "whole number"),
        ("payment", {"username": "alice", "amount_minor": "1000"}, "whole number"),
        ("payment", {"username": "alice", "amount_minor": True}, "whole number"),
        ("payment", {"username": "alice", "amount_minor": 100, "method": "mpesa"}, "cash payments only"),
        (
            "payment",
            {"username": "alice", "amount_minor": 100, "reference": "QX\u0410B"},
            "bad payment reference",
        ),
        ("plan", {"username": "alice", "plan": "platinum"}, "platinum"),
        ("plan", {"username": "alice", "plan": "home"}, "already on plan"),
        ("resume", {"username": "alice"}, "already active"),
        ("allocate", {"username": "alice", "reference": "NOSUCH1"}, "no unmatched payment"),
        (
            "subscriber.add",
            {"username": "alice", "password": "pw-123456", "plan": "home", "router": "r1"},
            "already exists",
        ),
        (
            "subscriber.add",
            {"username": "dave", "password": "pw-123456", "plan": "home", "router": "no-such-router"},
            "no router named",
        ),
    ],
)
def test_a_refusal_is_final_and_published(
    dcfg: Config, pop: Store, action: str, fields: dict[str, Any], says: str
) -> None:
    before = (money(pop), pop.scalar("SELECT count(*) FROM subscribers"), subs.get(pop, "alice").plan)
    key = ask(pop, dcfg, action, **fields)
    r = result(pop, key)
    assert r is not None and r["status"] == "refused" and says in r["message"], r
    assert (money(pop), pop.scalar("SELECT count(*) FROM subscribers"), subs.get(pop, "alice").plan) == before
    assert pop.scalar("SELECT outcome FROM dashboard_runs WHERE key = ?", (key,)) == "refused"
    deliver(pop, dcfg)  # not retried
    assert len(results_emitted(pop, key)) == 1


HOSTILE = [
    ({"action": "drop-tables"}, "unknown action"),
    ({"action": "payment", "username": "alice", "amount_minor": 100, "is_admin": True}, "unknown field"),
    ({"action": "payment", "username": "alice\n", "amount_minor": 100}, "bad username"),
    ({"action": "payment", "username": "../../etc", "amount_minor": 100}, "bad username"),
    ({"action": "payment", "username": "a" * 5000, "amount_minor": 100}, "larger than"),
    ({"action": "payment", "username": "a" * 300, "amount_minor": 100}, "longer than"),
    ({"action": "payment", "username": ["alice"], "amount_minor": 100}, "must be a text"),
    ({"action": "payment", "username": "alice", "amount_minor": 100, "by": "desk\u202e"}, "text-direction"),
    ({"action": "payment", "username": "alice", "amount_minor": 100, "by": {"x": 1}}, "must be a text"),
    ({"action": "payment", "username": "alice", "amount_minor": 100, "note": "a\x00b"}, "control"),
    ({"action": "payment", "username": "alice", "amount_minor": 100, "at": "yesterday"}, "unix seconds"),
    ({"action": "plan", "username": "alice", "plan": "fast; DROP TABLE plans"}, "bad plan name"),
    (
        {
            "action": "subscriber.add",
            "username": "eve",
            "password": "pw",
            "plan": "home",
            "router": "r1",
            "ip": "999.1.1.1",
        },
        "IP",
    ),
    (
        {
            "action": "subscriber.add",
            "username": "eve",
            "password": "x" * 129,
            "plan": "home",
            "router": "r1",
        },
        "longer than",
    ),
    (
        {
            "action": "subscriber.add",
            "username": "eve",
            "password": "pw",
            "plan": "home",
            "router": "r1",
            "phone": "call me",
        },
        "phone",
    ),
    (
        {
            "action": "subscriber.add",
            "username": "eve",
            "password": "pw",
            "plan": "home",
            "router": "r1",
            "service": "dialup",
        },
        "bad service",
    ),
]


@pytest.mark.parametrize(("data", "says"), HOSTILE)
def test_hostile_values_are_refused_with_a_message_and_nothing_stored(
    dcfg: Config, pop: Store, data: dict[str, Any], says: str
) -> None:
    data = {"by": "front-desk", **data}
    before = (money(pop), pop.scalar("SELECT count(*) FROM subscribers"), subs.get(pop, "alice").plan)
    key = uuid7()
    deliver(pop, dcfg, _event("request", key, "append", data))
    r = result(pop, key)
    assert r is not None and r["status"] == "refused" and says.lower() in r["message"].lower(), r
    assert len(r["message"]) <= 500
    assert (money(pop), pop.scalar("SELECT count(*) FROM subscribers"), subs.get(pop, "alice").plan) == before


def test_a_key_that_is_no_uuid_is_refused_without_echoing_it(dcfg: Config, pop: Store) -> None:
    key = "x" * 300
    deliver(pop, dcfg, _event("request", key, "append", {"action": "resume", "by": "d", "username": "alice"}))
    assert pop.scalar("SELECT outcome FROM dashboard_runs WHERE key = ?", (key,)) == "refused"
    assert result(pop, key) is None and results_emitted(pop, key) == []


def test_a_request_for_another_pops_subscriber_is_kept_not_carried_out(dcfg: Config, pop: Store) -> None:
    other = "0192f000-0000-7000-8000-0000000000b2"
    deliver(
        pop,
        dcfg,
        _event("pop", "pop-b", "upsert", {"agent_id": other, "agent_name": "pop-b", "retired": False}, other),
        _event("subscriber", "bob", "upsert", {"home_router": "rtr-b", "home_pop": "pop-b"}, other),
    )
    before = money(pop)
    key = ask(pop, dcfg, "payment", username="bob", amount_minor=100000)
    assert pop.scalar("SELECT count(*) FROM dashboard_requests WHERE key = ?", (key,)) == 1  # folded
    assert pop.one("SELECT outcome, pop FROM dashboard_runs WHERE key = ?", (key,)) == {
        "outcome": "elsewhere",
        "pop": "pop-b",
    }
    assert money(pop) == before and result(pop, key) is None and results_emitted(pop, key) == []
    # pop-b's result arrives: shown here as it is.
    deliver(
        pop,
        dcfg,
        _event(
            "request_result",
            key,
            "append",
            {"status": "done", "message": "ok", "pop": "pop-b", "at": time.time()},
            other,
        ),
    )
    assert result(pop, key) == {"status": "done", "message": "ok", "pop": "pop-b"}
    # alice is homed here: hers is carried out here.
    key = ask(pop, dcfg, "payment", username="alice", amount_minor=100000)
    assert result(pop, key)["status"] == "done"


def test_nothing_runs_before_the_whole_log_is_pulled(dcfg: Config, pop: Store) -> None:
    """Mid-restore, a request's result may be in a later batch: wait for the head."""
    key = uuid7()
    ev = _event(
        "request", key, "append", {"action": "payment", "by": "d", "username": "alice", "amount_minor": 5}
    )
    synclog.AgentLog(pop, dcfg).apply([ev], {"sync.cursor": "10", "sync.head": "11"})
    assert pop.scalar("SELECT count(*) FROM dashboard_runs") == 0
    done = _event("request_result", key, "append", {"status": "done", "message": "m", "pop": "x", "at": 1.0})
    synclog.AgentLog(pop, dcfg).apply([done], {"sync.cursor": "11", "sync.head": "11"})
    assert pop.scalar("SELECT outcome FROM dashboard_runs WHERE key = ?", (key,)) == "done"
    assert money(pop)[0] == 0  # carried out before: not again


def test_a_busy_store_is_retried_later_and_the_request_runs_once(dcfg: Config, pop: Store) -> None:
    pop.execute("PRAGMA busy_timeout = 50")
    key = uuid7()
    blocker = sqlite3.connect(dcfg.db_path, isolation_level=None)
    blocker.execute("PRAGMA busy_timeout = 50")
    try:
        # Folded first, then another process holds the write lock while the executor runs.
        pop_log = synclog.AgentLog(pop)  # no config: folds only
        data = {"action": "payment", "by": "d", "username": "alice", "amount_minor": 700}
        pop_log.apply([_event("request", key, "append", data)], {"sync.cursor": "5", "sync.head": "5"})
        blocker.execute("BEGIN IMMEDIATE")
        assert dash.run(pop, dcfg) == {"failed": 1}
        blocker.execute("ROLLBACK")
    finally:
        blocker.close()
    assert dash.run(pop, dcfg) == {"done": 1}
    assert dash.run(pop, dcfg) == {}
    assert pop.scalar("SELECT count(*) FROM payments WHERE amount_minor = 700") == 1


def test_a_suspend_from_the_browser_changes_the_radius_answer_and_queues_the_disconnect(
    dcfg: Config, pop: Store
) -> None:
    """What `subscribers.suspend` emits, sealed by the browser: the exact dict."""
    suspend = {"status": "suspended", "status_reason": "manual", "manual_suspend": 1}
    subs.suspend(pop, "bob", "noc")
    last = pop.one(
        "SELECT id, data FROM events WHERE entity = 'subscriber' AND key = 'bob' ORDER BY rowid DESC"
    )
    assert last is not None and pop.event_data(last) == suspend  # the dict the browser sends
    start_session(pop, "alice", "sess-1")
    be = StoreBackend(dcfg, pop.box)
    req = AuthRequest("alice", AuthMethod.PAP, pap_password="alice-pw-1")
    assert authorize(req, be.subject("alice")).accept
    be.close()
    deliver(pop, dcfg, _event("subscriber", "alice", "upsert", suspend))
    be = StoreBackend(dcfg, pop.box)  # as an authentication worker reads the store
    assert not authorize(req, be.subject("alice")).accept
    be.close()
    jobs = pop.all(
        "SELECT action, acct_session_id FROM enforce_jobs WHERE username = 'alice' AND status = 'pending'"
    )
    assert {"action": "disconnect", "acct_session_id": "sess-1"} in jobs
    # Suspended by hand: a payment no longer restores; the dashboard's resume does.
    key = ask(pop, dcfg, "payment", username="alice", amount_minor=100000)
    assert result(pop, key)["status"] == "done" and subs.get(pop, "alice").status == "suspended"
    key = ask(pop, dcfg, "resume", username="alice")
    assert result(pop, key)["status"] == "done" and subs.get(pop, "alice").status == "active"


def test_the_pop_publishes_its_facts_at_most_every_five_minutes_when_changed(
    dcfg: Config, pop: Store
) -> None:
    t = time.time()
    assert pops.publish(pop, dcfg, now=t)
    row = pop.one(
        "SELECT agent_id, timezone, currency, sms, version FROM pops WHERE name = ?", (pop.meta("pop.name"),)
    )
    assert row is not None and row["agent_id"] == pop.agent_id and row["currency"] == "KES"
    assert row["timezone"] == dcfg.billing.timezone and row["version"]
    assert json.loads(row["sms"]) == {"queued": 0, "sent": 0, "failed": 0}
    n = pop.scalar("SELECT count(*) FROM events WHERE entity = 'pop'")
    assert not pops.publish(pop, dcfg, now=t + 60)  # too soon
    assert not pops.publish(pop, dcfg, now=t + 400)  # nothing changed
    for name in ("usd-1", "usd-2", "usd-3"):  # most plans are in dollars now
        plans.add(pop, plans.build(name, rate="1M/1M", price="10", currency="USD"), "t")
    assert pops.publish(pop, dcfg, now=t + 800)
    assert pop.scalar("SELECT count(*) FROM events WHERE entity = 'pop'") == n + 1
    assert pop.scalar("SELECT currency FROM pops WHERE name = ?", (pop.meta("pop.name"),)) == "USD"


def test_a_subscriber_without_a_home_falls_to_the_first_pop_by_name(dcfg: Config, pop: Store) -> None:
    other = "0192f000-0000-7000-8000-0000000000b3"
    subs.add(pop, subs.NewSubscriber.build("carol", password="carol-pw-1", plan="home"), "t")  # no home
    key = ask(pop, dcfg, "payment", username="carol", amount_minor=100)
    assert result(pop, key)["status"] == "done"  # the only POP there is
    deliver(pop, dcfg, _event("pop", "0000-first", "upsert", {"agent_id": other, "retired": False}, other))
    key = ask(pop, dcfg, "payment", username="carol", amount_minor=200)
    assert pop.one("SELECT outcome, pop FROM dashboard_runs WHERE key = ?", (key,)) == {
        "outcome": "elsewhere",
        "pop": "0000-first",
    }
    assert result(pop, key) is None
    # That POP retired: this one is first again.
    deliver(pop, dcfg, _event("pop", "0000-first", "upsert", {"retired": True, "retired_to": "r1"}, other))
    key = ask(pop, dcfg, "payment", username="carol", amount_minor=300)
    assert result(pop, key)["status"] == "done"


def test_erasure_rewrites_the_requests_about_the_person_and_their_results(dcfg: Config, pop: Store) -> None:
    """A new subscriber's request carries their name, phone and password, and its result
    names them: an erasure leaves none of it in the store file."""
    from jasiyo.agent import erase

    key = ask(
        pop,
        dcfg,
        "subscriber.add",
        username="zawadi",
        password="zawadi-secret-77",
        plan="home",
        router="r1",
        name="Zawadi Achieng",
        phone="+254722000111",
    )
    paid = ask(pop, dcfg, "payment", username="zawadi", amount_minor=1000)
    assert result(pop, key)["status"] == "done" and "zawadi" in result(pop, paid)["message"]
    done = erase.erase(pop, "zawadi", "noc", "asked to be forgotten")
    for k in (key, paid):
        assert "zawadi" not in result(pop, k)["message"] and done.pseudonym in result(pop, k)["message"]
    for r in pop.all("SELECT * FROM events WHERE entity IN ('request', 'request_result')"):
        text = json.dumps(pop.event_data(r))
        assert "zawadi" not in text.lower() and "722000111" not in text, text
    owed = pop.scalar("SELECT count(*) FROM cloud_redactions WHERE kind = 'event'")
    assert owed >= 4  # the two requests and their two results, at least, go to the cloud again
    pop.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    blob = dcfg.db_path.read_bytes()
    for secret in (b"zawadi", b"Zawadi Achieng", b"722000111", b"zawadi-secret-77"):
        assert secret not in blob, secret
    assert b"alice" in blob  # someone else is untouched
