"""The desired network state of a subscriber, and the rates (MikroTik syntax) it carries.

With :mod:`jasiyo.money`, the only things of ours that ``radius``, ``drivers`` and ``sync``
import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from jasiyo.errors import ValidationError

# ---------------------------------------------------------------- rates (MikroTik syntax)

_RATE_RE = re.compile(r"^(\d+(?:\.\d+)?)([kKmMgG]?)$", re.ASCII)
_UNITS = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


def parse_bps(text: str) -> int:
    """``"10M"`` -> 10_000_000. Units as RouterOS: k=1e3, M=1e6, G=1e9."""
    m = _RATE_RE.match(text.strip())
    if not m:
        raise ValidationError(f"bad rate {text!r}: expected a number with optional k/M/G, e.g. 10M")
    value = Decimal(m.group(1)) * _UNITS[m.group(2).lower()]
    if value != int(value):
        raise ValidationError(f"bad rate {text!r}: not a whole number of bits per second")
    return int(value)


def format_bps(bps: int) -> str:
    for unit, factor in (("G", 1_000_000_000), ("M", 1_000_000), ("k", 1_000)):
        if bps >= factor and bps % factor == 0:
            return f"{bps // factor}{unit}"
    return str(bps)


@dataclass(frozen=True, slots=True)
class Rate:
    """An rx/tx pair from the router's view: rx = client upload, tx = client download."""

    rx: int
    tx: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        parts = text.strip().split("/")
        if not 1 <= len(parts) <= 2 or not all(parts):
            raise ValidationError(f"bad rate {text!r}: expected RX[/TX], e.g. 10M/10M")
        rx = parse_bps(parts[0])
        tx = parse_bps(parts[1]) if len(parts) == 2 else rx
        if rx <= 0 or tx <= 0:
            raise ValidationError(f"bad rate {text!r}: rates must be above zero")
        return cls(rx, tx)

    def __str__(self) -> str:
        return f"{format_bps(self.rx)}/{format_bps(self.tx)}"


@dataclass(frozen=True, slots=True)
class Burst:
    """Burst rate, threshold and time, as in ``Mikrotik-Rate-Limit``'s 2nd-4th fields."""

    rate: Rate
    threshold: Rate
    time_s: tuple[int, int]

    @classmethod
    def parse(cls, text: str, base: Rate) -> Burst:
        """``"20M/20M 8M/8M 16/16"``: burst rate, burst threshold, burst time (seconds)."""
        fields = text.split()
        if not 1 <= len(fields) <= 3:
            raise ValidationError(
                f"bad burst {text!r}: expected 'RATE [THRESHOLD [SECONDS]]', e.g. '20M/20M 8M/8M 16/16'"
            )
        rate = Rate.parse(fields[0])
        if rate.rx < base.rx or rate.tx < base.tx:
            raise ValidationError(f"bad burst {text!r}: burst rate is below the plan rate {base}")
        threshold = Rate.parse(fields[1]) if len(fields) > 1 else base
        if len(fields) > 2:
            t = fields[2].split("/")
            try:
                secs = (int(t[0]), int(t[-1]))
            except ValueError:
                raise ValidationError(f"bad burst time in {text!r}: expected seconds like 16/16") from None
            if len(t) > 2 or min(secs) <= 0:
                raise ValidationError(f"bad burst time in {text!r}: expected seconds like 16/16")
        else:
            secs = (1, 1)
        return cls(rate, threshold, secs)

    def __str__(self) -> str:
        return f"{self.rate} {self.threshold} {self.time_s[0]}/{self.time_s[1]}"


def mikrotik_rate_limit(rate: str, burst: str | None = None) -> str:
    """The ``Mikrotik-Rate-Limit`` value for a plan rate and optional burst."""
    base = Rate.parse(rate)
    if not burst:
        return str(base)
    return f"{base} {Burst.parse(burst, base)}"


# ---------------------------------------------------------------- devices

_HEX = frozenset("0123456789ABCDEF")
_MAC_RE = re.compile(r"[0-9A-F]{2}(?::[0-9A-F]{2}){5}", re.ASCII)


def normalize_mac(text: str | None) -> str | None:
    """A MAC address as ``AA:BB:CC:DD:EE:FF``, whatever the separators (``:``, ``-``, ``.``
    or none) and case; None if ``text`` is not a MAC (e.g. a NAS sending an IP instead)."""
    if not text:
        return None
    if _MAC_RE.fullmatch(text):  # already so (what a MikroTik sends): on every request
        return text
    digits = "".join(c for c in text.strip().upper() if c not in ":-. ")
    if len(digits) != 12 or not _HEX.issuperset(digits):
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


# ---------------------------------------------------------------- desired network state


class Access(StrEnum):
    """What the network should do with a subscriber."""

    ALLOW = "allow"
    WALLED_GARDEN = "walled_garden"  # accepted, low rate, in the suspended address list
    REJECT = "reject"


class Service(StrEnum):
    PPPOE = "pppoe"
    HOTSPOT = "hotspot"
    STATIC = "static"


class Status(StrEnum):
    ACTIVE = "active"
    GRACE = "grace"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class DesiredState:
    """What one subscriber's network access should be, computed from billing.

    RADIUS replies are built from it; drivers diff it against the router. ``rate_limit`` is
    a complete ``Mikrotik-Rate-Limit`` value; ``address_list`` names the firewall address
    list the subscriber's address must be in (the walled garden), or ``None``.
    """

    username: str
    service: Service
    access: Access
    rate_limit: str
    plan: str
    ip: str | None = None
    address_list: str | None = None
    session_timeout: int | None = None
    interim_interval: int | None = None
    #: Session limits (issues 12 and 17). ``ends_at``: Session-Timeout never reaches past
    #: it (prepaid paid-through time, a voucher's end); with ``hard_end`` access is refused
    #: after it. ``duration``: a package whose clock starts at the first login lasts this
    #: many seconds from then, if it starts before ``starts_by``. ``data_limit``: bytes
    #: the package allows, counted from ``data_since``. ``simultaneous_use``: sessions at
    #: once. ``mac``: the only device allowed (normalised Calling-Station-Id). ``note``:
    #: why access is refused, for the customer (shown only once the password was right).
    ends_at: float | None = None
    hard_end: bool = False
    duration: int | None = None
    starts_by: float | None = None
    data_limit: int | None = None
    data_since: float | None = None
    simultaneous_use: int | None = None
    mac: str | None = None
    note: str | None = None
    #: Cleartext password, for drivers that keep PPP secrets / hotspot users on the router
    #: (driver mode "api"); None when the router authenticates through RADIUS.
    password: str | None = field(default=None, repr=False)
