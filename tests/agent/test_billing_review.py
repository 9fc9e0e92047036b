"""Regression tests for money bugs found in review: each one fails without its fix."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

from jasiyo.agent import billing, invoices, ledger, payments, plans
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import ValidationError
from tests.agent.billing_support import (
    DAY,
    T0,
    Clock,
    add_sub,
    billing_config,
    open_store,
    seed_plans,
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


def _balance(db: Store, username: str) -> int:
    return ledger.balance(db, subs.get(db, username).id)


def test_switching_plans_back_and_forth_in_a_cycle_creates_no_money(
    db: Store,
    bcfg: Config,
    clock: Clock,
) -> None:
    add_sub(db, "alice", "fast")
    payments.record(db, bcfg, "alice", "2000", "P1", actor="t")
    assert _balance(db, "alice") == 0
    # fast 0..10d, home 10..20d, fast 20..30d, then flip every minute a few times more
    clock.set(T0 + 10 * DAY)
    billing.change_plan(db, "alice", "home", "t", bcfg)
    clock.set(T0 + 20 * DAY)
    billing.change_plan(db, "alice", "fast", "t", bcfg)
    for k in range(6):
        clock.set(T0 + 20 * DAY + 60 * (k + 1))
        billing.change_plan(db, "alice", "home" if k % 2 == 0 else "fast", "t", bcfg)
    length = 30 * DAY
    fast, home = 200000, 100000
    segments = [(fast, 10 * DAY), (home, 10 * DAY)]
    segments += [(fast, 60), (home, 60)] * 3
    segments += [(fast, 10 * DAY - 360)]
    owed = sum(Fraction(price * int(secs), int(length)) for price, secs in segments)
    # each change rounds its credit and its charge to the minor unit, nothing more
    assert abs((200000 - _balance(db, "alice")) - owed) <= 8 * 1


def test_a_payment_reference_in_another_case_is_the_same_payment(
    db: Store,
    bcfg: Config,
) -> None:
    add_sub(db, "alice")
    first = payments.record(db, bcfg, "alice", "1000", "QX12AB", actor="t")
    again = payments.record(db, bcfg, "alice", "1000", "qx12ab", actor="t")
    assert first.created and not again.created
    assert again.payment.reference == "QX12AB"  # stored as first given
    assert _balance(db, "alice") == first.balance_minor
    assert db.scalar("SELECT count(*) FROM ledger WHERE kind = 'payment'") == 1
    with pytest.raises(ValidationError, match="already recorded"):
        payments.record(db, bcfg, "alice", "999", "Qx12aB", actor="t")
    assert payments.get(db, "qx12ab").reference == "QX12AB"


def test_paying_the_postpaid_invoice_in_full_clears_an_upgrades_proration(
    db: Store,
    bcfg: Config,
    clock: Clock,
) -> None:
    add_sub(db, "carol", "biz")
    billing.tick(db, bcfg)
    payments.record(db, bcfg, "carol", "3480", "P1", actor="t")
    clock.days(15)
    billing.change_plan(db, "carol", "biz2", "t", bcfg)  # half a cycle more: KES 870.00
    assert _balance(db, "carol") == -87000
    clock.days(30)
    billing.tick(db, bcfg)
    new = invoices.list_(db, username="carol", status="open")
    assert [(i.total_minor, i.carried_minor) for i in new] == [(522000 + 87000, 87000)]
    clock.days(31)
    payments.record(db, bcfg, "carol", new[0].total_minor, "P2", actor="t")
    assert _balance(db, "carol") == 0
    assert invoices.list_(db, username="carol", status="open") == []
    clock.days(41)
    billing.tick(db, bcfg)
    assert subs.get(db, "carol").status == "active"


def test_resuming_a_postpaid_subscriber_bills_no_suspended_cycles(
    db: Store,
    bcfg: Config,
    clock: Clock,
) -> None:
    add_sub(db, "carol", "biz")
    billing.tick(db, bcfg)
    payments.record(db, bcfg, "carol", "3480", "P1", actor="t")
    clock.days(5)
    subs.suspend(db, "carol", "t", "travelling")
    clock.days(100)
    billing.tick(db, bcfg)
    subs.resume(db, "carol", "t")
    billing.tick(db, bcfg)
    rows = invoices.list_(db, username="carol")
    assert [(i.cycle_start, i.status) for i in rows] == [(T0 + 100 * DAY, "open"), (T0, "paid")]
    assert _balance(db, "carol") == -348000  # one cycle, from the resume
    clock.days(100.5)
    billing.tick(db, bcfg)
    assert subs.get(db, "carol").status == "active"


def test_moving_a_suspended_debtor_to_prepaid_does_not_restore_without_payment(
    db: Store,
    bcfg: Config,
    clock: Clock,
) -> None:
    add_sub(db, "carol", "biz", consent=False)
    billing.tick(db, bcfg)
    clock.days(11)
    billing.tick(db, bcfg)
    assert subs.get(db, "carol").status == "suspended"
    plans.add(db, plans.build("pre", rate="50M/50M", price="3000"), "t")
    billing.change_plan(db, "carol", "pre", "t", bcfg)
    billing.tick(db, bcfg)
    assert subs.get(db, "carol").status == "suspended"
    assert subs.get(db, "carol").paid_until == T0 + 11 * DAY  # no unpaid time
    owed = -_balance(db, "carol")
    r = payments.record(db, bcfg, "carol", owed, "P1", actor="t")
    assert r.restored and subs.get(db, "carol").status == "active"
    assert subs.get(db, "carol").paid_until == T0 + 30 * DAY  # the paid cycle counts now
    assert invoices.list_(db, username="carol", status="open") == []
