"""The contract every router driver keeps.

A driver owns one connection to one router. The agent uses it like this::

    driver = get_driver("mikrotik")(config)
    with driver:                       # open() ... close()
        report = driver.reconcile(desired_states)

``reconcile`` is ``apply(plan(desired, read()))``: read everything the agent manages in a
constant number of commands, compute the difference in pure code, send only the difference.

Ownership rule, for every driver: only objects carrying the agent's tag (comment or
description starting with ``jasiyo:``, see :data:`TAG_PREFIX`) are ever changed or removed.
Everything else on the router is left exactly as it was.

Errors (re-exported here from :mod:`jasiyo.errors`): every method raises only
``DriverError`` subclasses -- ``ConnectError`` (unreachable, timed out, TLS identity wrong,
connection lost), ``AuthError`` (login refused), ``CommandError`` (the router refused a
command; ``.command`` names it). Library and socket errors never escape a driver.
"""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from jasiyo.drivers.routerstate import (
    ActiveSession,
    ApplyReport,
    Diff,
    RouterAccount,
    RouterConfig,
    RouterFacts,
    RouterState,
)
from jasiyo.errors import AuthError, CommandError, ConnectError, DriverError
from jasiyo.network import DesiredState

__all__ = [
    "AuthError",
    "Backoff",
    "CommandError",
    "ConnectError",
    "DriverError",
    "RouterDriver",
]


class RouterDriver(ABC):
    """One router, one connection, used by one thread at a time (drivers serialise calls).

    Subclasses set :attr:`vendor` and implement every abstract method; the conformance suite
    (``tests/drivers/conformance.py``) checks signatures match this class.
    """

    #: Name ``get_driver`` finds this driver by (``"mikrotik"``, ``"edgeos"``).
    vendor: str = ""

    def __init__(self, config: RouterConfig) -> None:
        """Keep the config; never touches the network (call :meth:`open`)."""
        self.config = config

    # ------------------------------------------------------------------ connection

    @abstractmethod
    def open(self) -> None:
        """Connect and log in, within ``config.timeout`` seconds.

        Raises ``ConnectError`` (unreachable, timeout, TLS certificate or pin mismatch) or
        ``AuthError`` (credentials refused). Opening an open driver is a no-op.
        """

    @abstractmethod
    def close(self) -> None:
        """Drop the connection. Never raises; closing a closed driver is a no-op."""

    @abstractmethod
    def is_alive(self) -> bool:
        """True when the connection is open and the router answers a trivial command now.

        Never raises: a dead connection is closed and reported as ``False``.
        """

    def __enter__(self) -> RouterDriver:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ facts

    @abstractmethod
    def identity(self) -> str:
        """The router's configured name (RouterOS ``/system/identity``, EdgeOS host-name)."""

    @abstractmethod
    def facts(self) -> RouterFacts:
        """Vendor, identity, software version and hardware model, in a constant few calls."""

    # ------------------------------------------------------------------ desired state

    @abstractmethod
    def read(self) -> RouterState:
        """Everything the agent manages on the router, in one pass.

        Makes a constant number of commands whatever the number of subscribers. The state
        contains every tagged object, and the untagged ones whose natural names (secret
        name, queue name, listed address) a desired object could collide with.
        """

    @abstractmethod
    def plan(self, desired: Sequence[DesiredState], current: RouterState) -> Diff:
        """The ordered changes that make ``current`` match ``desired``. Pure: no I/O.

        - a desired object missing on the router -> ``add``; present but different ->
          ``update`` of only the differing properties; a tagged object no desired state
          asks for -> ``remove``;
        - an untagged object holding a desired name -> a ``Conflict`` (never touched), unless
          ``config.adopt_existing`` is set, in which case it is tagged and updated;
        - planning ``desired`` against the state it produces gives an empty diff.
        Raises ``ValidationError`` for a desired state the driver cannot express (bad rate).
        """

    @abstractmethod
    def apply(self, diff: Diff) -> ApplyReport:
        """Send the changes in order; report each as applied, failed or not attempted.

        A change the router refuses is recorded in ``failed`` and the rest continue. If the
        connection is lost, the change in flight is ``failed`` and the remaining ones are
        ``not_attempted``; the driver is closed and the next ``open``/``reconcile`` starts
        fresh. Never raises for a refused command; raises nothing after a partial apply
        (the report tells what happened), except ``ConnectError`` when not connected at all.
        """

    def reconcile(self, desired: Sequence[DesiredState]) -> ApplyReport:
        """Read, plan, apply only the difference. Opens the connection if needed.

        Idempotent: a second reconcile with the same ``desired`` applies nothing. A no-op
        reconcile costs the (constant) commands of :meth:`read` and nothing else. Raises
        ``ConnectError``/``AuthError`` when the router cannot be reached at all; use
        :class:`Backoff` to schedule the retry.
        """
        started = time.monotonic()
        self.open()
        current = self.read()
        report = self.apply(self.plan(desired, current))
        return ApplyReport(
            applied=report.applied,
            failed=report.failed,
            not_attempted=report.not_attempted,
            conflicts=report.conflicts,
            api_calls=report.api_calls + current.api_calls,
            duration_s=time.monotonic() - started,
        )

    # ------------------------------------------------------------------ sessions / import

    @abstractmethod
    def active_sessions(self) -> list[ActiveSession]:
        """Every connected PPP and hotspot session, in a constant number of commands."""

    @abstractmethod
    def disconnect(self, username: str) -> int:
        """Kick every active session of ``username``; return how many were removed (0 if none).

        The customer may reconnect at once and then gets whatever the router or RADIUS
        now says (this is how a suspension or restore takes effect on a live session).
        """

    @abstractmethod
    def list_accounts(self) -> list[RouterAccount]:
        """Every PPP secret and hotspot user on the router, tagged or not (for import)."""


# ---------------------------------------------------------------------- retry schedule


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with "equal jitter" (half fixed, half random) for an unreachable router.

    ``failure()`` after each failed attempt, ``success()`` after a good one;
    ``next_attempt_at`` (a ``time.monotonic()``-style timestamp, or the clock you pass) says
    when to try again. The delay doubles from ``base_s`` up to ``max_s``; jitter spreads many
    routers that failed together (a POP uplink flap) so they do not retry in lock-step.
    """

    base_s: float = 5.0
    max_s: float = 300.0
    failures: int = 0
    next_attempt_at: float = 0.0
    rng: random.Random | None = None

    def delay(self) -> float:
        """The ceiling of the next wait: ``min(max_s, base_s * 2**(failures-1))``; 0 if none."""
        if self.failures == 0:
            return 0.0
        return min(self.max_s, self.base_s * 2 ** min(self.failures - 1, 30))

    def failure(self, now: float | None = None) -> float:
        """Record a failed attempt; return the chosen wait (between delay/2 and delay)."""
        now = time.monotonic() if now is None else now
        self.failures += 1
        ceiling = self.delay()
        wait = ceiling / 2 + (self.rng or random).uniform(0, ceiling / 2)
        self.next_attempt_at = now + wait
        return wait

    def success(self) -> None:
        """Record a good attempt: the next failure starts from ``base_s`` again."""
        self.failures = 0
        self.next_attempt_at = 0.0

    def due(self, now: float | None = None) -> bool:
        """True when an attempt may be made now."""
        now = time.monotonic() if now is None else now
        return now >= self.next_attempt_at
