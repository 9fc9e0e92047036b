"""A Daraja simulator speaking Daraja's real JSON, for tests, the demo and engineers.

    sim = DarajaSim(consumer_key="k", consumer_secret="s", shortcode="174379",
                    passkey="...").start()
    sim.script("254712345678", "cancel")   # that phone will press Cancel
    ... DarajaProvider({"base_url": sim.url, ...}).request_payment(...) ...
    sim.c2b_pay("254712345678", 1500, "alice")   # a customer pays the paybill
    sim.stop()

What it checks, like Daraja: Basic credentials on ``/oauth/v1/generate``; the bearer token
on every call (a new token invalidates the previous one: ``404.001.03``); the STK
``Password`` against base64(shortcode + passkey + Timestamp), the Timestamp against Nairobi
time (``max_skew_s``); field formats (phone, whole Amount, AccountReference ≤ 12,
TransactionDesc ≤ 13, CallBackURL). The answer to a push comes ``callback_delay`` seconds
later as an ``stkCallback`` POST; until then STK Query says "The transaction is being
processed" (``500.001.1001``), as Daraja does.

Scripted outcomes per phone: ``pay`` (default), ``cancel`` 1032, ``insufficient`` 1,
``timeout`` 1037, ``expired`` 1019, ``unreachable`` 1025, ``wrong_pin`` 2001, ``duplicate``
17, ``failed`` 2028, ``pending`` (never answers until :meth:`DarajaSim.resolve`).
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import string
import time
import uuid
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jasiyo.payments.mpesa import wire
from jasiyo.payments.simbase import SimServer
from jasiyo.tls import client_context

#: Script name -> (ResultCode, ResultDesc as Daraja words it).
OUTCOMES: dict[str, tuple[int, str]] = {
    "pay": (0, "The service request is processed successfully."),
    "cancel": (1032, "Request cancelled by user"),
    "insufficient": (1, "The balance is insufficient for the transaction"),
    "timeout": (1037, "DS timeout user cannot be reached"),
    "expired": (1019, "Transaction has expired"),
    "unreachable": (1025, "An error occurred while sending a push request"),
    "wrong_pin": (2001, "The initiator information is invalid."),
    "duplicate": (17, "Rule limited."),
    "failed": (2028, "The request is not permitted according to product assignment"),
}
_PHONE = re.compile(r"254[17][0-9]{8}")
_FORBIDDEN_URL_WORDS = ("m-pesa", "mpesa", "safaricom", "exe", "cmd", "sql", "query")


@dataclass(slots=True)
class StkPush:
    """One STK push the simulator accepted."""

    checkout_request_id: str
    merchant_request_id: str
    phone: str
    amount: int  # whole shillings, as sent
    account: str
    callback_url: str
    outcome: str  # script name
    result_code: int | None = None  # None while the customer has not answered
    result_desc: str = ""
    receipt: str = ""
    at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class C2BResult:
    """What became of one :meth:`DarajaSim.c2b_pay`."""

    trans_id: str
    accepted: bool
    result_code: str  # the validation answer ("0", "C2B00012"), "" when not validated
    validation_status: int | None = None  # HTTP status of the validation call, if made


def _receipt() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "S" + "".join(secrets.choice(alphabet) for _ in range(9))


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse(
        {"requestId": uuid.uuid4().hex[:16], "errorCode": code, "errorMessage": message}, status_code=status
    )


def _bad(field: str) -> Response:
    return _error(400, "400.002.02", f"Bad Request - Invalid {field}")


class DarajaSim(SimServer):
    """The Daraja API for one app and shortcode (plus extra C2B shortcodes)."""

    name = "daraja-sim"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        consumer_key: str = "sim-consumer-key",
        consumer_secret: str = "sim-consumer-secret",
        shortcode: str = "174379",
        passkey: str = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
        till_number: str = "",
        callback_delay: float = 0.5,
        token_lifetime: int = 3599,
        max_skew_s: float | None = 600.0,
        external_validation: bool = True,
        mask_msisdn: bool = True,
    ) -> None:
        super().__init__(host, port, callback_delay)
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.shortcode = shortcode
        self.passkey = passkey
        self.till_number = till_number or shortcode
        self.token_lifetime = token_lifetime
        self.max_skew_s = max_skew_s
        self.external_validation = external_validation
        self.mask_msisdn = mask_msisdn
        self.validation_timeout = 8.0  # Daraja applies the default action after about 8 s
        self.scripts: dict[str, str] = {}
        self.pushes: dict[str, StkPush] = {}
        #: C2B registrations: shortcode -> {"ResponseType", "ConfirmationURL", "ValidationURL"}
        self.registrations: dict[str, dict[str, str]] = {}
        self.tokens_issued = 0
        self._token: tuple[str, float] | None = None  # (value, expiry unix time)

    # -- control from Python ----------------------------------------------------------------

    def script(self, phone: str, outcome: str) -> None:
        """What the customer on ``phone`` does with the next prompts (see OUTCOMES)."""
        if outcome not in OUTCOMES and outcome != "pending":
            raise ValueError(f"unknown outcome {outcome!r}; known: {', '.join([*OUTCOMES, 'pending'])}")
        with self._lock:
            self.scripts[phone] = outcome

    def issue_token(self) -> str:
        """A new access token, invalidating the previous one (as another server would)."""
        with self._lock:
            value = secrets.token_urlsafe(21)
            self._token = (value, time.time() + self.token_lifetime)
            self.tokens_issued += 1
            return value

    def expire_token(self) -> None:
        with self._lock:
            if self._token is not None:
                self._token = (self._token[0], time.time() - 1)

    def resolve(self, checkout_request_id: str, outcome: str, *, callback: bool = True) -> None:
        """Answer a ``pending`` push now (``outcome`` from OUTCOMES)."""
        push = self.pushes[checkout_request_id]
        push.outcome = outcome
        if callback:
            self._queue_callback(push, delay=0.0)
        else:
            self._finish(push)

    def c2b_pay(
        self,
        msisdn: str,
        amount: int | str | Decimal,
        bill_ref: str,
        shortcode: str | None = None,
        *,
        first_name: str = "JOHN",
        last_name: str = "DOE",
    ) -> C2BResult:
        """A customer pays ``amount`` whole shillings to the paybill with ``bill_ref``.

        Posts the validation request (when external validation is on and a ValidationURL is
        registered), then the confirmation unless validation refused it. Callback faults
        (lost, duplicated, wrong amount) apply to the confirmation."""
        code = shortcode or self.shortcode
        reg = self.registrations.get(code)
        if reg is None:
            raise ValueError(f"no C2B URLs registered for shortcode {code}")
        trans_id = _receipt()
        stamp = wire.timestamp(time.time())
        doc: dict[str, Any] = {
            "TransactionType": "Pay Bill" if code == self.shortcode else "Buy Goods",
            "TransID": trans_id,
            "TransTime": stamp,
            "TransAmount": f"{Decimal(amount):.2f}",
            "BusinessShortCode": code,
            "BillRefNumber": bill_ref,
            "InvoiceNumber": "",
            "OrgAccountBalance": "",
            "ThirdPartyTransID": "",
            "MSISDN": f"{msisdn[:5]}****{msisdn[-3:]}" if self.mask_msisdn else msisdn,
            "FirstName": first_name,
            "MiddleName": "",
            "LastName": last_name,
        }
        result_code, status = "", None
        if self.external_validation and reg.get("ValidationURL"):
            answer = self._validate(reg["ValidationURL"], doc)
            status = answer.status
            if answer.status is not None:
                try:
                    result_code = str(wire.load_json(answer.answer).get("ResultCode", ""))
                except Exception:  # noqa: BLE001 - an unreadable answer is "no answer"
                    result_code = ""
            if result_code and result_code != "0":
                return C2BResult(trans_id, False, result_code, status)
            if not result_code and reg["ResponseType"] == "Cancelled":
                return C2BResult(trans_id, False, "", status)
        confirmation = dict(doc, OrgAccountBalance="49197.00")
        if self.faults.wrong_amount_minor:
            minor = wire.shillings_to_minor(doc["TransAmount"], "TransAmount")
            confirmation["TransAmount"] = f"{Decimal(minor + self.faults.wrong_amount_minor) / 100:.2f}"
        self.send_callback(reg["ConfirmationURL"], confirmation, delay=0.0)
        return C2BResult(trans_id, True, result_code, status)

    def _validate(self, url: str, doc: dict[str, Any]) -> Any:
        from jasiyo.payments.simbase import SentCallback

        body = wire.dumps(doc)
        try:
            with httpx.Client(timeout=self.validation_timeout, verify=client_context()) as client:
                resp = client.post(url, content=body, headers={"Content-Type": "application/json"})
            sent = SentCallback(url, body, {}, resp.status_code, resp.content[:4096], time.time())
        except httpx.HTTPError:
            sent = SentCallback(url, body, {}, None, b"", time.time())
        if self._sender is not None:
            self._sender.sent.append(sent)
        return sent

    # -- STK machinery ---------------------------------------------------------------------

    def _finish(self, push: StkPush) -> None:
        code, desc = OUTCOMES[push.outcome]
        with self._lock:
            push.result_code, push.result_desc = code, desc
            if code == 0 and not push.receipt:
                push.receipt = _receipt()

    def _queue_callback(self, push: StkPush, delay: float | None = None) -> None:
        code, desc = OUTCOMES[push.outcome]
        receipt = push.receipt or _receipt()
        push.receipt = receipt if code == 0 else ""
        cb: dict[str, Any] = {
            "MerchantRequestID": push.merchant_request_id,
            "CheckoutRequestID": push.checkout_request_id,
            "ResultCode": code,
            "ResultDesc": desc,
        }
        if code == 0:
            amount = push.amount + self.faults.wrong_amount_minor / 100
            cb["CallbackMetadata"] = {
                "Item": [
                    {"Name": "Amount", "Value": float(amount)},
                    {"Name": "MpesaReceiptNumber", "Value": receipt},
                    {"Name": "Balance"},
                    {"Name": "TransactionDate", "Value": int(wire.timestamp(time.time()))},
                    {"Name": "PhoneNumber", "Value": int(push.phone)},
                ]
            }
        self.send_callback(
            push.callback_url, {"Body": {"stkCallback": cb}}, delay=delay, before=lambda: self._finish(push)
        )

    # -- the HTTP API ----------------------------------------------------------------------

    def error_response(self, status: int) -> Response:
        if status == 429:
            return _error(429, "500.003.02", "Spike arrest violation")
        return _error(status, f"{status}.003.01", "Service is currently unavailable")

    def _check_bearer(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with self._lock:
            current = self._token
        if (
            current is None
            or not token
            or current[1] < time.time()
            or not hmac.compare_digest(token.encode(), current[0].encode())
        ):
            return _error(404, "404.001.03", "Invalid Access Token")
        return None

    def _check_password(self, doc: dict[str, Any]) -> Response | None:
        if str(doc.get("BusinessShortCode", "")) != self.shortcode:
            return _bad("BusinessShortCode")
        stamp = doc.get("Timestamp")
        if not isinstance(stamp, str) or not re.fullmatch(r"[0-9]{14}", stamp):
            return _bad("Timestamp")
        if self.max_skew_s is not None:
            try:
                skew = abs(wire.parse_timestamp(stamp) - time.time())
            except Exception:  # noqa: BLE001 - any unreadable stamp is a bad field
                return _bad("Timestamp")
            if skew > self.max_skew_s:
                return _bad("Timestamp")
        expected = wire.password(self.shortcode, self.passkey, stamp)
        if not hmac.compare_digest(str(doc.get("Password", "")).encode(), expected.encode()):
            return _error(500, "500.001.1001", "[MerchantValidate] - Wrong credentials")
        return None

    async def _json(self, request: Request) -> dict[str, Any] | None:
        try:
            doc = wire.load_json(await request.body())
        except Exception:  # noqa: BLE001 - the API answers any bad body the same way
            return None
        return doc if isinstance(doc, dict) else None

    async def oauth(self, request: Request) -> Response:
        if request.query_params.get("grant_type") != "client_credentials":
            return _error(400, "400.008.02", "Invalid grant type passed")
        auth = request.headers.get("authorization", "")
        expected = base64.b64encode(f"{self.consumer_key}:{self.consumer_secret}".encode()).decode()
        if not auth.startswith("Basic ") or not hmac.compare_digest(auth[6:].encode(), expected.encode()):
            return _error(400, "400.008.01", "Invalid Authentication passed")
        return JSONResponse({"access_token": self.issue_token(), "expires_in": str(self.token_lifetime)})

    async def stkpush(self, request: Request) -> Response:
        if (denied := self._check_bearer(request)) is not None:
            return denied
        doc = await self._json(request)
        if doc is None:
            return _error(400, "400.002.05", "Invalid Request Payload")
        if (denied := self._check_password(doc)) is not None:
            return denied
        if doc.get("TransactionType") not in ("CustomerPayBillOnline", "CustomerBuyGoodsOnline"):
            return _bad("TransactionType")
        amount = doc.get("Amount")
        if isinstance(amount, str) and amount.isascii() and amount.isdigit():
            amount = int(amount)
        if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= 250000:
            return _bad("Amount")
        phone = str(doc.get("PhoneNumber", ""))
        if not _PHONE.fullmatch(phone) or not _PHONE.fullmatch(str(doc.get("PartyA", ""))):
            return _bad("PhoneNumber")
        url = doc.get("CallBackURL")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return _bad("CallBackURL")
        account = doc.get("AccountReference")
        if not isinstance(account, str) or not 1 <= len(account) <= 12:
            return _bad("AccountReference")
        desc = doc.get("TransactionDesc")
        if not isinstance(desc, str) or not 1 <= len(desc) <= 13:
            return _bad("TransactionDesc")
        buy_goods = doc["TransactionType"] == "CustomerBuyGoodsOnline"
        party_b = str(doc.get("PartyB", ""))
        right_b = party_b == (self.till_number if buy_goods else self.shortcode)
        outcome = self.scripts.get(phone, "pay") if right_b else "failed"
        n = secrets.randbelow(10**8)
        push = StkPush(
            checkout_request_id=f"ws_CO_{wire.timestamp(time.time())}{n:08d}",
            merchant_request_id=f"{secrets.randbelow(10**5)}-{n}-1",
            phone=phone,
            amount=amount,
            account=account,
            callback_url=url,
            outcome=outcome,
            at=time.time(),
        )
        with self._lock:
            self.pushes[push.checkout_request_id] = push
        if outcome != "pending":
            self._queue_callback(push)
        return JSONResponse(
            {
                "MerchantRequestID": push.merchant_request_id,
                "CheckoutRequestID": push.checkout_request_id,
                "ResponseCode": "0",
                "ResponseDescription": "Success. Request accepted for processing",
                "CustomerMessage": "Success. Request accepted for processing",
            }
        )

    async def stkquery(self, request: Request) -> Response:
        if (denied := self._check_bearer(request)) is not None:
            return denied
        doc = await self._json(request)
        if doc is None:
            return _error(400, "400.002.05", "Invalid Request Payload")
        if (denied := self._check_password(doc)) is not None:
            return denied
        push = self.pushes.get(str(doc.get("CheckoutRequestID", "")))
        if push is None:
            return _bad("CheckoutRequestID")
        if push.result_code is None:
            return _error(500, "500.001.1001", "The transaction is being processed")
        return JSONResponse(
            {
                "ResponseCode": "0",
                "ResponseDescription": "The service request has been accepted successsfully",
                "MerchantRequestID": push.merchant_request_id,
                "CheckoutRequestID": push.checkout_request_id,
                "ResultCode": str(push.result_code),
                "ResultDesc": push.result_desc,
            }
        )

    async def registerurl(self, request: Request) -> Response:
        if (denied := self._check_bearer(request)) is not None:
            return denied
        doc = await self._json(request)
        if doc is None:
            return _error(400, "400.002.05", "Invalid Request Payload")
        code = str(doc.get("ShortCode", ""))
        if not (code.isascii() and code.isdigit()):
            return _bad("ShortCode")
        if doc.get("ResponseType") not in ("Completed", "Cancelled"):
            return _bad("ResponseType")
        urls = {}
        for key in ("ConfirmationURL", "ValidationURL"):
            url = doc.get(key)
            if (
                not isinstance(url, str)
                or not url.startswith(("http://", "https://"))
                or any(w in url.lower() for w in _FORBIDDEN_URL_WORDS)
            ):
                return _bad(key)
            urls[key] = url
        with self._lock:
            self.registrations[code] = {"ResponseType": doc["ResponseType"], **urls}
        return JSONResponse(
            {
                "OriginatorCoversationID": f"{secrets.randbelow(10**5)}-{secrets.randbelow(10**8)}-1",
                "ResponseCode": "0",
                "ResponseDescription": "success",
            }
        )

    # -- control over HTTP -----------------------------------------------------------------

    async def control(self, request: Request) -> Response:
        what = request.path_params["what"]
        doc = await self._json(request) if request.method == "POST" else {}
        if doc is None:
            return JSONResponse({"error": "a JSON object please"}, status_code=400)
        try:
            if what == "script":
                self.script(str(doc["phone"]), str(doc["outcome"]))
                return JSONResponse({"ok": True})
            if what == "stk":
                return JSONResponse([p.to_dict() for p in list(self.pushes.values())])
            if what == "resolve":
                self.resolve(str(doc["checkout_request_id"]), str(doc["outcome"]))
                return JSONResponse({"ok": True})
            if what == "c2b":
                # In a thread: validation is a blocking POST that may come back to us.
                result = await run_in_threadpool(
                    self.c2b_pay,
                    str(doc["msisdn"]),
                    str(doc["amount"]),
                    str(doc.get("bill_ref", "")),
                    doc.get("shortcode"),
                )
                return JSONResponse(asdict(result))
            if what == "token":
                self.issue_token()
                return JSONResponse({"ok": True, "tokens_issued": self.tokens_issued})
        except (KeyError, ValueError, ArithmeticError) as exc:
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=400)
        return JSONResponse({"error": f"no control {what!r}"}, status_code=404)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.scripts.clear()
            self.pushes.clear()

    def routes(self) -> list[Route]:
        return [
            Route("/oauth/v1/generate", self.oauth, methods=["GET"]),
            Route("/mpesa/stkpush/v1/processrequest", self.stkpush, methods=["POST"]),
            Route("/mpesa/stkpushquery/v1/query", self.stkquery, methods=["POST"]),
            Route("/mpesa/c2b/v1/registerurl", self.registerurl, methods=["POST"]),
            Route("/mpesa/c2b/v2/registerurl", self.registerurl, methods=["POST"]),
            Route("/sim/{what}", self.control, methods=["GET", "POST"]),
        ]
