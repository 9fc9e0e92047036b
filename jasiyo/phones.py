"""Phone numbers as customers write them, stored as E.164 (``+254712345678``).

Kenyan and Nigerian customers write ``0712 345 678``, ``0712-345-678``, ``254712345678``,
``+254712345678``, ``0803 123 4567`` or ``+234 803 123 4567``; all of them mean one number.
A local number (leading 0) takes the country of ``[billing] country``.
"""

from __future__ import annotations

import re

from jasiyo.errors import ValidationError

#: Country -> (calling code, digits of the national number without its leading 0).
COUNTRIES: dict[str, tuple[str, tuple[int, ...]]] = {
    "KE": ("254", (9,)),
    "NG": ("234", (10,)),
    "UG": ("256", (9,)),
    "TZ": ("255", (9,)),
    "RW": ("250", (9,)),
    "GH": ("233", (9,)),
    "ZA": ("27", (9,)),
}
_SEPARATORS = re.compile(r"[\s\-().]")


def normalize(text: str, country: str = "KE") -> str:
    """E.164 for ``text``; ValidationError with an example when it is not a phone number."""
    raw = text or ""
    s = _SEPARATORS.sub("", raw.strip())
    cc, lengths = COUNTRIES.get(country.upper(), COUNTRIES["KE"])
    if s.startswith("00"):
        s = "+" + s[2:]
    if (
        not s
        or not (s[1:] if s.startswith("+") else s).isascii()
        or not (s[1:] if s.startswith("+") else s).isdigit()
    ):
        raise ValidationError(f"bad phone number {raw!r}: write it as 0712345678 or +254712345678")
    if s.startswith("+"):
        digits = s[1:]
    elif s.startswith("0") and len(s) - 1 in lengths:
        digits = cc + s[1:]
    elif s.startswith(cc) and len(s) - len(cc) in lengths:
        digits = s
    elif len(s) in lengths and not s.startswith("0"):
        digits = cc + s  # 712345678: the leading 0 left out
    else:
        raise ValidationError(f"bad phone number {raw!r}: write it as 0712345678 or +{cc}712345678")
    for code, (ccode, lens) in COUNTRIES.items():
        if digits.startswith(ccode):
            if len(digits) - len(ccode) not in lens:
                raise ValidationError(
                    f"bad phone number {raw!r}: a {code} number has {lens[0]} digits after +{ccode}"
                )
            break
    if not 8 <= len(digits) <= 15:
        raise ValidationError(f"bad phone number {raw!r}: too short or too long")
    return "+" + digits


def msisdn(e164: str) -> str:
    """The form M-Pesa wants: digits only, no ``+`` (``254712345678``)."""
    return e164.lstrip("+")
