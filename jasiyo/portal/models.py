"""What the portal pages ask of the agent, and the typed answers (no store in here).

The agent implements :class:`PortalBackend` (``jasiyo.agent.portalbuy``); the pages only
see these models. Every method may block: the pages call them from the thread pool. A
customer's mistake (an unknown voucher, a bad phone number) is a
:class:`jasiyo.errors.ValidationError` or :class:`jasiyo.errors.NotFound` whose message
the page shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

#: Payment request states the pages tell apart (the rest are "failed").
PENDING, PAID = "pending", "paid"


@dataclass(frozen=True, slots=True)
class Offer:
    """A package sold on the portal."""

    plan: str
    price_minor: int
    currency: str
    period: str  # as the plan says it: "1h", "24h", "7d", "1m"
    data: str = ""  # "2G" when the package ends at a data amount


@dataclass(frozen=True, slots=True)
class Login:
    """Credentials the portal logs a device in with (never shown to the customer)."""

    username: str
    password: str


@dataclass(frozen=True, slots=True)
class RequestState:
    """Where a payment request stands; ``login`` once a portal purchase is paid."""

    status: str  # pending, paid, cancelled, insufficient_funds, wrong_pin, timeout, ...
    login: Login | None = None


@dataclass(frozen=True, slots=True)
class Due:
    """What the pay page shows a suspended customer (theirs only)."""

    username: str
    name: str
    status: str  # active, suspended, ...
    amount_minor: int
    currency: str
    plan: str
    has_phone: bool
    paystack: bool  # a Paystack link can be offered
    mpesa: bool


class PortalBackend(Protocol):
    def offers(self) -> list[Offer]: ...

    def buy(self, plan: str, phone: str, mac: str, ip: str, sms_consent: bool = False) -> str:
        """Create the pending purchase and send the STK prompt; returns the request id.
        ``sms_consent``: the customer ticked the SMS box (recorded as given on the portal)."""
        ...

    def request_state(self, request_id: str, mac: str) -> RequestState:
        """The state of a portal purchase made from ``mac`` (NotFound for any other)."""
        ...

    def redeem(self, code: str, mac: str, ip: str) -> Login: ...

    def device_login(self, mac: str) -> Login | None:
        """The login of a package this device bought on the portal and still has (paid,
        not ended), or None: a device that paid is logged in again after the agent
        restarted or the customer closed the page."""
        ...

    def due_for(self, address: str) -> Due | None:
        """The customer whose open session or static IP is ``address``, or None."""
        ...

    def pay_stk(self, address: str, phone: str) -> str: ...

    def pay_link(self, address: str, email: str) -> str: ...

    def pay_state(self, address: str, request_id: str) -> RequestState: ...
