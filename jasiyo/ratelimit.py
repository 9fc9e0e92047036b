"""A token bucket per client: what the internet or a customer can reach is rate limited."""

from __future__ import annotations

import threading


class Buckets:
    """``take(who, now)`` is True while ``who`` stays within ``rate`` per second (``burst``)."""

    def __init__(self, rate: float, burst: int, max_clients: int = 10000) -> None:
        self.rate, self.burst, self.max_clients = rate, burst, max_clients
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, who: str, now: float) -> bool:
        with self._lock:
            tokens, last = self._state.get(who, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - last) * self.rate)
            if tokens < 1:
                self._state[who] = (tokens, now)
                return False
            self._state[who] = (tokens - 1, now)
            if len(self._state) > self.max_clients:  # forget idle clients, don't grow forever
                self._state = {k: v for k, v in self._state.items() if now - v[1] < 60}
            return True

    def give_back(self, who: str) -> None:
        """Return one token taken for ``who`` (what it paid for did not happen)."""
        with self._lock:
            if who in self._state:
                tokens, last = self._state[who]
                self._state[who] = (min(float(self.burst), tokens + 1), last)
