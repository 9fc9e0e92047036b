"""Property tests: money is conserved, no cycle is charged twice, proration is exact.

Each example runs on a fresh copy of a seeded store, with a hand-moved clock, a random
sequence of payments (some retried), plan changes, manual suspend/resume, ticks after
random gaps, and agent restarts (the store closed and opened again).
"""

from __future__ import annotations

import shutil
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jasiyo.agent import billing, cycles, ledger, payments, plans
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import Config, parse
from jasiyo.errors import JasiyoError
from tests.agent.billing_support import DAY, T0, Clock, add_sub, billing_config, seed_plans

USERS = ("alice", "carol", "dan")
PLANS = ("home", "fast", "week", "month", "biz", "biz2")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("billing-template")
    cfg = billing_config(base, "invoice_due_days = 3\ngrace_days = 2\nterminate_after_days = 20")
    db = Store.open(cfg, now=Clock())
    seed_plans(db)
    plans.add(db, plans.build("week", rate="5M", price="333.33", period="1w", tax_rate="16"), "t")
    plans.add(db, plans.build("month", rate="5M", price="777", period="1m"), "t")
    add_sub(db, "alice", "home")
    add_sub(db, "carol", "biz")
    add_sub(db, "dan", "week")
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return base


def fresh(template: Path) -> tuple[Path, Config]:
    where = Path(tempfile.mkdtemp(prefix="jasiyo-prop-"))
    shutil.copytree(template, where, dirs_exist_ok=True)
    path = where / "jasiyo.toml"
    return where, parse(path.read_text(), where, path)


step = st.one_of(
    st.tuples(st.just("wait"), st.integers(1, 24 * 40)),  # hours
    st.tuples(st.just("pay"), st.sampled_from(USERS), st.integers(1, 900_000)),
    st.tuples(st.just("repay"), st.integers(0, 50)),
    st.tuples(st.just("change"), st.sampled_from(USERS), st.sampled_from(PLANS)),
    st.tuples(st.just("restart")),
    st.tuples(st.just("suspend"), st.sampled_from(USERS)),
    st.tuples(st.just("resume"), st.sampled_from(USERS)),
)


def check_invariants(db: Store) -> None:
    total = db.scalar("SELECT COALESCE(SUM(amount_minor), 0) FROM ledger")
    by_kind = {r["kind"]: r["s"] for r in db.all(
        "SELECT kind, SUM(amount_minor) AS s FROM ledger GROUP BY kind")}
    paid_in = db.scalar("SELECT COALESCE(SUM(amount_minor), 0) FROM payments")
    # an invoice's carried part (earlier proration debt) is already in the ledger
    invoiced = db.scalar("SELECT COALESCE(SUM(total_minor - carried_minor), 0) FROM invoices")
    # every payment and every invoice is in the ledger exactly once; nothing else moves money
    assert by_kind.get("payment", 0) == paid_in
    assert by_kind.get("charge", 0) == -invoiced
    assert total == paid_in - invoiced + by_kind.get("proration", 0)
    for user in USERS:
        sub = subs.get(db, user)
        entries = ledger.statement(db, user)
        assert ledger.balance(db, sub.id) == sum(e.amount_minor for e in entries)
        if entries:
            assert entries[-1].balance_minor == ledger.balance(db, sub.id)
        # no cycle charged twice: invoice intervals never overlap, one charge per invoice
        rows = db.all("SELECT number, cycle_start, cycle_end FROM invoices "
                      "WHERE subscriber_id = ? ORDER BY cycle_start", (sub.id,))
        for a, b in zip(rows, rows[1:], strict=False):
            assert b["cycle_start"] >= a["cycle_end"], (user, a, b)
        charges = db.all("SELECT reference FROM ledger WHERE subscriber_id = ? AND "
                         "kind = 'charge' ORDER BY reference", (sub.id,))
        assert [c["reference"] for c in charges] == sorted(r["number"] for r in rows)
    # sync sees each money record (and each SMS consent record) exactly once
    appends = db.scalar("SELECT count(*) FROM events WHERE op = 'append'")
    records = db.scalar("SELECT (SELECT count(*) FROM ledger) + (SELECT count(*) FROM payments)"
                        " + (SELECT count(*) FROM invoices) + (SELECT count(*) FROM sms_consent)")
    assert appends == records


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=25))
def test_any_sequence_conserves_money_and_never_double_charges(
    template: Path, steps: list[tuple[Any, ...]],
) -> None:
    where, cfg = fresh(template)
    clock = Clock(T0)
    db = Store.open(cfg, now=clock)
    done: list[tuple[str, int, str]] = []
    try:
        for i, s in enumerate(steps):
            kind = s[0]
            try:
                if kind == "wait":
                    clock.set(clock() + s[1] * 3600.0)
                    report = billing.tick(db, cfg)
                    assert report.errors == 0
                elif kind == "pay":
                    ref = f"R{i}"
                    payments.record(db, cfg, s[1], s[2], ref, actor="prop")
                    done.append((s[1], s[2], ref))
                elif kind == "repay" and done:
                    user, amount, ref = done[s[1] % len(done)]
                    before = db.scalar("SELECT count(*) FROM ledger")
                    assert not payments.record(db, cfg, user, amount, ref, actor="prop").created
                    assert db.scalar("SELECT count(*) FROM ledger") == before
                elif kind == "change":
                    billing.change_plan(db, s[1], s[2], "prop", cfg)
                elif kind == "restart":
                    db.close()
                    db = Store.open(cfg, now=clock)
                elif kind == "suspend":
                    subs.suspend(db, s[1], "prop", "manual")
                elif kind == "resume":
                    subs.resume(db, s[1], "prop")
            except JasiyoError:
                pass  # refused operations (same plan, already active...) change nothing
            check_invariants(db)
        # a tick at the same moment again changes nothing (idempotent)
        billing.tick(db, cfg)
        before = db.scalar("SELECT count(*) FROM ledger"), db.scalar("SELECT count(*) FROM events")
        billing.tick(db, cfg)
        assert (db.scalar("SELECT count(*) FROM ledger"),
                db.scalar("SELECT count(*) FROM events")) == before
    finally:
        db.close()
        shutil.rmtree(where, ignore_errors=True)


