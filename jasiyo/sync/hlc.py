"""Hybrid logical clocks (Kulkarni et al. 2014), encoded so that string order is clock order.

A timestamp is ``"<wall ms, 15 digits>.<counter, 6 digits>.<origin>"``. The origin breaks ties
deterministically, so last-writer-wins picks the same winner on every agent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from jasiyo.errors import SyncError


@dataclass(frozen=True, order=True, slots=True)
class Timestamp:
    wall_ms: int
    counter: int
    origin: str

    def encode(self) -> str:
        return f"{self.wall_ms:015d}.{self.counter:06d}.{self.origin}"

    @classmethod
    def decode(cls, text: str) -> Timestamp:
        try:
            wall, counter, origin = text.split(".", 2)
            return cls(int(wall), int(counter), origin)
        except ValueError:
            raise SyncError(f"bad clock value {text!r}") from None


#: How far an event's clock may be ahead of the cloud's when the cloud stored it. The cloud
#: refuses requests more than 5 minutes off its clock, so an honest POP stays inside this.
MAX_AHEAD_MS = 6 * 60 * 1000


def bounded(hlc: str, received_at: float | None) -> str:
    """``hlc``, or, if it is more than MAX_AHEAD_MS ahead of ``received_at`` (the cloud's
    clock when it stored the event), that bound. Every POP gets the same ``received_at``
    from the cloud, so all of them order the event the same way: a POP whose clock ran 30
    days fast cannot win over newer changes for 30 days."""
    if not received_at:
        return hlc
    ts = Timestamp.decode(hlc)
    limit = int(received_at * 1000) + MAX_AHEAD_MS
    if ts.wall_ms <= limit:
        return hlc
    # Counter 0: events bounded together then tie on the clock and fall back to their ids,
    # which are monotonic per agent, so that agent's own order among them is kept.
    return Timestamp(limit, 0, ts.origin).encode()


class HybridClock:
    """Issues timestamps that never go backwards and that follow any timestamp received."""

    #: A remote clock further ahead than this is refused: it would drag every agent's clock.
    MAX_DRIFT_MS = 24 * 3600 * 1000

    def __init__(self, origin: str, wall_ms: Callable[[], int] | None = None) -> None:
        self.origin = origin
        self._wall = wall_ms or (lambda: int(time.time() * 1000))
        self._last = Timestamp(0, 0, origin)
        self._lock = threading.Lock()

    def now(self) -> str:
        with self._lock:
            wall = self._wall()
            if wall > self._last.wall_ms:
                self._last = Timestamp(wall, 0, self.origin)
            else:
                self._last = Timestamp(self._last.wall_ms, self._last.counter + 1, self.origin)
            return self._last.encode()

    def observe(self, remote: str) -> bool:
        """Advance past a timestamp received from another agent.

        A timestamp more than a day ahead of our wall clock (a POP whose clock is wrong) is
        not followed, so one bad clock cannot drag every agent's clock, nor halt sync:
        returns False and the caller logs it. The event itself still applies.
        """
        ts = Timestamp.decode(remote)
        with self._lock:
            wall = self._wall()
            if ts.wall_ms - wall > self.MAX_DRIFT_MS:
                return False
            top = max(wall, self._last.wall_ms, ts.wall_ms)
            if top == self._last.wall_ms == ts.wall_ms:
                counter = max(self._last.counter, ts.counter) + 1
            elif top == self._last.wall_ms:
                counter = self._last.counter + 1
            elif top == ts.wall_ms:
                counter = ts.counter + 1
            else:
                counter = 0
            self._last = Timestamp(top, counter, self.origin)
            return True
