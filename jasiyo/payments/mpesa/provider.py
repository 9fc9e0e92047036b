"""The Daraja (M-Pesa) client: OAuth, STK push and query, C2B URL registration, callbacks.

Settings (``[payments.mpesa]``): ``base_url`` (https://api.safaricom.co.ke, or the sandbox),
``consumer_key``, ``consumer_secret``, ``shortcode``, ``passkey``, ``transaction_type``
(``CustomerPayBillOnline`` or ``CustomerBuyGoodsOnline``) and ``till_number`` (PartyB for
buy goods; defaults to the shortcode).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from jasiyo.payments.base import PaymentProvider
from jasiyo.payments.errors import (
    CallbackError,
    PaymentError,
    ProviderAuthError,
    ProviderRejected,
    ProviderUnavailable,
)
from jasiyo.payments.http import HttpClient
from jasiyo.payments.models import Confirmation, Initiated, Outcome, PaymentRequest, StatusAnswer
from jasiyo.payments.mpesa import wire

log = logging.getLogger(__name__)

SANDBOX_URL = "https://sandbox.safaricom.co.ke"
TRANSACTION_TYPES = ("CustomerPayBillOnline", "CustomerBuyGoodsOnline")
#: Daraja's "Invalid Access Token" codes: 404.001.03 usually, 401.002.01 on some APIs.
INVALID_TOKEN = ("404.001.03", "401.002.01")
_PHONE = re.compile(r"254[17][0-9]{8}")
#: Refresh a token this long before Daraja says it expires (clocks drift, requests take time).
_TOKEN_MARGIN_S = 120.0


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires_at: float  # monotonic


# One cached token per Daraja app: a new token invalidates the previous one (Daraja FAQ), so
# two providers for the same app in one process must share it rather than fight over it.
_TOKENS: dict[tuple[str, str], _Token] = {}
_APP_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def _app_lock(key: tuple[str, str]) -> threading.Lock:
    """One lock per app, so concurrent callers fetch one token, not one each."""
    with _LOCKS_LOCK:
        return _APP_LOCKS.setdefault(key, threading.Lock())


def _read_error(body: Any) -> tuple[str, str]:
    if isinstance(body, dict):
        code = body.get("errorCode") or body.get("ResponseCode") or ""
        message = body.get("errorMessage") or body.get("ResponseDescription") or ""
        return str(code)[:40], str(message)[:200]
    return "", ""


def _classify(status: int, code: str, message: str) -> type[PaymentError] | None:
    lowered = message.lower()
    if "credential" in lowered or code in ("400.008.01", "401.002.01"):
        return ProviderAuthError  # Daraja says "Wrong credentials" with a 500
    if code == "500.001.1001" and "being processed" in lowered:
        return ProviderUnavailable  # kept, but see DarajaProvider.query: it means PENDING
    return None


def _need(settings: Mapping[str, object], key: str) -> str:
    value = str(settings.get(key) or "").strip()
    if not value:
        raise ProviderRejected(f"mpesa: setting {key!r} is missing", wire.PROVIDER)
    return value


class DarajaProvider(PaymentProvider):
    """One Daraja app and shortcode."""

    name = "mpesa"

    def __init__(
        self,
        settings: Mapping[str, object],
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        retries: int = 2,
    ) -> None:
        super().__init__(settings, transport=transport, timeout=timeout, retries=retries)
        s = self.settings
        self.base_url = str(s.get("base_url") or SANDBOX_URL).rstrip("/")
        self.consumer_key = _need(s, "consumer_key")
        self._consumer_secret = _need(s, "consumer_secret")
        self.shortcode = _need(s, "shortcode")
        self._passkey = str(s.get("passkey") or "")
        self.transaction_type = str(s.get("transaction_type") or TRANSACTION_TYPES[0])
        if self.transaction_type not in TRANSACTION_TYPES:
            raise ProviderRejected(
                f"mpesa: transaction_type must be one of {', '.join(TRANSACTION_TYPES)}", wire.PROVIDER
            )
        self.till_number = str(s.get("till_number") or self.shortcode)
        #: Unix time source for the STK Timestamp (tests pin it to check exact bytes).
        self.clock: Callable[[], float] = time.time
        self._http = HttpClient(
            wire.PROVIDER,
            self.base_url,
            transport=transport,
            timeout=timeout,
            retries=retries,
            read_error=_read_error,
            classify=_classify,
        )

    def close(self) -> None:
        self._http.close()

    # -- OAuth -----------------------------------------------------------------------------

    @property
    def _token_key(self) -> tuple[str, str]:
        # The secret is part of the key (hashed) so a provider with a wrong secret never
        # borrows the token another, correctly configured, one fetched.
        secret = hashlib.sha256(self._consumer_secret.encode()).hexdigest()[:16]
        return (self.base_url, f"{self.consumer_key}:{secret}")

    def token(self, *, refresh: bool = False, stale: str = "") -> str:
        """The app's bearer token, fetched once and reused until shortly before it expires.

        ``stale``: a token Daraja just refused; refetch unless another caller already did."""
        with _app_lock(self._token_key):
            cached = _TOKENS.get(self._token_key)
            fresh = cached is not None and cached.expires_at > time.monotonic()
            if fresh and not refresh and cached is not None and cached.value != stale:
                return cached.value
            basic = base64.b64encode(f"{self.consumer_key}:{self._consumer_secret}".encode()).decode("ascii")
            try:
                body = self._http.request(
                    "GET",
                    "/oauth/v1/generate",
                    idempotent=True,
                    params={"grant_type": "client_credentials"},
                    headers={"Authorization": f"Basic {basic}"},
                )
            except ProviderRejected as exc:
                # Our request is fixed; a 4xx here can only mean the key or secret is wrong
                # (Daraja often says so with an empty 400).
                raise ProviderAuthError(
                    f"mpesa: Daraja refused the consumer key/secret ({exc})", wire.PROVIDER, exc.code
                ) from exc
            value = body.get("access_token") if isinstance(body, dict) else None
            if not isinstance(value, str) or not value:
                raise ProviderUnavailable("mpesa: the OAuth answer has no access_token", wire.PROVIDER)
            try:
                lifetime = float(body.get("expires_in", 3599))
            except (TypeError, ValueError):
                lifetime = 3599.0
            expires = time.monotonic() + max(0.0, lifetime - _TOKEN_MARGIN_S)
            _TOKENS[self._token_key] = _Token(value, expires)
            log.info("mpesa: new access token for app %s…", self.consumer_key[:4])
            return value

    def _call(
        self,
        path: str,
        body: Mapping[str, object],
        *,
        idempotent: bool,
        retry_if: Callable[[ProviderUnavailable], bool] | None = None,
    ) -> Any:
        """POST with the bearer token; on "invalid token" fetch a new one and try once more
        (Daraja refused the request before acting on it, so even an STK push is safe)."""
        token = self.token()
        try:
            return self._http.request(
                "POST",
                path,
                json_body=body,
                idempotent=idempotent,
                headers={"Authorization": f"Bearer {token}"},
                retry_if=retry_if,
            )
        except PaymentError as exc:
            if exc.code not in INVALID_TOKEN:
                raise
        token = self.token(stale=token)
        return self._http.request(
            "POST",
            path,
            json_body=body,
            idempotent=idempotent,
            headers={"Authorization": f"Bearer {token}"},
            retry_if=retry_if,
        )

    def check(self) -> str:
        self.token(refresh=True)
        return f"mpesa: credentials accepted by {self.base_url} (shortcode {self.shortcode})"

    # -- STK push --------------------------------------------------------------------------

    def _stamp(self) -> tuple[str, str]:
        if not self._passkey:
            raise ProviderRejected("mpesa: setting 'passkey' is missing (needed for STK)", wire.PROVIDER)
        stamp = wire.timestamp(self.clock())
        return stamp, wire.password(self.shortcode, self._passkey, stamp)

    def stk_body(self, request: PaymentRequest) -> dict[str, object]:
        """The STK push body for ``request``; ProviderRejected for what Daraja would refuse."""
        if request.currency.upper() != wire.CURRENCY:
            raise ProviderRejected(f"mpesa: M-Pesa takes KES, not {request.currency}", wire.PROVIDER)
        if request.amount_minor <= 0 or request.amount_minor % 100:
            raise ProviderRejected(
                f"mpesa: STK amounts are whole shillings; {request.amount_minor} cents is not", wire.PROVIDER
            )
        if not _PHONE.fullmatch(request.phone):
            raise ProviderRejected(
                f"mpesa: phone {request.phone!r} is not 2547XXXXXXXX or 2541XXXXXXXX", wire.PROVIDER
            )
        if not request.callback_url.startswith(("https://", "http://")):
            raise ProviderRejected("mpesa: an STK push needs an http(s) callback_url", wire.PROVIDER)
        account = request.account.strip()
        if not account or len(account) > 12:
            raise ProviderRejected(
                f"mpesa: AccountReference {account!r} must be 1 to 12 characters", wire.PROVIDER
            )
        stamp, pw = self._stamp()
        buy_goods = self.transaction_type == "CustomerBuyGoodsOnline"
        return {
            "BusinessShortCode": self.shortcode,
            "Password": pw,
            "Timestamp": stamp,
            "TransactionType": self.transaction_type,
            "Amount": request.amount_minor // 100,
            "PartyA": request.phone,
            "PartyB": self.till_number if buy_goods else self.shortcode,
            "PhoneNumber": request.phone,
            "CallBackURL": request.callback_url,
            "AccountReference": account,
            "TransactionDesc": (request.description or "Payment")[:13],
        }

    def request_payment(self, request: PaymentRequest) -> Initiated:
        body = self._call("/mpesa/stkpush/v1/processrequest", self.stk_body(request), idempotent=False)
        if not isinstance(body, dict) or str(body.get("ResponseCode")) != "0":
            code, message = _read_error(body)
            raise ProviderRejected(f"mpesa: STK push refused: {message or 'no reason'}", wire.PROVIDER, code)
        checkout = body.get("CheckoutRequestID")
        if not isinstance(checkout, str) or not checkout:
            raise ProviderUnavailable("mpesa: STK answer has no CheckoutRequestID", wire.PROVIDER)
        return Initiated(
            provider=self.name,
            request_id=checkout,
            merchant_request_id=str(body.get("MerchantRequestID") or ""),
            customer_message=str(body.get("CustomerMessage") or "")[:200],
        )

    def query(self, request_id: str) -> StatusAnswer:
        stamp, pw = self._stamp()
        body = {
            "BusinessShortCode": self.shortcode,
            "Password": pw,
            "Timestamp": stamp,
            "CheckoutRequestID": request_id,
        }

        def pending(exc: ProviderUnavailable) -> bool:
            return not _is_pending(exc)

        try:
            answer = self._call("/mpesa/stkpushquery/v1/query", body, idempotent=True, retry_if=pending)
        except ProviderUnavailable as exc:
            if _is_pending(exc):
                return StatusAnswer(
                    self.name, request_id, Outcome.PENDING, exc.code, "the customer has not answered yet"
                )
            raise
        except ProviderRejected as exc:
            # Daraja answers an unknown CheckoutRequestID with 400.002.02 "Invalid ..."
            if "checkoutrequestid" in str(exc).lower():
                return StatusAnswer(
                    self.name, request_id, Outcome.UNKNOWN, exc.code, "M-Pesa does not know this request"
                )
            raise
        if not isinstance(answer, dict) or "ResultCode" not in answer:
            raise ProviderUnavailable("mpesa: STK Query answer has no ResultCode", wire.PROVIDER)
        code = str(answer["ResultCode"])
        desc = str(answer.get("ResultDesc") or "")[:200]
        # A paid query carries no receipt or amount: the callback (or C2B) brings those.
        return StatusAnswer(self.name, request_id, wire.outcome_for(code), code, desc)

    # -- C2B -------------------------------------------------------------------------------

    def register_urls(
        self, confirmation_url: str, validation_url: str, response_type: str = "Completed"
    ) -> str:
        """Register the C2B URLs for the shortcode; Daraja's answer text."""
        if response_type not in ("Completed", "Cancelled"):
            raise ProviderRejected("mpesa: response_type is 'Completed' or 'Cancelled'", wire.PROVIDER)
        body = self._call(
            "/mpesa/c2b/v1/registerurl",
            {
                "ShortCode": self.shortcode,
                "ResponseType": response_type,
                "ConfirmationURL": confirmation_url,
                "ValidationURL": validation_url,
            },
            idempotent=True,
        )
        if not isinstance(body, dict) or str(body.get("ResponseCode")) != "0":
            code, message = _read_error(body)
            raise ProviderRejected(f"mpesa: URL registration refused: {message}", wire.PROVIDER, code)
        return str(body.get("ResponseDescription") or "success")

    # -- callbacks -------------------------------------------------------------------------

    def parse_callback(
        self, path: str, headers: Mapping[str, str], body: bytes
    ) -> StatusAnswer | Confirmation:
        kind = path.strip("/").lower()
        if kind == "stk":
            return wire.parse_stk_callback(body, self.shortcode)
        if kind in ("c2b/confirmation", "c2b/validation"):
            return wire.parse_c2b(body)
        raise CallbackError(f"mpesa: unknown callback kind {path!r}", wire.PROVIDER)


def _is_pending(exc: PaymentError) -> bool:
    return exc.code == "500.001.1001" and "being processed" in str(exc).lower()