@given(total=st.integers(0, 10**12), length=st.integers(1, 10**8), data=st.data())
def test_prorate_is_exact_rounding_of_the_rational_share(total: int, length: int,
                                                         data: st.DataObject) -> None:
    remaining = data.draw(st.integers(0, length))
    got = cycles.prorate(total, remaining, length)
    exact = Fraction(total * remaining, length)
    assert got - Fraction(1, 2) <= exact < got + Fraction(1, 2)  # round half up, exactly
    assert 0 <= got <= total
    assert cycles.prorate(total, 0, length) == 0 and cycles.prorate(total, length, length) == total
    if remaining < length:
        assert cycles.prorate(total, remaining + 1, length) >= got  # monotonic


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seconds_in=st.integers(0, 30 * 86400 - 1), target=st.sampled_from(["fast", "week"]))
def test_plan_change_moves_exactly_the_prorated_amounts(
    template: Path, seconds_in: int, target: str,
) -> None:
    where, cfg = fresh(template)
    clock = Clock(T0)
    db = Store.open(cfg, now=clock)
    try:
        payments.record(db, cfg, "alice", "1000", "P1", actor="prop")
        sub = subs.get(db, "alice")
        before = ledger.balance(db, sub.id)
        clock.set(T0 + seconds_in)
        ch = billing.change_plan(db, "alice", target, "prop", cfg)
        length, remaining = 30 * 86400, 30 * 86400 - seconds_in
        new_total = {"fast": 200000, "week": 33333 + cycles.tax(33333, 1600)}[target]
        half = Fraction(1, 2)
        assert abs(ch.credit_minor - Fraction(100000 * remaining, length)) <= half
        assert abs(ch.charge_minor - Fraction(new_total * remaining, length)) <= half
        assert ledger.balance(db, sub.id) == before + ch.credit_minor - ch.charge_minor
        kinds = [e.kind for e in ledger.statement(db, "alice")]
        assert kinds.count("proration") == (ch.credit_minor > 0) + (ch.charge_minor > 0)
        assert T0 + DAY * 30 == subs.get(db, "alice").paid_until  # the cycle bounds stay
    finally:
        db.close()
        shutil.rmtree(where, ignore_errors=True)


def _snapshot(db: Store) -> dict[str, Any]:
    return {
        # proration references carry a per-change id; compare them by position instead
        "ledger": [(r["username"], r["at"], r["kind"], r["amount_minor"],
                    r["reference"] if r["kind"] != "proration" else "")
                   for r in db.all("SELECT s.username, l.* FROM ledger l JOIN subscribers s "
                                   "ON s.id = l.subscriber_id ORDER BY s.username, l.at, l.id")],
        "invoices": db.all("SELECT number, cycle_start, cycle_end, total_minor, issued_at, "
                           "due_at, status, paid_at FROM invoices ORDER BY number"),
        "subscribers": db.all("SELECT username, plan_id, status, status_reason, "
                              "status_changed_at, paid_until, manual_suspend "
                              "FROM subscribers ORDER BY username"),
        "notifications": db.all("SELECT key, created_at, not_after FROM notifications "
                                "ORDER BY key"),
    }


op = st.one_of(
    st.tuples(st.just("wait"), st.integers(1, 24 * 25)),
    st.tuples(st.just("pay"), st.sampled_from(USERS), st.integers(1, 900_000)),
    st.tuples(st.just("change"), st.sampled_from(USERS), st.sampled_from(PLANS)),
)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=15), every=st.sampled_from([1, 5, 24]))
def test_ticking_often_or_once_at_the_end_gives_the_same_books(
    template: Path, ops: list[tuple[Any, ...]], every: int,
) -> None:
    """Catch-up: the same payments and plan changes, with the billing clock ticking every
    ``every`` hours or not at all until the end, leave the same ledger, invoices, statuses
    and notifications."""
    results = []
    for ticking in (True, False):
        where, cfg = fresh(template)
        clock = Clock(T0)
        db = Store.open(cfg, now=clock)
        try:
            for i, s in enumerate(ops):
                try:
                    if s[0] == "wait":
                        end = clock() + s[1] * 3600.0
                        while ticking and clock() + every * 3600.0 < end:
                            clock.set(clock() + every * 3600.0)
                            billing.tick(db, cfg)
                        clock.set(end)
                    elif s[0] == "pay":
                        payments.record(db, cfg, s[1], s[2], f"R{i}", actor="prop")
                    else:
                        billing.change_plan(db, s[1], s[2], "prop", cfg)
                except JasiyoError:
                    pass
            billing.tick(db, cfg)
            results.append(_snapshot(db))
        finally:
            db.close()
            shutil.rmtree(where, ignore_errors=True)
    assert results[0] == results[1]
