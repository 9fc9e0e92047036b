"""Africa's Talking SMS (the HTTP messaging API, REFERENCE.md §8).

    POST {base}/version1/messaging   form: username, to, message[, from]
    headers: apiKey, Accept: application/json
    -> {"SMSMessageData": {"Message": "Sent to 1/1 Total Cost: KES 0.8000",
                           "Recipients": [{"statusCode": 101, "number": "+2547...",
                                           "status": "Success", "cost": "KES 0.8000",
                                           "messageId": "ATXid_...", "messageParts": 1}]}}

Per-recipient ``statusCode``: 100 processed, 101 sent, 102 queued are accepted; 405
(insufficient balance), 500 and 501 (gateway errors) may pass and are retried later; every
other code (401 risk hold, 402 invalid sender id, 403 invalid phone number, 404 unsupported
number type, 406 user in blacklist, 407 could not route, 502 rejected by gateway) is final.
The 4xx names vary between public sources, so we decide on the numeric code only.

Delivery reports and incoming messages are form posts to URLs set in the Africa's Talking
dashboard; they carry no signature, so they are taken only on secret URLs (the cloud's
per-tenant webhook URL, or the agent's token URL), and a report changes only a message we
sent (matched by ``messageId``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import httpx

from jasiyo.sms.base import SmsGateway
from jasiyo.sms.errors import CallbackError, GatewayRejected, GatewayUnavailable
from jasiyo.sms.http import HttpClient
from jasiyo.sms.models import Delivery, DeliveryReport, IncomingSms, OutgoingSms, SendResult

PRODUCTION_URL = "https://api.africastalking.com"
SANDBOX_URL = "https://api.sandbox.africastalking.com"
ACCEPTED = frozenset({100, 101, 102})
RETRYABLE = frozenset({405, 500, 501})
#: Delivery report ``status`` -> what it means for us.
DLR_STATUS: dict[str, Delivery] = {
    "Success": Delivery.DELIVERED,
    "Sent": Delivery.PENDING,
    "Submitted": Delivery.PENDING,
    "Buffered": Delivery.PENDING,
    "Queued": Delivery.PENDING,
    "Failed": Delivery.FAILED,
    "Rejected": Delivery.FAILED,
    "AbsentSubscriber": Delivery.FAILED,
    "Expired": Delivery.FAILED,
}
_MAX_FORM = 16 * 1024


def parse_cost(text: object) -> tuple[int | None, str]:
    """``"KES 0.8000"`` -> (80, "KES"); a fraction of a cent rounds up (it is what we pay)."""
    if text in ("0", 0):
        return 0, ""  # a refused recipient costs nothing
    if not isinstance(text, str):
        return None, ""
    parts = text.split()
    if len(parts) != 2:
        return None, ""
    currency, amount = parts
    try:
        value = Decimal(amount) * 100
    except InvalidOperation:
        return None, ""
    if not value.is_finite() or value < 0 or value > 10**9:
        return None, ""
    return int(value.to_integral_value(rounding="ROUND_CEILING")), currency.upper()


def read_form(body: bytes) -> dict[str, str]:
    if len(body) > _MAX_FORM:
        raise CallbackError(f"callback body of {len(body)} bytes is too large", "africastalking")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=50
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise CallbackError(f"callback body is not a form: {exc}", "africastalking") from None
    return dict(pairs)


class AfricasTalkingGateway(SmsGateway):
    name = "africastalking"

    def __init__(
        self,
        settings: Mapping[str, object],
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(settings, transport=transport, timeout=timeout)
        self.username = str(settings.get("username") or "")
        self.api_key = str(settings.get("api_key") or "")
        base = str(settings.get("base_url") or "")
        if not base:
            base = SANDBOX_URL if self.username == "sandbox" else PRODUCTION_URL
        self._http = HttpClient(self.name, base, transport=transport, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def send(self, sms: OutgoingSms) -> SendResult:
        form = {"username": self.username, "to": sms.to, "message": sms.text}
        if sms.sender_id:
            form["from"] = sms.sender_id
        _, body = self._http.request(
            "POST",
            "/version1/messaging",
            data=form,
            headers={"apiKey": self.api_key, "Accept": "application/json"},
        )
        return self._result(sms, body)

    def _result(self, sms: OutgoingSms, body: Any) -> SendResult:
        try:
            data = body["SMSMessageData"]
            recipients = data["Recipients"]
        except (TypeError, KeyError):
            raise GatewayUnavailable(f"{self.name}: answer without SMSMessageData", self.name) from None
        if not isinstance(recipients, list) or not recipients:
            # "Sent to 0/1" with no recipient: the message itself was refused.
            message = str(data.get("Message", "")) if isinstance(data, dict) else ""
            raise GatewayRejected(f"{self.name}: {message or 'no recipient accepted'}", self.name)
        r = recipients[0]
        if not isinstance(r, dict):
            raise GatewayUnavailable(f"{self.name}: malformed recipient", self.name)
        try:
            code = int(r.get("statusCode", 0))
        except (TypeError, ValueError):
            code = 0
        cost, currency = parse_cost(r.get("cost"))
        message_id = str(r.get("messageId") or "")
        try:
            parts = max(1, int(r.get("messageParts") or 1))
        except (TypeError, ValueError):
            parts = 1
        return SendResult(
            gateway=self.name,
            to=str(r.get("number") or sms.to),
            accepted=code in ACCEPTED,
            message_id="" if message_id == "None" else message_id,
            status=str(r.get("status") or ""),
            status_code=str(code),
            cost_minor=cost,
            currency=currency,
            parts=parts,
            retryable=code in RETRYABLE,
        )

    def parse_callback(
        self, kind: str, headers: Mapping[str, str], body: bytes
    ) -> DeliveryReport | IncomingSms:
        form = read_form(body)
        if kind == "dlr":
            mid, status = form.get("id", ""), form.get("status", "")
            if not mid or not status:
                raise CallbackError("delivery report without id or status", self.name)
            if status not in DLR_STATUS:
                raise CallbackError(f"delivery report with unknown status {status[:40]!r}", self.name)
            return DeliveryReport(
                self.name,
                mid,
                DLR_STATUS[status],
                status,
                form.get("phoneNumber", ""),
                form.get("failureReason", ""),
            )
        if kind == "incoming":
            sender, text = form.get("from", ""), form.get("text")
            if not sender or text is None:
                raise CallbackError("incoming message without from or text", self.name)
            return IncomingSms(
                self.name, sender, text, form.get("to", ""), form.get("id", ""), form.get("date", "")
            )
        raise CallbackError(f"unknown callback kind {kind!r}", self.name)
