"""Amounts are never mis-converted: M-Pesa strings and numbers to integer cents, exactly."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jasiyo.payments.errors import CallbackError
from jasiyo.payments.mpesa import wire


def c2b(amount: object) -> bytes:
    return json.dumps(
        {
            "TransID": "RKTQDM7W6S",
            "TransAmount": amount,
            "TransTime": "",
            "BusinessShortCode": "600638",
            "BillRefNumber": "alice",
            "MSISDN": "25470****149",
        }
    ).encode()


@given(st.integers(min_value=1, max_value=10**12))
def test_every_two_decimal_string_is_exact(cents: int) -> None:
    text = f"{cents // 100}.{cents % 100:02d}"
    assert wire.parse_c2b(c2b(text)).amount_minor == cents


@given(st.integers(min_value=1, max_value=10**9))
def test_whole_and_one_decimal_strings(shillings: int) -> None:
    assert wire.parse_c2b(c2b(str(shillings))).amount_minor == shillings * 100
    assert wire.parse_c2b(c2b(f"{shillings}.5")).amount_minor == shillings * 100 + 50


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999999.99"), places=2))
def test_stk_float_amounts_round_trip(amount: Decimal) -> None:
    # Daraja sends the STK Amount as a JSON number (1.0); repr keeps what the JSON said.
    value = float(amount)
    assert wire.shillings_to_minor(value, "Amount") == int(Decimal(repr(value)) * 100)
    assert wire.shillings_to_minor(value, "Amount") == int(amount * 100)


@given(st.text(max_size=30))
def test_any_other_text_is_refused_or_exact(text: str) -> None:
    try:
        minor = wire.parse_c2b(c2b(text)).amount_minor
    except CallbackError:
        return
    assert Decimal(text) * 100 == minor and minor > 0  # only plain amounts get through


@pytest.mark.parametrize(
    "bad",
    ["NaN", "Infinity", "-1", "+1", "1,500.00", "1_000", "١٢", "0", "0.00", "1.234", "", " 1", "1e2", "0x10"],
)
def test_refused_amount_strings(bad: str) -> None:
    with pytest.raises(CallbackError):
        wire.parse_c2b(c2b(bad))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, 0, True, 1.001, 10**20])
def test_refused_amount_numbers(bad: object) -> None:
    with pytest.raises(CallbackError):
        wire.shillings_to_minor(bad, "Amount")
