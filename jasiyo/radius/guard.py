"""A guard against guessing names (voucher codes) through a NAS's login page.

A hotspot login page turns anyone's typing into Access-Requests. Every unknown username
gets the same generic reject as a wrong password, so a reject tells nothing; this makes
guessing slow as well: a device (NAS + Calling-Station-Id) that sends more than ``burst``
unknown usernames, refilled at ``rate`` per second, is refused everything for
``lockout`` seconds, known names too (else a guess that hits would still get in). A
request without a Calling-Station-Id is not tracked (that would lock out a whole NAS).
"""

from __future__ import annotations

import threading

from jasiyo.network import normalize_mac
from jasiyo.ratelimit import Buckets

#: 20 unknown names at once, then one per 30 s; past that the device waits 10 minutes.
BURST = 20
RATE = 1 / 30
LOCKOUT = 600.0


class GuessGuard:
    def __init__(
        self, rate: float = RATE, burst: int = BURST, lockout: float = LOCKOUT, max_devices: int = 100_000
    ) -> None:
        self.lockout = lockout
        self.max_devices = max_devices
        self._buckets = Buckets(rate, burst, max_clients=max_devices)
        self._blocked: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(nas: str, calling_station_id: str) -> str | None:
        mac = normalize_mac(calling_station_id) or calling_station_id.strip()[:64]
        return f"{nas}|{mac}" if mac else None

    def blocked(self, key: str | None, now: float) -> bool:
        if key is None or not self._blocked:
            return False
        return self._is_blocked(key, now)

    def blocked_device(self, nas: str, calling_station_id: str, now: float) -> bool:
        """:meth:`blocked` for a request (nothing computed while nobody is locked out)."""
        if not self._blocked or not calling_station_id:
            return False
        return self.blocked(self.key(nas, calling_station_id), now)

    def _is_blocked(self, key: str, now: float) -> bool:
        with self._lock:
            until = self._blocked.get(key)
            if until is None:
                return False
            if until <= now:
                del self._blocked[key]
                return False
            return True

    def unknown(self, key: str | None, now: float) -> None:
        """An unknown username came from ``key``."""
        if key is None or self._buckets.take(key, now):
            return
        with self._lock:
            if len(self._blocked) >= self.max_devices:
                self._blocked = {k: t for k, t in self._blocked.items() if t > now}
            self._blocked[key] = now + self.lockout
