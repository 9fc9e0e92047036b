"""Long-poll wake-ups inside one cloud process (asyncio).

A push calls :meth:`Notifier.notify` for its tenant; pulls waiting on that tenant wake. With
PostgreSQL, a LISTEN thread feeds notifications from other cloud processes into the same
notifier, so a pull on one process wakes for a push handled by another.
"""

from __future__ import annotations

import asyncio


class Notifier:
    """Per-tenant version counters and the futures waiting for them to change.

    Must be used from the event loop's thread; other threads go through
    ``loop.call_soon_threadsafe(notifier.notify, tenant)``.
    """

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}

    def version(self, tenant: str) -> int:
        return self._versions.get(tenant, 0)

    def notify(self, tenant: str) -> None:
        self._versions[tenant] = self._versions.get(tenant, 0) + 1
        for fut in self._waiters.pop(tenant, set()):
            if not fut.done():
                fut.set_result(None)

    async def wait(self, tenant: str, since: int, timeout: float) -> None:
        """Return when the tenant's version differs from ``since``, or after ``timeout``.

        Taking ``since`` before reading the database closes the race where a push lands
        between the read and the wait.
        """
        if self.version(tenant) != since or timeout <= 0:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(tenant, set()).add(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            waiting = self._waiters.get(tenant)
            if waiting is not None:
                waiting.discard(fut)
                if not waiting:
                    self._waiters.pop(tenant, None)
