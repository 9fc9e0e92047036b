"""A RADIUS-only NAS: Linux pppd or accel-ppp, Cisco, Cambium and the like.

The agent has no management API to such a router. Everything it does there goes through
RADIUS: the Access-Accept carries the subscriber's desired state in standard attributes
(:mod:`jasiyo.radius.vendors`), and a change reaches a live session by CoA or
Disconnect-Request (enforcement) or, where the NAS has no CoA listener, at the next
authentication and through Session-Timeout. So this driver manages nothing: reading it
finds nothing, a plan is empty, a reconcile applies nothing and never fails for want of an
API, and it never touches the network.
"""

from __future__ import annotations

from collections.abc import Sequence

from jasiyo.drivers.base import RouterDriver
from jasiyo.drivers.routerstate import (
    ActiveSession,
    ApplyReport,
    Diff,
    RouterAccount,
    RouterFacts,
    RouterState,
)
from jasiyo.network import DesiredState


class GenericDriver(RouterDriver):
    """The driver of ``router add --driver generic``: no management operations."""

    vendor = "generic"

    def open(self) -> None:
        """Nothing to connect to."""

    def close(self) -> None:
        """Nothing to drop."""

    def is_alive(self) -> bool:
        return True

    def identity(self) -> str:
        return self.config.name or self.config.host

    def facts(self) -> RouterFacts:
        return RouterFacts(
            vendor=self.vendor,
            identity=self.identity(),
            version="",
            model="RADIUS-only NAS (no management API)",
        )

    def read(self) -> RouterState:
        return RouterState(objects=())

    def plan(self, desired: Sequence[DesiredState], current: RouterState) -> Diff:
        return Diff()

    def apply(self, diff: Diff) -> ApplyReport:
        return ApplyReport()

    def active_sessions(self) -> list[ActiveSession]:
        """Unknown to the router side: the agent's accounting (`session list`) has them."""
        return []

    def disconnect(self, username: str) -> int:
        """No API to kick a session: enforcement sends a RADIUS Disconnect-Request."""
        return 0

    def list_accounts(self) -> list[RouterAccount]:
        """Such a NAS keeps no accounts of its own: every login goes to RADIUS."""
        return []
