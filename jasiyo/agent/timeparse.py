"""Reading a point in time a person typed: ``2026-11-01``, ``2026-11-01T08:00`` (in the
tenant's time zone unless it names an offset) or an age such as ``7d``, ``12h``, ``30m``."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from jasiyo.errors import ValidationError

_AGE = re.compile(r"^([0-9]{1,6})([dhm])$")
_UNIT = {"d": 86400, "h": 3600, "m": 60}


def since(text: str, tz: str, now: float) -> float:
    """The epoch seconds ``text`` names."""
    m = _AGE.match(text.strip())
    if m:
        return now - int(m.group(1)) * _UNIT[m.group(2)]
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"--since {text!r}: give a date (2026-11-01), a date and time "
                              "(2026-11-01T08:00) or an age (7d, 12h, 30m)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(tz))
    return when.timestamp()


def local(ts: float | None, tz: str) -> str | None:
    """Epoch seconds as ISO 8601 in the tenant's time zone (with its offset)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).isoformat(timespec="seconds")
