"""A plan's fair-usage rate and burst are checked, not silently completed."""

from __future__ import annotations

import pytest

from jasiyo.agent import plans
from jasiyo.agent.store import Store
from jasiyo.errors import ValidationError


def test_fup_rate_above_the_plan_rate_is_refused() -> None:
    with pytest.raises(ValidationError, match="fair-usage rate '20M/20M': must be below"):
        plans.build("p", rate="10M/10M", price="1", quota="100G", fup_rate="20M/20M")
    assert plans.build("p", rate="10M/10M", price="1", quota="100G", fup_rate="2M/2M").fup_rate == "2M/2M"


def test_a_burst_needs_rate_threshold_and_time() -> None:
    with pytest.raises(ValidationError, match="give all three.*'20M/20M 7500k/7500k 16/16'"):
        plans.build("p", rate="10M/10M", price="1", burst="20M")
    with pytest.raises(ValidationError, match="threshold must be below the plan rate"):
        plans.build("p", rate="10M/10M", price="1", burst="20M/20M 10M/10M 16/16")
    with pytest.raises(ValidationError, match="above the plan rate"):
        plans.build("p", rate="10M/10M", price="1", burst="10M/10M 8M/8M 16/16")
    p = plans.build("p", rate="10M/10M", price="1", burst="20M/20M 8M/8M 16/16")
    assert p.burst == "20M/20M 8M/8M 16/16"


def test_an_old_plan_with_a_short_burst_stays_editable(store: Store) -> None:
    store.conn.execute(
        "INSERT INTO plans (name, rate, burst, price_minor, currency, period, "
        "created_at, updated_at) VALUES ('old', '10M/10M', '20M/20M', 100, "
        "'KES', '30d', 0, 0)"
    )
    assert plans.update(store, "old", "t", price="2").price_minor == 200
    with pytest.raises(ValidationError, match="give all three"):
        plans.update(store, "old", "t", burst="30M/30M")


def test_update_takes_the_strings_build_takes(store: Store) -> None:
    plans.add(store, plans.build("home", rate="10M/10M", price="1500", quota="100G", fup_rate="2M/2M"), "t")
    p = plans.update(store, "home", "t", price="1,500.50", grace="2d", tax_rate="16")
    assert (p.price_minor, p.grace_days, p.tax_rate_bp) == (150050, 2, 1600)
    p = plans.update(store, "home", "t", quota="")  # clearing the quota clears the FUP rate
    assert (p.quota_bytes, p.fup_rate) == (None, None)
    with pytest.raises(ValidationError, match="--currency needs --price"):
        plans.update(store, "home", "t", currency="USD")
    with pytest.raises(ValidationError, match="bad amount"):
        plans.update(store, "home", "t", price="15,00")
    assert plans.get(store, "home").price_minor == 150050
