"""An RFC 5080 (section 2.2.2) duplicate-detection cache for RADIUS requests.

A NAS that hears nothing within its timeout sends the same request again (same source
address and port, code, Identifier and Request Authenticator). While the first copy is
still being handled the copy is ignored; once it is answered the cached reply is sent
again, so the handler runs once per request however often the NAS retransmits.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

#: (source address, source port, code, identifier, request authenticator)
DedupKey = tuple[str, int, int, int, bytes]


class DedupEntry:
    """One request seen: ``reply`` is None while it is in flight.

    ``request`` keeps the datagram: only a byte-identical copy is a retransmission, so a
    forged packet that reuses a request's key is verified like any other, never answered
    from the cache.
    """

    __slots__ = ("expires", "reply", "request")

    def __init__(self, expires: float, request: bytes) -> None:
        self.expires = expires
        self.request = request
        self.reply: bytes | None = None


class DedupCache:
    """Entries live ``ttl`` seconds; at most ``max_entries``, the oldest evicted first."""

    def __init__(
        self,
        ttl: float = 30.0,
        max_entries: int = 65536,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[DedupKey, DedupEntry] = {}
        # insertion order for expiry and eviction; may hold stale pairs (forgotten or
        # replaced entries), skipped when reached
        self._order: deque[tuple[DedupKey, DedupEntry]] = deque()
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: DedupKey, request: bytes) -> DedupEntry | None:
        """The live entry of this exact ``request``, or None (expired ones count as absent)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            del self._entries[key]
            return None
        return entry if entry.request == request else None

    def add(self, key: DedupKey, request: bytes) -> DedupEntry:
        """Record ``key`` as in flight; returns its entry, to be given the reply later."""
        now = self._clock()
        entries, order = self._entries, self._order
        # one TTL for all, so the expired entries are at the front
        while order and order[0][1].expires <= now:
            self._drop_oldest()
        while order and (len(entries) >= self.max_entries or len(order) > 2 * self.max_entries):
            if self._drop_oldest():
                self.evictions += 1
        entry = DedupEntry(now + self.ttl, request)
        entries[key] = entry
        order.append((key, entry))
        return entry

    def _drop_oldest(self) -> bool:
        key, entry = self._order.popleft()
        if self._entries.get(key) is entry:
            del self._entries[key]
            return True
        return False

    def forget(self, key: DedupKey, entry: DedupEntry) -> None:
        """Drop ``key`` if it still maps to ``entry`` (so the next retransmission is handled)."""
        if self._entries.get(key) is entry:
            del self._entries[key]
