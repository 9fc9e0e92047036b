"""Rates and money as engineers type them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jasiyo.errors import ValidationError
from jasiyo.money import format_money, parse_money
from jasiyo.network import Rate, mikrotik_rate_limit


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("1500", 150000),
        ("1,500", 150000),
        ("1,500.50", 150050),
        ("0.01", 1),
        (" 20 ", 2000),
    ],
)
def test_amounts(text: str, minor: int) -> None:
    assert parse_money(text, "KES") == minor


@pytest.mark.parametrize(
    "text", ["15,00", "1_000", "\u0661\u0660\u0660", "-5", "1.234", "nan", "1e3", "", "12,34,567"]
)
def test_bad_amounts_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_money(text, "KES")


def test_zero_decimal_currency() -> None:
    assert parse_money("1500", "UGX") == 1500
    with pytest.raises(ValidationError, match="UGX has 0 decimal places"):
        parse_money("1500.5", "UGX")
    assert format_money(150050, "KES") == "KES 1,500.50"


@given(st.integers(min_value=0, max_value=10**12))
def test_format_then_parse_round_trips(minor: int) -> None:
    assert parse_money(format_money(minor, "KES").split(" ", 1)[1], "KES") == minor


def test_rates() -> None:
    assert str(Rate.parse("10M")) == "10M/10M"
    assert str(Rate.parse("512k/2M")) == "512k/2M"
    assert mikrotik_rate_limit("10M/10M", "20M/20M 8M/8M 16/16") == "10M/10M 20M/20M 8M/8M 16/16"
    for bad in ("10Q", "0/1M", "1M/", "\u0661M", "10M/10M/10M"):
        with pytest.raises(ValidationError):
            Rate.parse(bad)
    with pytest.raises(ValidationError, match="below the plan rate"):
        mikrotik_rate_limit("10M/10M", "5M/5M")
