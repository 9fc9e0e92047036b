"""Billing engine: prepaid and postpaid cycles, ledger, payments, proration, quotas, catch-up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jasiyo.agent import audit as audit_log
from jasiyo.agent import billing, cycles, invoices, ledger, notify, payments, plans, usage
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import BillingError, NotFound, ValidationError
from tests.agent.billing_support import (
    DAY,
    T0,
    Clock,
    add_sub,
    billing_config,
    open_store,
    seed_plans,
    start_session,
)


@pytest.fixture
def bcfg(tmp_path: Path) -> Config:
    return billing_config(tmp_path)


@pytest.fixture
def db(bcfg: Config, clock: Clock) -> Iterator[Store]:
    s = open_store(bcfg, clock)
    seed_plans(s)
    yield s
    s.close()


def pay(db: Store, cfg: Config, user: str, amount: str, ref: str, **kw: Any) -> payments.Recorded:
    return payments.record(db, cfg, user, amount, ref, actor="test", **kw)


def status(db: Store, user: str) -> str:
    return subs.get(db, user).status


def ledger_rows(db: Store) -> list[tuple]:
    return [tuple(r.values()) for r in db.all(
        "SELECT s.username, l.at, l.kind, l.amount_minor, l.reference FROM ledger l "
        "JOIN subscribers s ON s.id = l.subscriber_id ORDER BY s.username, l.at, l.id")]


# ------------------------------------------------------------------ prepaid


def test_payment_buys_whole_periods_and_keeps_the_rest_as_wallet(db: Store, bcfg: Config,
                                                                  clock: Clock) -> None:
    add_sub(db, "alice")
    r = pay(db, bcfg, "alice", "2500", "MP-1", method="mpesa")
    assert r.created and r.periods_bought == 2
    assert r.paid_until == T0 + 60 * DAY
    assert r.balance_minor == 50000  # KES 500.00 left in the wallet
    # paying again while active extends from the paid-through time, not from now
    clock.days(10)
    r2 = pay(db, bcfg, "alice", "500", "MP-2")
    assert r2.periods_bought == 1 and r2.paid_until == T0 + 90 * DAY and r2.balance_minor == 0
    assert [e.kind for e in ledger.statement(db, "alice")] == [
        "payment", "charge", "charge", "payment", "charge"]


def test_auto_renew_from_wallet_at_expiry_then_suspend(db: Store, bcfg: Config,
                                                        clock: Clock) -> None:
    add_sub(db, "alice")
    pay(db, bcfg, "alice", "1000", "MP-1")
    ledger.adjust(db, "alice", "credit", 100000, "goodwill-1", "outage credit", "noc")
    clock.days(30)
    report = billing.tick(db, bcfg)
    assert report.renewals == 1 and status(db, "alice") == "active"
    assert subs.get(db, "alice").paid_until == T0 + 60 * DAY
    renewal = invoices.list_(db, username="alice")[0]
    assert (renewal.cycle_start, renewal.issued_at, renewal.status) == (T0 + 30 * DAY,
                                                                         T0 + 30 * DAY, "paid")
    clock.days(60)
    billing.tick(db, bcfg)
    sub = subs.get(db, "alice")
    assert (sub.status, sub.status_reason) == ("suspended", "expired")
    assert ledger.balance(db, sub.id) == 0


def test_expiry_suspends_exactly_at_paid_until_and_payment_restores(db: Store, bcfg: Config,
                                                                     clock: Clock) -> None:
    add_sub(db, "alice")
    pay(db, bcfg, "alice", "1000", "MP-1")
    clock.set(T0 + 30 * DAY - 1)
    billing.tick(db, bcfg)
    assert status(db, "alice") == "active"
    clock.set(T0 + 30 * DAY)
    billing.tick(db, bcfg)
    sub = subs.get(db, "alice")
    assert sub.status == "suspended"
    assert db.scalar("SELECT status_changed_at FROM subscribers WHERE username='alice'") == (
        T0 + 30 * DAY)
    clock.days(33)
    r = pay(db, bcfg, "alice", "1000", "MP-2")
    assert r.restored and r.status == "active"
    assert r.paid_until == T0 + 63 * DAY  # bought from now: the lapsed days are not charged


def test_reminders_only_with_consent_and_once(db: Store, bcfg: Config, clock: Clock) -> None:
    add_sub(db, "alice")
    add_sub(db, "bob", consent=False)
    pay(db, bcfg, "alice", "1000", "A-1")
    pay(db, bcfg, "bob", "1000", "B-1")
    for day in (26, 27, 27.5, 28, 29, 29.5):
        clock.days(day)
        billing.tick(db, bcfg)
        billing.tick(db, bcfg)  # a second tick at the same time changes nothing
    kinds = [(n.username, n.kind, n.created_at) for n in notify.list_(db)]
    assert kinds == [
        ("alice", "receipt", T0),
        ("alice", "reminder", T0 + 27 * DAY),
        ("alice", "reminder", T0 + 29 * DAY),
    ]
    reminder = notify.list_(db)[1]
    assert "3 day(s)" in reminder.message and reminder.not_after == T0 + 30 * DAY
    clock.days(30)
    billing.tick(db, bcfg)
    assert [n.kind for n in notify.list_(db, "alice")][-1] == "suspension"
    assert notify.list_(db, "bob") == []
    # with enough in the wallet for the renewal, no "pay now" reminder
    pay(db, bcfg, "alice", "2000", "A-2")  # one period bought, one left in the wallet
    clock.days(60)
    billing.tick(db, bcfg)
    assert [n.kind for n in notify.list_(db, "alice")][-2:] == ["suspension", "receipt"]
    assert subs.get(db, "alice").paid_until == T0 + 90 * DAY  # renewed from the wallet


def test_prepaid_grace_when_the_plan_has_one(db: Store, bcfg: Config, clock: Clock) -> None:
    plans.update(db, "home", "test", grace="2d")
    add_sub(db, "alice")
    pay(db, bcfg, "alice", "1000", "A-1")
    clock.days(30)
    billing.tick(db, bcfg)
    assert status(db, "alice") == "grace"
    clock.days(31.9)
    billing.tick(db, bcfg)
    assert status(db, "alice") == "grace"
    clock.days(32)
    billing.tick(db, bcfg)
    assert status(db, "alice") == "suspended"


def test_termination_after_configured_days(tmp_path: Path, clock: Clock) -> None:
    cfg = billing_config(tmp_path, "terminate_after_days = 10")
    db = open_store(cfg, clock)
    seed_plans(db)
    add_sub(db, "alice")
    pay(db, cfg, "alice", "1000", "A-1")
    clock.days(45)
    billing.tick(db, cfg)
    sub = subs.get(db, "alice")
    assert sub.status == "terminated"
    assert db.scalar("SELECT status_changed_at FROM subscribers") == T0 + 40 * DAY
    # money still comes in, but a terminated line is not brought back by automation
    r = pay(db, cfg, "alice", "1000", "A-2")
    assert (r.status, r.periods_bought, r.balance_minor) == ("terminated", 0, 100000)
    db.close()


def test_manual_suspension_is_not_lifted_by_payment(db: Store, bcfg: Config,
                                                     clock: Clock) -> None:
    add_sub(db, "alice")
    pay(db, bcfg, "alice", "1000", "A-1")
    subs.suspend(db, "alice", "noc:jane", "abuse report")
    clock.days(5)
    r = pay(db, bcfg, "alice", "1000", "A-2")
    assert (r.status, r.restored, r.periods_bought) == ("suspended", False, 0)
    assert subs.get(db, "alice").status_reason == "abuse report"
    (line,) = audit_log.list_(db, action="subscriber.status")
    assert line.actor == "noc:jane" and "abuse report" in str(line.detail)
    subs.resume(db, "alice", "noc:jane")
    billing.tick(db, bcfg)
    assert status(db, "alice") == "active"  # still paid until day 30


def test_month_cycles_keep_their_anchor_day() -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Africa/Nairobi")
    from datetime import datetime

    jan31 = datetime(2026, 1, 31, 10, 0, tzinfo=tz).timestamp()
    feb = cycles.period_end(jan31, "1mo", tz)
    mar = cycles.period_end(feb, "1mo", tz, anchor_day=31)
    assert datetime.fromtimestamp(feb, tz).strftime("%m-%d %H:%M") == "02-28 10:00"
    assert datetime.fromtimestamp(mar, tz).strftime("%m-%d %H:%M") == "03-31 10:00"
    assert datetime.fromtimestamp(cycles.period_end(jan31, "12m", tz), tz).year == 2027


def test_a_broken_subscriber_does_not_stop_the_clock_for_others(db: Store, bcfg: Config,
                                                                clock: Clock) -> None:
    add_sub(db, "alice")
    add_sub(db, "bob")
    pay(db, bcfg, "alice", "1000", "A-1")
    pay(db, bcfg, "bob", "1000", "B-1")
    plans.add(db, plans.build("odd", rate="1M", price="1"), "t")
    subs.update(db, "alice", "t", plan="odd")
    ledger.adjust(db, "alice", "credit", 500, "C-1", "so that a renewal is attempted", "t")
    db.conn.execute("UPDATE plans SET period = 'garbage' WHERE name = 'odd'")  # corrupt
    db.conn.execute("UPDATE subscribers SET paid_until = ? WHERE username = 'alice'",
                    (T0 + DAY,))
    clock.days(40)
    report = billing.tick(db, bcfg)
    assert report.errors == 1 and report.transitions == {"suspended": 1}
    assert status(db, "bob") == "suspended" and status(db, "alice") == "active"
    assert db.scalar("SELECT next_action_at FROM billing_state b JOIN subscribers s "
                     "ON s.id = b.subscriber_id WHERE s.username = 'alice'") == clock() + 300


# ------------------------------------------------------------------ postpaid


def test_postpaid_invoice_grace_suspension_and_payment_restores(db: Store, bcfg: Config,
                                                                 clock: Clock) -> None:
    add_sub(db, "carol", "biz")
    billing.tick(db, bcfg)
    (inv,) = invoices.list_(db, username="carol")
    assert (inv.cycle_start, inv.cycle_end, inv.due_at) == (T0, T0 + 30 * DAY, T0 + 7 * DAY)
    assert (inv.amount_minor, inv.tax_minor, inv.total_minor) == (300000, 48000, 348000)
    clock.days(7)
    billing.tick(db, bcfg)
    assert status(db, "carol") == "grace"  # [billing] grace_days = 3 by default
    clock.days(9.99)
    billing.tick(db, bcfg)
    assert status(db, "carol") == "grace"
    clock.days(10)
    billing.tick(db, bcfg)
    sub = subs.get(db, "carol")
    assert sub.status == "suspended" and sub.status_reason == "grace period ended"
    clock.days(12)
    r = pay(db, bcfg, "carol", "3480", "BANK-77", method="bank")
    assert r.restored and r.status == "active" and r.balance_minor == 0
    assert invoices.get(db, inv.number).status == "paid"
    # the next cycle is invoiced on its anniversary, once
    clock.days(30)
    billing.tick(db, bcfg)
    billing.tick(db, bcfg)
    numbers = [i.cycle_start for i in invoices.list_(db, username="carol")]
    assert numbers == [T0 + 30 * DAY, T0]


def test_postpaid_partial_payment_does_not_restore(db: Store, bcfg: Config,
                                                   clock: Clock) -> None:
    add_sub(db, "carol", "biz")
    billing.tick(db, bcfg)
    clock.days(11)
    billing.tick(db, bcfg)
    assert status(db, "carol") == "suspended"
    r = pay(db, bcfg, "carol", "1000", "P-1")
    assert not r.restored and r.status == "suspended" and r.balance_minor == -248000
    assert invoices.list_(db, username="carol")[0].status == "open"


def test_postpaid_no_invoices_while_suspended_and_cycle_restarts(db: Store, bcfg: Config,
                                                                 clock: Clock) -> None:
    add_sub(db, "carol", "biz")
    billing.tick(db, bcfg)
    clock.days(75)
    billing.tick(db, bcfg)
    assert status(db, "carol") == "suspended"
    assert len(invoices.list_(db, username="carol")) == 1
    pay(db, bcfg, "carol", "3480", "P-1")
    invs = invoices.list_(db, username="carol")
    assert [i.cycle_start for i in invs] == [T0 + 75 * DAY, T0]  # new cycle from restore
    assert invs[0].status == "open" and status(db, "carol") == "active"


# ------------------------------------------------------------------ ledger and bad input


def test_payment_idempotent_on_reference(db: Store, bcfg: Config) -> None:
    add_sub(db, "alice")
    first = pay(db, bcfg, "alice", "1500", "MPESA-QX1")
    again = pay(db, bcfg, "alice", "1500.00", "MPESA-QX1")
    assert first.created and not again.created
    assert again.payment == first.payment
    assert len(payments.list_(db)) == 1
    assert db.scalar("SELECT count(*) FROM ledger WHERE kind = 'payment'") == 1
    assert db.scalar("SELECT count(*) FROM events WHERE entity = 'payment'") == 1


@pytest.mark.parametrize(
    ("user", "amount", "ref", "error", "words"),
    [
        ("nobody", "100", "R-9", NotFound, "no subscriber named 'nobody'"),
        ("alice", "-100", "R-9", ValidationError, "cannot be negative"),
        ("alice", "0", "R-9", ValidationError, "above zero"),
        ("alice", "10.001", "R-9", ValidationError, "2 decimal places"),
        ("alice", "abc", "R-9", ValidationError, "bad amount"),
        ("alice", "100", "   ", ValidationError, "bad payment reference"),
        ("alice", "100", "has space", ValidationError, "bad payment reference"),
        ("alice", "999", "MPESA-QX1", ValidationError, "already recorded"),
        ("bob", "1500", "MPESA-QX1", ValidationError, "already recorded for 'alice'"),
    ],
)
def test_bad_payments_are_refused_and_change_nothing(
    db: Store, bcfg: Config, user: str, amount: str, ref: str, error: type, words: str,
) -> None:
    add_sub(db, "alice")
    add_sub(db, "bob")
    pay(db, bcfg, "alice", "1500", "MPESA-QX1")
    before = (ledger_rows(db), db.scalar("SELECT count(*) FROM events"),
              db.all("SELECT * FROM payments"), db.all("SELECT * FROM subscribers"))
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        pay(db, bcfg, user, amount, ref)
    after = (ledger_rows(db), db.scalar("SELECT count(*) FROM events"),
             db.all("SELECT * FROM payments"), db.all("SELECT * FROM subscribers"))
    assert after == before


def test_cash_without_a_reference_gets_a_receipt_number_others_need_one(
        db: Store, bcfg: Config) -> None:
    add_sub(db, "alice")
    first = pay(db, bcfg, "alice", "100", "", method="cash")
    second = pay(db, bcfg, "alice", "100", "", method="cash")
    assert first.created and second.created
    assert first.payment.reference.startswith("CASH-")
    assert first.payment.reference != second.payment.reference
    for method in ("mpesa", "airtel", "paystack", "bank"):
        with pytest.raises(ValidationError, match="needs the provider's reference"):
            pay(db, bcfg, "alice", "100", "", method=method)
    assert pay(db, bcfg, "alice", "100", "AIR7H2K9Q1", method="airtel").created


def test_bad_method_and_int_amounts(db: Store, bcfg: Config) -> None:
    add_sub(db, "alice")
    with pytest.raises(ValidationError, match="bad method"):
        pay(db, bcfg, "alice", "100", "R-1", method="bitcoin")
    with pytest.raises(ValidationError, match="above zero"):
        payments.record(db, bcfg, "alice", -5, "R-1", actor="t")
    assert ledger_rows(db) == []


def test_every_money_record_emits_an_append_event_with_natural_keys(db: Store,
                                                                    bcfg: Config) -> None:
    add_sub(db, "alice")
    pay(db, bcfg, "alice", "1000", "MP-1")
    events = db.all("SELECT * FROM events WHERE op = 'append' AND entity != 'sms_consent' "
                    "ORDER BY hlc")
    got = {(e["entity"], e["key"]): db.event_data(e) for e in events}
    inv = invoices.list_(db)[0].number
    # the period the payment bought is charged under the payment's purchase key
    assert set(got) == {("payment", "MP-1"), ("ledger", "payment:MP-1"), ("invoice", inv),
                        ("ledger", "charge:BUY:MP-1#1")}
    assert got[("payment", "MP-1")]["username"] == "alice"
    assert got[("invoice", inv)]["purchase"] == "MP-1#1"
    assert "subscriber_id" not in got[("ledger", "charge:BUY:MP-1#1")]
    assert got[("ledger", "charge:BUY:MP-1#1")]["amount_minor"] == -100000


def test_statement_running_balance(db: Store, bcfg: Config, clock: Clock) -> None:
    add_sub(db, "alice")
    pay(db, bcfg, "alice", "1500", "MP-1")
    ledger.adjust(db, "alice", "refund", 20000, "RF-1", "overpaid", "noc")
    rows = [(e.kind, e.amount_minor, e.balance_minor) for e in ledger.statement(db, "alice")]
    assert rows == [("payment", 150000, 150000), ("charge", -100000, 50000),
                    ("refund", -20000, 30000)]
    with pytest.raises(NotFound):
        ledger.statement(db, "ghost")


# ------------------------------------------------------------------ plan changes


def test_mid_cycle_upgrade_is_prorated_to_the_minor_unit(db: Store, bcfg: Config,
                                                          clock: Clock) -> None:
    add_sub(db, "alice")
    pay(db, bcfg, "alice", "1000", "MP-1")
    clock.set(T0 + 10 * DAY + 3600)  # 10 days and an hour into a 30-day cycle
    ch = billing.change_plan(db, "alice", "fast", "noc", bcfg)
    remaining, length = 20 * 86400 - 3600, 30 * 86400
    assert ch.credit_minor == cycles.round_div(100000 * remaining, length) == 66528
    assert ch.charge_minor == cycles.round_div(200000 * remaining, length) == 133056
    sub = subs.get(db, "alice")
    assert sub.plan == "fast" and ledger.balance(db, sub.id) == 66528 - 133056
    assert db.scalar("SELECT count(*) FROM enforce_jobs") == 0  # no session online


def test_plan_change_errors_change_nothing(db: Store, bcfg: Config) -> None:
    add_sub(db, "alice")
    pay(db, bcfg, "alice", "1000", "MP-1")
    plans.add(db, plans.build("usd", rate="5M", price="10", currency="USD"), "t")
    before = ledger_rows(db)
    with pytest.raises(ValidationError, match="already on plan"):
        billing.change_plan(db, "alice", "home", "noc", bcfg)
    with pytest.raises(BillingError, match="one currency"):
        billing.change_plan(db, "alice", "usd", "noc", bcfg)
    with pytest.raises(NotFound):
        billing.change_plan(db, "alice", "nope", "noc", bcfg)
    with pytest.raises(NotFound):
        billing.change_plan(db, "ghost", "fast", "noc", bcfg)
    assert ledger_rows(db) == before and subs.get(db, "alice").plan == "home"


def test_switch_prepaid_to_postpaid_prorates_then_bills_from_the_cycle_end(
    db: Store, bcfg: Config, clock: Clock,
) -> None:
    add_sub(db, "alice")
    pay(db, bcfg, "alice", "1000", "MP-1")
    clock.days(15)
    ch = billing.change_plan(db, "alice", "biz", "noc", bcfg)
    assert (ch.credit_minor, ch.charge_minor) == (50000, 174000)
    assert invoices.list_(db, username="alice", status="open") == []
    clock.days(30)
    billing.tick(db, bcfg)
    (inv,) = invoices.list_(db, username="alice", status="open")
    assert inv.cycle_start == T0 + 30 * DAY and inv.billing == "postpaid"
    assert ledger.balance(db, subs.get(db, "alice").id) == 50000 - 174000 - 348000


def test_moved_to_a_postpaid_plan_bills_from_the_paid_through_time(db: Store, bcfg: Config,
                                                                   clock: Clock) -> None:
    # The supported way to turn a paid prepaid customer postpaid: a postpaid plan, then a
    # plan change (what `subscriber update --plan` does).
    plans.add(db, plans.build("home-post", rate="10M/10M", price="1000", billing="postpaid"),
              "noc")
    add_sub(db, "alice")
    pay(db, bcfg, "alice", "1000", "MP-1")  # prepaid through T0 + 30 days
    clock.days(10)
    ch = billing.change_plan(db, "alice", "home-post", "noc", bcfg)
    assert ch.credit_minor == ch.charge_minor == 66667  # same price: the swap nets to zero
    sub = subs.get(db, "alice")
    assert sub.plan == "home-post" and ledger.balance(db, sub.id) == 0
    clock.days(30)
    billing.tick(db, bcfg)
    postpaid = [i for i in invoices.list_(db, username="alice") if i.billing == "postpaid"]
    assert [i.cycle_start for i in postpaid] == [T0 + 30 * DAY]  # not back to sign-up


def test_plan_billing_mode_cannot_change_under_subscribers(db: Store, bcfg: Config) -> None:
    add_sub(db, "alice")
    pay(db, bcfg, "alice", "1000", "MP-1")
    before = plans.get(db, "home")
    events = db.scalar("SELECT count(*) FROM events")
    with pytest.raises(ValidationError, match="1 subscriber.*subscriber update USERNAME --plan"):
        plans.update(db, "home", "noc", billing="postpaid")
    with pytest.raises(ValidationError, match="1 subscriber"):
        plans.update(db, "home", "noc", period="7d")
    assert plans.get(db, "home") == before and before.billing == "prepaid"
    assert db.scalar("SELECT count(*) FROM events") == events
    assert subs.get(db, "alice").plan == "home"
    # A plan nobody is on can still be switched.
    assert plans.update(db, "fast", "noc", billing="postpaid").billing == "postpaid"


# ------------------------------------------------------------------ quota and fair usage


def test_quota_reached_turns_on_fair_usage_and_new_cycle_lifts_it(db: Store, bcfg: Config,
                                                                   clock: Clock) -> None:
    plans.add(db, plans.build("capped", rate="10M/10M", price="500", quota="1G",
                              fup_rate="1M/1M"), "t")
    add_sub(db, "dora", "capped")
    pay(db, bcfg, "dora", "1000", "D-1")  # two periods
    start_session(db, "dora", "s1", octets=600_000_000)
    clock.days(1)
    assert billing.tick(db, bcfg).fup_on == 0
    assert usage.cycle_usage(db, "dora", T0) == 600_000_000
    db.conn.execute("UPDATE radius_sessions SET input_octets = 1000000001, last_update_at = ?",
                    (clock(),))
    assert billing.tick(db, bcfg).fup_on == 1
    assert db.scalar("SELECT fup_active FROM subscribers") == 1
    from jasiyo.agent import desired

    assert desired.for_subscriber(db, "dora", bcfg.radius).rate_limit == "1M/1M"
    jobs = db.all("SELECT action, reason FROM enforce_jobs")
    assert jobs == [{"action": "coa", "reason": "fair usage"}]
    clock.days(30)  # the second paid period starts: a fresh quota
    billing.tick(db, bcfg)
    assert db.scalar("SELECT fup_active FROM subscribers") == 0


# ------------------------------------------------------------------ catch-up


def _seed_catchup(db: Store, cfg: Config) -> None:
    plans.add(db, plans.build("day", rate="5M", price="100", period="1d"), "t")
    plans.add(db, plans.build("two", rate="5M", price="150", period="2d", grace="1d"), "t")
    plans.add(db, plans.build("pday", rate="5M", price="200", period="1d", billing="postpaid",
                              tax_rate="16", grace="1d"), "t")
    add_sub(db, "p-renew", "day")
    add_sub(db, "p-lapse", "day")
    add_sub(db, "p-grace", "two")
    add_sub(db, "q-post", "pday")
    add_sub(db, "q-late", "pday")
    pay(db, cfg, "p-renew", "250", "R1")
    pay(db, cfg, "p-lapse", "100", "L1")
    pay(db, cfg, "p-grace", "150", "G1")


def _snapshot(db: Store) -> dict[str, Any]:
    # Invoice numbers are given in the order invoices are issued: a payment typed while the
    # agent is down is numbered before the catch-up's invoices. Compare invoices by cycle.
    invs = db.all("SELECT i.number, i.plan, i.billing, i.cycle_start, i.cycle_end, "
                  "i.total_minor, i.issued_at, i.due_at, i.status, i.paid_at, "
                  "s.username FROM invoices i JOIN subscribers s "
                  "ON s.id = i.subscriber_id ORDER BY s.username, i.cycle_start")
    by_cycle = {i["number"]: f"{i['username']}@{i['cycle_start']:.0f}" for i in invs}
    numbers = sorted(by_cycle)
    series = numbers[0].rsplit("-", 1)[0]  # an unnamed POP numbers by its agent id
    assert series.startswith("INV-") and series.endswith("-2026")
    assert numbers == [f"{series}-{n:06d}" for n in range(1, len(numbers) + 1)]  # no gaps
    return {
        "ledger": [(*r[:4], by_cycle.get(r[4], r[4])) for r in ledger_rows(db)],
        "invoices": [{**i, "number": by_cycle[i["number"]]} for i in invs],
        "subscribers": db.all("SELECT username, status, status_reason, status_changed_at, "
                              "paid_until, fup_active FROM subscribers ORDER BY username"),
        "notifications": db.all("SELECT key, kind, message, created_at, not_after "
                                "FROM notifications ORDER BY key"),
        "state": db.all("SELECT * FROM billing_state ORDER BY subscriber_id"),
    }


def test_three_days_down_equals_three_days_running(tmp_path: Path) -> None:
    extra = "invoice_due_days = 1\nterminate_after_days = 2\nreminder_days = [1]"
    results = []
    for name, step in (("continuous", 300.0), ("downtime", None)):
        clock = Clock()
        cfg = billing_config(tmp_path / name, extra)
        db = open_store(cfg, clock)
        _seed_catchup(db, cfg)
        billing.tick(db, cfg)
        paid = False
        end = T0 + 3 * DAY
        t = T0
        while t < end:
            t = min(end, t + step) if step else end
            if not paid and t >= T0 + 1.5 * DAY:
                clock.set(T0 + 1.5 * DAY)  # q-late pays, the CLI at the same moment in both
                pay(db, cfg, "q-late", "232", "Q1")
                paid = True
            clock.set(t)
            billing.tick(db, cfg)
        if step is None:  # the recovered agent ticks again at the same time: no change
            before = _snapshot(db)
            billing.tick(db, cfg)
            assert _snapshot(db) == before
        results.append(_snapshot(db))
        db.close()
    continuous, downtime = results
    assert downtime == continuous
    statuses = {r["username"]: r["status"] for r in continuous["subscribers"]}
    # p-renew: 2 days bought, wallet 50 < 100 at day 2 -> suspended. p-lapse: suspended at
    # day 1, terminated at day 3. p-grace: expired day 2, grace 1 day -> suspended day 3.
    # q-post: invoice due day 1, grace to day 2, suspended. q-late: paid the first invoice
    # in grace (restored), then the day-1 invoice fell due on day 2 -> grace -> suspended.
    assert statuses == {"p-renew": "suspended", "p-lapse": "terminated",
                        "p-grace": "suspended", "q-post": "suspended", "q-late": "suspended"}
    per_user: dict[str, int] = {}
    for inv in continuous["invoices"]:
        per_user[inv["username"]] = per_user.get(inv["username"], 0) + 1
    # postpaid invoices stop once suspended; q-late's day-3 invoice precedes its suspension
    assert per_user == {"p-renew": 2, "p-lapse": 1, "p-grace": 1, "q-post": 3, "q-late": 4}
    assert len({(i["username"], i["cycle_start"]) for i in continuous["invoices"]}) == 11
