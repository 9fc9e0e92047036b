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
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jasiyo.agent import billing, cycles, ledger, payments, plans
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import Config, parse
from jasiyo.errors import JasiyoError
from tests.agent.billing_support import DAY, T0, Clock, add_sub, billing_config, seed_plans
from tests.support.props import examples

USERS = ("alice", "carol", "dan")
PLANS = ("home", "fast", "week", "month", "day", "fortnight", "biz", "biz2", "pweek")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("billing-template")
    cfg = billing_config(base, "invoice_due_days = 3\ngrace_days = 2\nterminate_after_days = 20")
    db = Store.open(cfg, now=Clock())
    seed_plans(db)
    plans.add(db, plans.build("week", rate="5M", price="333.33", period="1w", tax_rate="16"), "t")
    plans.add(db, plans.build("month", rate="5M", price="777", period="1mo"), "t")
    plans.add(db, plans.build("day", rate="5M", price="49.99", period="1d"), "t")
    plans.add(db, plans.build("fortnight", rate="5M", price="700", period="2w", tax_rate="16",
                              tax_inclusive=True), "t")
    plans.add(db, plans.build("pweek", rate="5M", price="450", period="1w", billing="postpaid",
                              tax_rate="16"), "t")
    add_sub(db, "alice", "home")
    add_sub(db, "carol", "biz")
    add_sub(db, "dan", "week")
    add_sub(db, "erin", "week")
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
    st.tuples(st.just("credit"), st.sampled_from(USERS), st.integers(1, 300_000)),
    st.tuples(st.just("refund"), st.sampled_from(USERS), st.integers(1, 300_000),
              st.booleans()),
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
    adjusted = sum(by_kind.get(k, 0) for k in ("proration", "credit", "refund", "credit_note"))
    assert total == paid_in - invoiced + adjusted
    assert set(by_kind) <= {"payment", "charge", "proration", "credit", "refund", "credit_note"}
    for user in USERS:
        sub = subs.get(db, user)
        entries = ledger.statement(db, user)
        assert ledger.balance(db, sub.id) == sum(e.amount_minor for e in entries)
        if entries:
            assert entries[-1].balance_minor == ledger.balance(db, sub.id)
        # no cycle charged twice: invoice intervals never overlap, one charge per invoice
        rows = db.all("SELECT number, purchase, cycle_start, cycle_end FROM invoices "
                      "WHERE subscriber_id = ? ORDER BY cycle_start", (sub.id,))
        for a, b in zip(rows, rows[1:], strict=False):
            assert b["cycle_start"] >= a["cycle_end"], (user, a, b)
        charges = db.all("SELECT reference FROM ledger WHERE subscriber_id = ? AND "
                         "kind = 'charge' ORDER BY reference", (sub.id,))
        # a period a payment bought is charged under its purchase key, others by invoice
        assert [c["reference"] for c in charges] == sorted(
            f"BUY:{r['purchase']}" if r["purchase"] else r["number"] for r in rows)
    # sync sees each money record (and each SMS consent record) exactly once
    appends = db.scalar("SELECT count(*) FROM events WHERE op = 'append'")
    records = db.scalar("SELECT (SELECT count(*) FROM ledger) + (SELECT count(*) FROM payments)"
                        " + (SELECT count(*) FROM invoices) + (SELECT count(*) FROM sms_consent)")
    assert appends == records


