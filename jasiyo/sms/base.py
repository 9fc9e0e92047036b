"""The contract every SMS gateway keeps.

A gateway is wire code only: it knows the gateway's HTTP API and callback shapes and nothing
about subscribers, consent or the outbox. The agent's sender (``jasiyo.agent.smswork``)
decides what to send and when.

    gw = get_gateway("africastalking")(settings)
    result = gw.send(OutgoingSms(to="+254712345678", text="Hello", sender_id="ISP"))
    report = gw.parse_callback("dlr", headers, body)     # DeliveryReport
    incoming = gw.parse_callback("incoming", headers, body)  # IncomingSms

Every method raises only :mod:`jasiyo.sms.errors` exceptions. A send is **never** retried
inside the gateway (the sender retries with backoff, and only what cannot be a duplicate).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import httpx

from jasiyo.sms.models import DeliveryReport, IncomingSms, OutgoingSms, SendResult


class SmsGateway(ABC):
    """One gateway account (an Africa's Talking app; an aggregator's HTTP API)."""

    name: str = ""

    def __init__(
        self,
        settings: Mapping[str, object],
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.settings = dict(settings)
        self.transport = transport
        self.timeout = timeout

    @abstractmethod
    def send(self, sms: OutgoingSms) -> SendResult:
        """Send one message. A per-recipient refusal is a SendResult with ``accepted``
        False; an outage raises ``GatewayUnavailable``."""

    @abstractmethod
    def parse_callback(
        self, kind: str, headers: Mapping[str, str], body: bytes
    ) -> DeliveryReport | IncomingSms:
        """Read a callback the gateway sent (``kind`` ``"dlr"`` or ``"incoming"``);
        ``CallbackError`` when it does not say what such a callback says."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> SmsGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
