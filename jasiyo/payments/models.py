"""Typed models that cross the payments package boundary. Money is integer minor units."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """What happened to a payment request, in plain words. Providers map their codes here."""

    PAID = "paid"
    PENDING = "pending"  # the customer has not answered yet; ask again later
    CANCELLED = "cancelled"  # the customer said no (M-Pesa 1032)
    INSUFFICIENT_FUNDS = "insufficient_funds"  # M-Pesa 1, Paystack "insufficient funds"
    WRONG_PIN = "wrong_pin"  # M-Pesa 2001
    TIMEOUT = "timeout"  # no answer from the phone (M-Pesa 1037, 1019 expired)
    UNREACHABLE = "unreachable"  # phone off or out of coverage, prompt could not be shown
    DUPLICATE = "duplicate"  # M-Pesa 17: same amount to the same customer within 2 minutes
    FAILED = "failed"  # anything else the provider says is final
    UNKNOWN = "unknown"  # the provider does not know the request (never issued, or expired)

    @property
    def final(self) -> bool:
        return self not in (Outcome.PENDING,)


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """Ask a customer to pay: an M-Pesa STK prompt on ``phone`` or a Paystack checkout."""

    account: str  # the subscriber's account number (M-Pesa AccountReference, ≤12 chars)
    amount_minor: int
    currency: str
    phone: str = ""  # E.164 without '+' for M-Pesa (2547...), or empty
    email: str = ""  # Paystack needs an email; the agent makes one when the ISP has none
    description: str = ""
    callback_url: str = ""
    reference: str = ""  # our reference (Paystack); empty lets the provider choose
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Initiated:
    """The provider accepted a :class:`PaymentRequest`; the answer comes later."""

    provider: str
    request_id: str  # M-Pesa CheckoutRequestID; Paystack reference
    merchant_request_id: str = ""  # M-Pesa MerchantRequestID
    checkout_url: str = ""  # Paystack authorization_url
    customer_message: str = ""


@dataclass(frozen=True, slots=True)
class Confirmation:
    """Money the provider says was paid. ``reference`` is the receipt (M-Pesa receipt number,
    Paystack reference): the key under which it is applied exactly once."""

    provider: str
    kind: str  # "stk", "c2b", "charge"
    reference: str
    amount_minor: int
    currency: str
    account: str = ""  # BillRefNumber / AccountReference / metadata account
    phone: str = ""  # as the provider gave it (C2B MSISDN is often masked)
    request_id: str = ""  # CheckoutRequestID of an STK push; Paystack reference
    shortcode: str = ""  # M-Pesa BusinessShortCode the money went to
    paid_at: float | None = None  # unix seconds
    payer_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class StatusAnswer:
    """What the provider says now about one request (STK Query, Paystack verify), or what a
    callback said. ``confirmation`` is set only when ``outcome`` is PAID and the provider
    gave the money's details."""

    provider: str
    request_id: str
    outcome: Outcome
    code: str = ""  # the provider's result code ("1032"), for the log and the engineer
    description: str = ""
    confirmation: Confirmation | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["outcome"] = self.outcome.value
        return d
