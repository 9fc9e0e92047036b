"""Validation of names, addresses and periods typed by engineers. Raises ValidationError."""

from __future__ import annotations

import ipaddress
import re
import unicodedata

from jasiyo.errors import ValidationError

# ``\Z``, not ``$``: ``$`` also matches before a final newline, so ``'mallory\n'`` passed
# and made a twin subscriber that prints like ``mallory``. ``[0-9]``, not ``\d``: ``\d``
# takes every script's digits.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+:-]{0,127}\Z")
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}\Z")
#: One duration syntax for every option: a whole number and a unit. ``m`` alone is refused:
#: it meant minutes in some options and months in others (``min`` / ``mo`` say which).
_DURATION = re.compile(r"^([0-9]{1,6})\s*([a-z]+)\Z")
_UNITS = {"s": 1, "sec": 1, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_MONTH_UNITS = ("mo", "month", "months")
#: Unicode categories refused in anything a person reads: controls (C0, C1), format
#: characters (bidirectional overrides U+202E, isolates, zero-width space and joiners, soft
#: hyphen, BOM), private use, surrogates, unassigned, line and paragraph separators.
_HIDDEN = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})


def hidden_characters(value: str) -> list[str]:
    """The code points of ``value`` that do not show, or that reorder what does show."""
    return [f"U+{ord(c):04X}" for c in value if unicodedata.category(c) in _HIDDEN]


def name(value: str, what: str = "name") -> str:
    if not _NAME.match(value or ""):
        raise ValidationError(
            f"bad {what} {value!r}: use letters, digits, '.', '_' or '-' (up to 64, no spaces)"
        )
    return value


def username(value: str) -> str:
    if not _USERNAME.match(value or ""):
        raise ValidationError(
            f"bad username {value!r}: use letters, digits and . _ @ + : - (no spaces, up to 128)"
        )
    return value


def password(value: str) -> str:
    # RADIUS carries at most 128 bytes of User-Password (RFC 2865 5.2).
    if not value or len(value.encode()) > 128:
        raise ValidationError("bad password: must be 1 to 128 bytes (UTF-8)")
    if any(ord(c) < 32 for c in value):
        raise ValidationError("bad password: control characters are not allowed")
    return value


def phone(value: str | None, country: str = "KE") -> str | None:
    """E.164 from what a customer writes (``0712 345 678``, ``254712345678``, ...)."""
    if value in (None, ""):
        return None
    from jasiyo.phones import normalize

    if hidden_characters(value) or any(c in value for c in "\t\n\r\v\f"):
        raise ValidationError(f"bad phone {value!r}: use E.164, e.g. +254712345678")
    v = normalize(value, country)
    if not _PHONE.match(v):
        raise ValidationError(f"bad phone {value!r}: use E.164, e.g. +254712345678")
    return v


def ipv4(value: str | None, what: str = "IP address") -> str | None:
    if value in (None, ""):
        return None
    try:
        ip = ipaddress.IPv4Address(value)
    except ValueError:
        raise ValidationError(f"bad {what} {value!r}: expected an IPv4 address like 10.0.0.5") from None
    if ip.is_loopback or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        raise ValidationError(f"bad {what} {value!r}: not a usable host address")
    return str(ip)


def host(value: str) -> str:
    """A router's management address: an IP or a DNS name."""
    if not value or len(value) > 253 or any(c.isspace() for c in value):
        raise ValidationError(f"bad host {value!r}")
    return value


def port(value: int | None) -> int | None:
    if value is None:
        return None
    if not 1 <= value <= 65535:
        raise ValidationError(f"bad port {value}: must be 1-65535")
    return value


def _split_duration(value: str, what: str, example: str) -> tuple[int, str]:
    v = (value or "").strip().lower()
    m = _DURATION.match(v)
    if not m:
        raise ValidationError(f"bad {what} {value!r}: use a number and a unit, e.g. {example}")
    n, unit = int(m.group(1)), m.group(2)
    if unit == "m":
        raise ValidationError(
            f"bad {what} {value!r}: 'm' could mean minutes or months; write {n}min or {n}mo"
        )
    if unit in _MONTH_UNITS:
        return n, "mo"
    if unit not in _UNITS:
        raise ValidationError(f"bad {what} {value!r}: unknown unit {unit!r}; use s, min, h, d, w or mo")
    return n, "s" if unit == "sec" else unit


def period(value: str) -> str:
    """A billing period, canonical: ``30min``, ``1h``, ``30d``, ``1w`` or ``1mo`` (months).

    Months are calendar months in the billing time zone; the other units are exact.
    """
    n, unit = _split_duration(value, "period", "30d, 1w, 1mo or 1h")
    if unit == "s" or n < 1 or (unit != "mo" and n * _UNITS[unit] > 3660 * 86400) or n > 120:
        raise ValidationError(
            f"bad period {value!r}: use minutes, hours, days, weeks or months from 1min to "
            "10 years, e.g. 30d, 1w, 1mo or 1h"
        )
    return f"{n}{unit}"


def duration_seconds(value: str, what: str = "duration") -> int:
    """A fixed length of time (``90s``, ``30min``, ``12h``, ``3d``, ``2w``) in seconds.

    Months have no fixed length, so they are refused here (use days).
    """
    n, unit = _split_duration(value, what, "3d, 12h or 30min")
    if unit == "mo":
        raise ValidationError(f"bad {what} {value!r}: a month has no fixed length; use days, e.g. 30d")
    return n * _UNITS[unit]


def grace_days(value: str) -> int:
    """A plan's grace, which the billing clock counts in whole days (``0d`` .. ``365d``)."""
    seconds = duration_seconds(value, "grace")
    if seconds % 86400:
        raise ValidationError(
            f"bad grace {value!r}: grace is counted in whole days (e.g. 1d, 3d, 0d for none)"
        )
    days = seconds // 86400
    if days > 365:
        raise ValidationError(f"bad grace {value!r}: at most 365 days")
    return days


_TAX_PIN = re.compile(r"^[A-Z0-9][A-Z0-9-]{3,19}$")


def tax_pin(value: str | None) -> str | None:
    """A tax identification number (KRA PIN ``A123456789B``, Nigerian TIN ``12345678-0001``)."""
    if value in (None, ""):
        return None
    v = value.strip().upper()
    if not _TAX_PIN.match(v):
        raise ValidationError(
            f"bad tax PIN {value!r}: letters, digits and '-' only, 4-20 characters (e.g. A123456789B)"
        )
    return v


def text(value: str | None, what: str, limit: int = 200) -> str | None:
    """Free text (a customer's name): no control characters, bounded length."""
    if value in (None, ""):
        return None
    v = value.strip(" ")  # only spaces: a trailing newline is an error, not trimmed away
    if len(v) > limit:
        raise ValidationError(f"bad {what}: at most {limit} characters")
    hidden = hidden_characters(v)
    if hidden:
        raise ValidationError(
            f"bad {what}: control, invisible or text-direction characters are not allowed "
            f"({', '.join(dict.fromkeys(hidden))})"
        )
    return v


def mac(value: str | None) -> str | None:
    """A MAC address, normalised to ``AA:BB:CC:DD:EE:FF``; None or "" for none."""
    if value is None or not value.strip():
        return None
    from jasiyo.network import normalize_mac

    out = normalize_mac(value)
    if out is None:
        raise ValidationError(f"bad MAC address {value!r}: expected e.g. AA:BB:CC:DD:EE:FF")
    return out
