"""The Paystack client: initialize a checkout, verify it, read signed webhooks.

Settings (``[payments.paystack]``): ``secret_key`` (``sk_live_…`` / ``sk_test_…``) and
``base_url`` (default https://api.paystack.co; the simulator's URL in tests).

Webhooks are trusted only after ``x-paystack-signature`` (hex HMAC-SHA512 of the raw body
keyed with the secret key) matches in constant time; the body is not even decoded before.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from jasiyo.payments.base import PaymentProvider
from jasiyo.payments.errors import (
    CallbackError,
    ProviderRejected,
    ProviderUnavailable,
    SignatureError,
)
from jasiyo.payments.http import HttpClient
from jasiyo.payments.models import Confirmation, Initiated, Outcome, PaymentRequest, StatusAnswer

PROVIDER = "paystack"
DEFAULT_URL = "https://api.paystack.co"
MAX_WEBHOOK_BYTES = 256 * 1024  # a charge.success is a few KiB
_REFERENCE = re.compile(r"[A-Za-z0-9.=\-]{1,100}")  # what Paystack allows in a reference
_CURRENCY = re.compile(r"[A-Z]{3}")

#: Paystack transaction status -> outcome. "abandoned" is what an initialized checkout says
#: until the customer pays, so it is not final: the policy decides when to give up.
STATUSES: dict[str, Outcome] = {
    "success": Outcome.PAID,
    "abandoned": Outcome.PENDING,
    "ongoing": Outcome.PENDING,
    "pending": Outcome.PENDING,
    "processing": Outcome.PENDING,
    "queued": Outcome.PENDING,
    "failed": Outcome.FAILED,
    "reversed": Outcome.FAILED,
}


def signature(secret_key: str, body: bytes) -> str:
    """The ``x-paystack-signature`` Paystack sends with ``body``."""
    return hmac.new(secret_key.encode(), body, hashlib.sha512).hexdigest()


def _read_error(body: Any) -> tuple[str, str]:
    if isinstance(body, dict):
        return str(body.get("code") or "")[:40], str(body.get("message") or "")[:200]
    return "", ""


def _paid_at(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _metadata(value: object) -> dict[str, Any]:
    # Paystack gives back what we sent: an object, a JSON string, or "" when none.
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.startswith("{"):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def confirmation_from(data: object, where: str) -> Confirmation:
    """A :class:`Confirmation` from a successful transaction object (verify or webhook)."""
    if not isinstance(data, dict):
        raise CallbackError(f"paystack {where}: data is not an object", PROVIDER)
    reference = data.get("reference")
    if not isinstance(reference, str) or not _REFERENCE.fullmatch(reference):
        raise CallbackError(f"paystack {where}: missing or invalid reference", PROVIDER)
    amount = data.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise CallbackError(f"paystack {where}: amount must be a positive whole number of subunits", PROVIDER)
    currency = data.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise CallbackError(f"paystack {where}: missing or invalid currency", PROVIDER)
    meta = _metadata(data.get("metadata"))
    account = meta.get("account")
    customer = c if isinstance(c := data.get("customer"), dict) else {}
    names = [customer.get(k) for k in ("first_name", "last_name")]
    payer = " ".join(n for n in names if isinstance(n, str) and n)[:100]
    phone = customer.get("phone")
    return Confirmation(
        provider=PROVIDER,
        kind="charge",
        reference=reference,
        amount_minor=amount,
        currency=currency,
        account=account[:64] if isinstance(account, str) else "",
        phone=phone[:20] if isinstance(phone, str) else "",
        request_id=reference,
        paid_at=_paid_at(data.get("paid_at")),
        payer_name=payer,
    )


class PaystackProvider(PaymentProvider):
    """One Paystack integration (secret key)."""

    name = "paystack"

    def __init__(
        self,
        settings: Mapping[str, object],
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        retries: int = 2,
    ) -> None:
        super().__init__(settings, transport=transport, timeout=timeout, retries=retries)
        self.base_url = str(self.settings.get("base_url") or DEFAULT_URL).rstrip("/")
        self._secret_key = str(self.settings.get("secret_key") or "").strip()
        if not self._secret_key:
            raise ProviderRejected("paystack: setting 'secret_key' is missing", PROVIDER)
        self._http = HttpClient(
            PROVIDER,
            self.base_url,
            transport=transport,
            timeout=timeout,
            retries=retries,
            read_error=_read_error,
        )
        self._auth = {"Authorization": f"Bearer {self._secret_key}"}

    def close(self) -> None:
        self._http.close()

    def check(self) -> str:
        body = self._http.request("GET", "/balance", idempotent=True, headers=self._auth)
        currencies = []
        if isinstance(body, dict) and isinstance(body.get("data"), list):
            currencies = [str(b.get("currency")) for b in body["data"] if isinstance(b, dict)]
        return f"paystack: secret key accepted by {self.base_url}" + (
            f" (balances in {', '.join(currencies)})" if currencies else ""
        )

    def request_payment(self, request: PaymentRequest) -> Initiated:
        if request.amount_minor <= 0:
            raise ProviderRejected("paystack: the amount must be positive", PROVIDER)
        if "@" not in request.email:
            raise ProviderRejected("paystack: a checkout needs the customer's email", PROVIDER)
        if request.reference and not _REFERENCE.fullmatch(request.reference):
            raise ProviderRejected(
                "paystack: a reference may hold only letters, digits, '-', '.' and '='", PROVIDER
            )
        body: dict[str, Any] = {
            "email": request.email,
            "amount": str(request.amount_minor),
            "currency": request.currency.upper(),
            "metadata": {**request.metadata, "account": request.account},
        }
        if request.reference:
            body["reference"] = request.reference
        if request.callback_url:
            body["callback_url"] = request.callback_url
        answer = self._http.request(
            "POST", "/transaction/initialize", json_body=body, idempotent=False, headers=self._auth
        )
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(answer, dict) or answer.get("status") is not True or not isinstance(data, dict):
            _, message = _read_error(answer)
            raise ProviderRejected(f"paystack: initialize refused: {message or 'no reason'}", PROVIDER)
        url, reference = data.get("authorization_url"), data.get("reference")
        if not isinstance(url, str) or not isinstance(reference, str) or not reference:
            raise ProviderUnavailable(
                "paystack: initialize answer has no authorization_url or reference", PROVIDER
            )
        return Initiated(
            provider=self.name,
            request_id=reference,
            checkout_url=url,
            customer_message=str(answer.get("message") or "")[:200],
        )

    def query(self, request_id: str) -> StatusAnswer:
        if not _REFERENCE.fullmatch(request_id):
            return StatusAnswer(self.name, request_id, Outcome.UNKNOWN, "", "not a Paystack reference")
        try:
            answer = self._http.request(
                "GET", f"/transaction/verify/{quote(request_id)}", idempotent=True, headers=self._auth
            )
        except ProviderRejected as exc:
            # An unknown reference: 400 "Transaction reference not found".
            if "not found" in str(exc).lower() or exc.code == "transaction_not_found":
                return StatusAnswer(
                    self.name,
                    request_id,
                    Outcome.UNKNOWN,
                    exc.code or "404",
                    "Paystack does not know this reference",
                )
            raise
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            raise ProviderUnavailable("paystack: verify answer has no transaction status", PROVIDER)
        status = data["status"]
        outcome = STATUSES.get(status, Outcome.FAILED)
        gateway = str(data.get("gateway_response") or "")[:200]
        if outcome is Outcome.FAILED and "insufficient" in gateway.lower():
            outcome = Outcome.INSUFFICIENT_FUNDS
        confirmation = None
        if outcome is Outcome.PAID:
            try:
                confirmation = confirmation_from(data, "verify")
            except CallbackError as exc:
                raise ProviderUnavailable(f"paystack: verify answer unusable: {exc}", PROVIDER) from exc
            if confirmation.reference.lower() != request_id.lower():
                raise ProviderUnavailable("paystack: verify answered for another reference", PROVIDER)
        return StatusAnswer(self.name, request_id, outcome, status, gateway, confirmation)

    def parse_callback(
        self, path: str, headers: Mapping[str, str], body: bytes
    ) -> StatusAnswer | Confirmation:
        if path.strip("/").lower() != "webhook":
            raise CallbackError(f"paystack: unknown callback kind {path!r}", PROVIDER)
        if len(body) > MAX_WEBHOOK_BYTES:
            raise CallbackError(f"paystack webhook of {len(body)} bytes is too large", PROVIDER)
        given = {k.lower(): v for k, v in headers.items()}.get("x-paystack-signature", "")
        expected = signature(self._secret_key, body)
        if not given or not hmac.compare_digest(
            given.strip().lower().encode("ascii", "replace"), expected.encode("ascii")
        ):
            raise SignatureError("paystack webhook signature is missing or wrong", PROVIDER)
        try:
            doc = json.loads(body)
        except RecursionError as exc:
            raise CallbackError("paystack webhook is nested too deeply", PROVIDER) from exc
        except ValueError as exc:
            raise CallbackError("paystack webhook is not JSON", PROVIDER) from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("event"), str):
            raise CallbackError("paystack webhook has no event", PROVIDER)
        event, data = doc["event"], doc.get("data")
        if event == "charge.success":
            if not isinstance(data, dict) or data.get("status") != "success":
                raise CallbackError("paystack charge.success whose status is not success", PROVIDER)
            conf = confirmation_from(data, "webhook")
            return StatusAnswer(
                self.name,
                conf.reference,
                Outcome.PAID,
                "success",
                str(data.get("gateway_response") or "")[:200],
                conf,
            )
        if (
            event.startswith("charge.")
            and isinstance(data, dict)
            and isinstance(data.get("reference"), str)
            and data.get("status") in STATUSES
            and (data.get("status") != "success")
        ):
            status = data["status"]
            return StatusAnswer(
                self.name,
                data["reference"],
                STATUSES[status],
                status,
                str(data.get("gateway_response") or "")[:200],
            )
        raise CallbackError(f"paystack event {event[:40]!r} is not about a charge; ignored", PROVIDER)
