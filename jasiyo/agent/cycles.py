"""Billing arithmetic, pure: period ends, tax and proration in integer minor units.

Periods are ``Nmin``, ``Nh``, ``Nd``, ``Nw`` (exact lengths) or ``Nmo`` (calendar months in
the billing time zone; ``Nm``, as stored before m013, is read as months too). A month
cycle keeps its anchor day: a cycle that started on the 31st
ends on the 28th/29th of February and on the 31st of March again, so cycles never drift.
"""

from __future__ import annotations

import calendar
from datetime import datetime
from zoneinfo import ZoneInfo

DAY = 86400


_FIXED = {"min": 60, "h": 3600, "d": DAY, "w": 7 * DAY}


def _split(period: str) -> tuple[int, str]:
    """``"30d"`` -> (30, "d"); months are ``"mo"`` (legacy ``"m"`` too)."""
    digits = len(period) - len(period.lstrip("0123456789"))
    n, unit = int(period[:digits]), period[digits:]
    return n, "mo" if unit in ("m", "mo") else unit


def fixed_seconds(period: str) -> int | None:
    """The exact length of a period in seconds, or None for calendar months."""
    n, unit = _split(period)
    return None if unit == "mo" else n * _FIXED[unit]


def local_day(ts: float, tz: ZoneInfo) -> int:
    """The day of the month of ``ts`` in ``tz`` (the anchor of a month cycle)."""
    return datetime.fromtimestamp(ts, tz).day


def period_end(start: float, period: str, tz: ZoneInfo, anchor_day: int | None = None) -> float:
    """The end of one ``period`` that starts at ``start`` (unix seconds).

    For month periods the end is on ``anchor_day`` (default: ``start``'s day) of the target
    month, clamped to that month's length, at the same local wall-clock time.
    """
    n, unit = _split(period)
    if unit != "mo":
        return start + n * _FIXED[unit]
    dt = datetime.fromtimestamp(start, tz)
    months = dt.month - 1 + n
    year, month = dt.year + months // 12, months % 12 + 1
    day = min(anchor_day or dt.day, calendar.monthrange(year, month)[1])
    return dt.replace(year=year, month=month, day=day).timestamp()


def round_div(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up, exactly (integers only, no floats)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    q, r = divmod(numerator, denominator)
    return q + (1 if 2 * r >= denominator else 0)


def tax(amount_minor: int, rate_bp: int) -> int:
    """Tax on ``amount_minor`` at ``rate_bp`` basis points, rounded half up to the minor unit."""
    return round_div(amount_minor * rate_bp, 10_000)


def prorate(total_minor: int, remaining_s: int, length_s: int) -> int:
    """The share of ``total_minor`` for ``remaining_s`` of a ``length_s`` cycle.

    Whole seconds in, whole minor units out, rounded half up: the customer is credited (or
    charged) exactly this, and the part already used is ``total_minor`` minus it, so no
    minor unit is ever created or lost.
    """
    remaining_s = max(0, min(remaining_s, length_s))
    return round_div(total_minor * remaining_s, length_s)
