"""Money: proration between plans of different periods, one duration syntax,
refunds within the balance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jasiyo.agent import billing, cycles, ledger, payments, plans, validate
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import ValidationError
from tests.agent.billing_support import DAY, T0, Clock, add_sub, billing_config, open_store


@pytest.fixture
def bcfg(tmp_path: Path) -> Config:
    return billing_config(tmp_path)


@pytest.fixture
def db(bcfg: Config, clock: Clock) -> Iterator[Store]:
    s = open_store(bcfg, clock)
    plans.add(s, plans.build("wk", rate="5M/5M", price="400", period="1w"), "t")
    plans.add(s, plans.build("mo", rate="10M/10M", price="3000", period="30d"), "t")
    plans.add(s, plans.build("cal", rate="10M/10M", price="3100", period="1mo"), "t")
    yield s
    s.close()


def _balance(db: Store, user: str) -> int:
    return ledger.balance(db, subs.get(db, user).id)


def test_week_to_month_charges_the_month_price_for_the_week_left(
    db: Store,
    bcfg: Config,
    clock: Clock,
) -> None:
    add_sub(db, "kamau", "wk")
    payments.record(db, bcfg, "kamau", "400", "QWK0000001", method="mpesa", actor="t")
    ch = billing.change_plan(db, "kamau", "mo", "t", bcfg)
    # 7 days of a 3,000-per-30-days plan is 700, not 3,000
    assert (ch.credit_minor, ch.charge_minor) == (40000, 70000)
    assert _balance(db, "kamau") == -30000
    assert subs.get(db, "kamau").paid_until == T0 + 7 * DAY  # the paid cycle's bounds stay


def test_month_to_week_charges_the_weeks_in_the_month_left(
    db: Store,
    bcfg: Config,
    clock: Clock,
) -> None:
    add_sub(db, "wanjiru", "mo")
    payments.record(db, bcfg, "wanjiru", "3000", "QMO0000001", method="mpesa", actor="t")
    clock.set(T0 + 16 * DAY)  # 14 days left of 30
    ch = billing.change_plan(db, "wanjiru", "wk", "t", bcfg)
    assert ch.credit_minor == 140000  # 3000 x 14/30
    assert ch.charge_minor == 80000  # two weeks at 400, not 400 x 14/30 = 186.67
    assert _balance(db, "wanjiru") == 60000


def test_changing_back_at_once_costs_nothing(db: Store, bcfg: Config, clock: Clock) -> None:
    add_sub(db, "otieno", "wk")
    payments.record(db, bcfg, "otieno", "400", "QWK0000002", actor="t")
    clock.set(T0 + 2.5 * DAY)
    billing.change_plan(db, "otieno", "cal", "t", bcfg)
    billing.change_plan(db, "otieno", "wk", "t", bcfg)
    assert _balance(db, "otieno") == 0


def test_rate_for_cycle_uses_the_calendar_month_that_starts_with_the_cycle() -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Africa/Nairobi")
    start = T0  # 2026-01-05: January has 31 days
    week_end = start + 7 * DAY
    assert billing.rate_for_cycle(310000, "1mo", start, week_end, tz) == 70000
    month_end = cycles.period_end(start, "1mo", tz)
    assert billing.rate_for_cycle(310000, "1mo", start, month_end, tz) == 310000
    assert billing.rate_for_cycle(40000, "1w", start, month_end, tz) == 177143  # 31/7 weeks


# ------------------------------------------------------------------ durations


@pytest.mark.parametrize(
    "text, seconds", [("90s", 90), ("30min", 1800), ("12h", 43200), ("3d", 259200), ("2w", 1209600)]
)
def test_one_duration_syntax(text: str, seconds: int) -> None:
    assert validate.duration_seconds(text) == seconds


@pytest.mark.parametrize(
    "text, canonical",
    [("30d", "30d"), ("1W", "1w"), ("1mo", "1mo"), ("2 months", "2mo"), ("1h", "1h"), ("30min", "30min")],
)
def test_periods_parse_to_one_canonical_form(text: str, canonical: str) -> None:
    assert validate.period(text) == canonical


def test_bare_m_is_refused_as_ambiguous() -> None:
    with pytest.raises(ValidationError, match="minutes or months.*1min or 1mo"):
        validate.period("1m")
    with pytest.raises(ValidationError, match="minutes or months"):
        validate.duration_seconds("5m")


def test_hourly_plan_ends_an_hour_later(db: Store) -> None:
    plan = plans.add(db, plans.build("hour", rate="5M", price="20", period="1h"), "t")
    from zoneinfo import ZoneInfo

    assert cycles.period_end(T0, plan.period, ZoneInfo("UTC")) == T0 + 3600


def test_grace_in_hours_or_minutes_is_refused_not_rounded_to_zero() -> None:
    for text in ("12h", "1m", "90min"):
        with pytest.raises(ValidationError, match="grace"):
            plans.build("g2", rate="5M", price="100", grace=text)
    assert plans.build("g2", rate="5M", price="100", grace="2d").grace_days == 2
    assert plans.build("g2", rate="5M", price="100", grace="1w").grace_days == 7
    assert plans.build("g2", rate="5M", price="100", grace="0d").grace_days == 0


def test_a_store_from_before_keeps_its_month_plans_as_months(bcfg: Config, clock: Clock) -> None:
    """m013 rewrites a stored period '1m' (months, before) as '1mo'."""
    import sqlite3

    from jasiyo.agent.schema import migrations
    from jasiyo.migrations import SqliteLedger

    open_store(bcfg, clock).close()
    db = sqlite3.connect(bcfg.db_path, isolation_level=None)
    db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm013_period_months_mo'")
    db.execute(
        "INSERT INTO plans (name, rate, price_minor, currency, period, created_at, "
        "updated_at) VALUES ('old', '5M/5M', 100, 'KES', '3m', 0, 0)"
    )
    assert migrations.apply(SqliteLedger(db)) == ["m013_period_months_mo"]
    assert db.execute("SELECT period FROM plans WHERE name = 'old'").fetchone()[0] == "3mo"
    db.close()
