"""Typed models that cross the SMS package boundary. Cost is integer minor units."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Delivery(StrEnum):
    """What a delivery report says, in plain words. Gateways map their statuses here."""

    DELIVERED = "delivered"
    FAILED = "failed"  # final: the network gave up (absent, rejected, expired)
    PENDING = "pending"  # still on its way (Sent, Submitted, Buffered)


@dataclass(frozen=True, slots=True)
class OutgoingSms:
    """One message to one phone (E.164 with '+')."""

    to: str
    text: str
    sender_id: str = ""
    reference: str = ""  # our key for the message (for gateways that echo one)


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the gateway said about one recipient of a send."""

    gateway: str
    to: str
    accepted: bool
    message_id: str = ""  # the gateway's id, the key of its delivery reports
    status: str = ""  # the gateway's own word ("Success", "InvalidPhoneNumber")
    status_code: str = ""  # "101", "403"
    cost_minor: int | None = None
    currency: str = ""
    parts: int = 1
    #: A refusal that may pass (gateway error, no balance): send again later.
    retryable: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    gateway: str
    message_id: str
    delivery: Delivery
    status: str = ""  # the gateway's word ("Success", "AbsentSubscriber")
    phone: str = ""
    reason: str = ""  # failureReason


@dataclass(frozen=True, slots=True)
class IncomingSms:
    gateway: str
    phone: str  # the sender, E.164 with '+'
    text: str
    to: str = ""  # our short code or number
    message_id: str = ""
    date: str = ""  # as the gateway gave it
