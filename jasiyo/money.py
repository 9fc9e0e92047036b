"""Money: integer minor units of the currencies our customers bill in, parsed and printed."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from jasiyo.errors import ValidationError

#: ISO 4217 minor-unit exponents for the currencies our customers bill in.
CURRENCY_EXPONENT: dict[str, int] = {
    "KES": 2,
    "NGN": 2,
    "GHS": 2,
    "ZAR": 2,
    "TZS": 2,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "XOF": 0,
    "XAF": 0,
    "UGX": 0,
    "RWF": 0,
    "ZMW": 2,
    "MWK": 2,
    "ETB": 2,
    "EGP": 2,
}


def check_currency(code: str) -> str:
    code = code.strip().upper()
    if code not in CURRENCY_EXPONENT:
        known = ", ".join(sorted(CURRENCY_EXPONENT))
        raise ValidationError(f"unknown currency {code!r}; known: {known}")
    return code


#: ASCII digits; commas only as thousands separators ("15,00" is refused, not read as 1500).
_AMOUNT_RE = re.compile(r"^-?(\d+|\d{1,3}(,\d{3})+)(\.\d+)?$", re.ASCII)


def parse_money(text: str | int, currency: str, *, allow_zero: bool = True) -> int:
    """``"1500.00"`` KES -> 150000 minor units. Rejects negatives, excess precision, junk."""
    currency = check_currency(currency)
    exp = CURRENCY_EXPONENT[currency]
    raw = str(text).strip()
    if not _AMOUNT_RE.match(raw):
        raise ValidationError(f"bad amount {text!r}: expected a number like 1500, 1,500 or 1500.00")
    try:
        value = Decimal(raw.replace(",", ""))
    except InvalidOperation:
        raise ValidationError(f"bad amount {text!r}: expected a number like 1500 or 1500.00") from None
    if not value.is_finite():
        raise ValidationError(f"bad amount {text!r}: expected a number like 1500 or 1500.00")
    if value < 0:
        raise ValidationError(f"bad amount {text!r}: amounts cannot be negative")
    if value == 0 and not allow_zero:
        raise ValidationError(f"bad amount {text!r}: amount must be above zero")
    minor = value.scaleb(exp)
    if minor != minor.to_integral_value():
        raise ValidationError(f"bad amount {text!r}: {currency} has {exp} decimal places")
    if minor > 10**15:
        raise ValidationError(f"bad amount {text!r}: too large")
    return int(minor)


def format_money(minor: int, currency: str) -> str:
    exp = CURRENCY_EXPONENT.get(currency, 2)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exp) if exp else (abs(minor), 0)
    body = f"{whole:,}" + (f".{frac:0{exp}d}" if exp else "")
    return f"{sign}{currency} {body}"