@settings(max_examples=examples(40), deadline=None,
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
                elif kind == "credit":
                    billing.adjust(db, cfg, s[1], "credit", s[2], f"C{i}", "goodwill", "prop")
                elif kind == "refund":
                    sub = subs.get(db, s[1])
                    wallet = ledger.balance(db, sub.id)
                    before = db.scalar("SELECT count(*) FROM ledger")
                    try:
                        billing.adjust(db, cfg, s[1], "refund", s[2], f"F{i}", "back", "prop",
                                       allow_debt=s[3])
                    except JasiyoError:
                        # refused only beyond the wallet, and then nothing was recorded
                        assert not s[3] and s[2] > max(0, wallet)
                        assert db.scalar("SELECT count(*) FROM ledger") == before
                        raise
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


@settings(max_examples=examples(25), deadline=None,
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
        # the new plan costs its price per its own period: a week plan for the rest of a
        # 30-day cycle costs (remaining / 7 days) weeks, not one week's price
        new_total, own = {"fast": (200000, length),
                          "week": (33333 + cycles.tax(33333, 1600), 7 * 86400)}[target]
        half = Fraction(1, 2)
        assert abs(ch.credit_minor - Fraction(100000 * remaining, length)) <= half
        # within one minor unit: the cycle's rate is rounded, then its share
        assert abs(ch.charge_minor - Fraction(new_total * remaining, own)) <= 1
        assert ledger.balance(db, sub.id) == before + ch.credit_minor - ch.charge_minor
        kinds = [e.kind for e in ledger.statement(db, "alice")]
        assert kinds.count("proration") == (ch.credit_minor > 0) + (ch.charge_minor > 0)
        assert T0 + DAY * 30 == subs.get(db, "alice").paid_until  # the cycle bounds stay
    finally:
        db.close()
        shutil.rmtree(where, ignore_errors=True)


def _by_cycle(text: str | None, by_cycle: dict[str, str]) -> str | None:
    for number, cycle in by_cycle.items():
        text = text.replace(number, cycle) if text else text
    return text


def _snapshot(db: Store) -> dict[str, Any]:
    # invoice numbers follow the order of issue, which catch-up changes: compare by cycle
    invs = db.all("SELECT i.number, s.username, i.cycle_start, i.cycle_end, i.total_minor, "
                  "i.issued_at, i.due_at, i.status, i.paid_at FROM invoices i JOIN subscribers "
                  "s ON s.id = i.subscriber_id ORDER BY s.username, i.cycle_start")
    by_cycle = {i["number"]: f"{i['username']}@{i['cycle_start']:.0f}" for i in invs}
    return {
        # proration references carry a per-change id; compare them by position instead
        "ledger": [(r["username"], r["at"], r["kind"], r["amount_minor"],
                    by_cycle.get(r["reference"], r["reference"]) if r["kind"] != "proration"
                    else "")
                   for r in db.all("SELECT s.username, l.* FROM ledger l JOIN subscribers s "
                                   "ON s.id = l.subscriber_id ORDER BY s.username, l.at, l.id")],
        "invoices": [{**i, "number": by_cycle[i["number"]]} for i in invs],
        # a status reason names the overdue invoice: by its cycle too
        "subscribers": [{**r, "status_reason": _by_cycle(r["status_reason"], by_cycle)}
                        for r in db.all("SELECT username, plan_id, status, status_reason, "
                                        "status_changed_at, paid_until, manual_suspend "
                                        "FROM subscribers ORDER BY username")],
        "notifications": db.all("SELECT key, created_at, not_after FROM notifications "
                                "ORDER BY key"),
    }


op = st.one_of(
    st.tuples(st.just("wait"), st.integers(1, 24 * 25)),
    st.tuples(st.just("pay"), st.sampled_from(USERS), st.integers(1, 900_000)),
    st.tuples(st.just("change"), st.sampled_from(USERS), st.sampled_from(PLANS)),
)


@settings(max_examples=examples(30), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=15), every=st.sampled_from([1, 5, 24]))
@example(ops=[("wait", 1), ("wait", 1), ("wait", 1), ("wait", 69), ("change", "alice", "biz")],
         every=1)
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


def _exact_cost(plan_rows: dict[str, tuple[int, str]], segments: list[tuple[str, float, float]],
                cycles_: list[tuple[float, float]]) -> Fraction:
    """What the time on each plan costs, exactly: each plan's price per its own period
    (a calendar month measured from the cycle's start), over each charged cycle."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Africa/Nairobi")
    cost = Fraction(0)
    for plan, a, b in segments:
        total, period = plan_rows[plan]
        for c0, c1 in cycles_:
            overlap = max(0.0, min(b, c1) - max(a, c0))
            if overlap:
                own = cycles.period_end(c0, period, tz) - c0
                own = c1 - c0 if abs(cycles.period_end(c0, period, tz) - c1) < 1 else own
                cost += Fraction(total) * Fraction(round(overlap)) / Fraction(round(own))
    return cost


PREPAID = ("home", "fast", "week", "month", "day", "fortnight")


@settings(max_examples=examples(30), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(periods=st.integers(1, 3),
       changes=st.lists(st.tuples(st.floats(0.0, 0.999), st.sampled_from(PREPAID),
                                  st.booleans()), max_size=6))
def test_plan_changes_cost_each_plan_for_the_time_on_it(
    template: Path, periods: int, changes: list[tuple[float, str, bool]],
) -> None:
    """Across changes between plans of different periods (and restarts between them), the
    paid time costs each plan's price for the time spent on it: no one is charged for time
    they did not have, and no one gets time for free (to a minor unit per change and cycle)."""
    where, cfg = fresh(template)
    clock = Clock(T0)
    db = Store.open(cfg, now=clock)
    try:
        week = 33333 + cycles.tax(33333, 1600)
        payments.record(db, cfg, "erin", week * periods, "P1", actor="prop")
        sub = subs.get(db, "erin")
        start, paid_until = T0, sub.paid_until
        assert paid_until == T0 + periods * 7 * DAY
        cycles_ = [(r["cycle_start"], r["cycle_end"]) for r in db.all(
            "SELECT cycle_start, cycle_end FROM invoices WHERE subscriber_id = ?", (sub.id,))]
        rows = {p.name: (cycles_total(p), p.period) for p in plans.list_(db)}
        segments, current, t_prev, made = [], "week", start, 0
        for frac, target, restart in sorted(changes):
            t = start + round(frac * (paid_until - start))
            if t < t_prev:
                continue
            clock.set(t)
            if restart:
                db.close()
                db = Store.open(cfg, now=clock)
            try:
                billing.change_plan(db, "erin", target, "prop", cfg)
            except JasiyoError:
                continue  # the same plan: nothing changes
            segments.append((current, t_prev, t))
            current, t_prev, made = target, t, made + 1
        segments.append((current, t_prev, paid_until))
        spent = -ledger.balance(db, sub.id) + week * periods  # charges net of prorations
        exact = _exact_cost(rows, segments, cycles_)
        assert abs(spent - exact) <= 2 * made * len(cycles_) + Fraction(1, 2), (spent, exact)
        assert subs.get(db, "erin").paid_until == paid_until  # the paid time is kept
        check_invariants(db)
    finally:
        db.close()
        shutil.rmtree(where, ignore_errors=True)


def cycles_total(plan: Any) -> int:
    from jasiyo.agent import invoices

    return invoices.cost({"price_minor": plan.price_minor, "tax_rate_bp": plan.tax_rate_bp,
                          "tax_inclusive": plan.tax_inclusive})[2]
