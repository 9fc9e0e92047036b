"""A Paystack simulator speaking Paystack's real JSON, for tests, the demo and engineers.

    sim = PaystackSim(secret_key="sk_test_sim", webhook_url=receiver_url).start()
    started = PaystackProvider({"base_url": sim.url, "secret_key": "sk_test_sim"}) \\
        .request_payment(PaymentRequest(..., email="a@example.com"))
    sim.paystack_complete(started.request_id)      # or POST the form at checkout_url
    sim.stop()

``POST /transaction/initialize`` answers ``{"status":true,"message":"Authorization URL
created","data":{"authorization_url","access_code","reference"}}``; the authorization URL
is a small HTML checkout page on the simulator whose form (``action=success`` or
``action=failed``) completes the payment, redirects to the callback_url with
``?trxref=…&reference=…`` and, on success, POSTs a ``charge.success`` webhook signed with
``x-paystack-signature`` (hex HMAC-SHA512 of the body, keyed with the secret key) to
``webhook_url`` after ``callback_delay`` seconds. Paystack sends no webhook for a failed
charge. ``GET /transaction/verify/{reference}`` says ``abandoned`` until then.
``faults.bad_signature`` signs with the wrong key.
"""

from __future__ import annotations

import hmac
import html
import json
import secrets
import string
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from jasiyo.payments.paystack.provider import signature
from jasiyo.payments.simbase import SimServer

CURRENCIES = ("NGN", "GHS", "ZAR", "KES", "USD", "XOF", "EGP")
_REF_CHARS = string.ascii_lowercase + string.digits


@dataclass(slots=True)
class Transaction:
    """One initialized transaction."""

    id: int
    reference: str
    access_code: str
    email: str
    amount: int
    currency: str
    callback_url: str
    metadata: Any
    status: str = "abandoned"
    gateway_response: str = "The transaction was not completed"
    paid_at: str | None = None
    created_at: str = ""
    channel: str = "card"
    customer_code: str = field(default_factory=lambda: "CUS_" + secrets.token_hex(7))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _fail(status: int, message: str, code: str = "", kind: str = "validation_error") -> Response:
    doc: dict[str, Any] = {"status": False, "message": message}
    if code:
        doc.update({"meta": {"nextStep": "Check your request"}, "type": kind, "code": code})
    return JSONResponse(doc, status_code=status)


class PaystackSim(SimServer):
    """The Paystack API for one integration (secret key)."""

    name = "paystack-sim"
    unlogged_prefixes = ("/checkout/",)

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        secret_key: str = "sk_test_jasiyo_sim",
        webhook_url: str = "",
        callback_delay: float = 0.5,
        domain: str = "test",
    ) -> None:
        super().__init__(host, port, callback_delay)
        self.secret_key = secret_key
        self.webhook_url = webhook_url
        self.domain = domain
        self.transactions: dict[str, Transaction] = {}
        self._by_code: dict[str, str] = {}
        self._ids = iter(range(4099260516, 10**12))

    # -- control from Python ----------------------------------------------------------------

    def paystack_complete(
        self, reference: str, outcome: str = "success", *, gateway_response: str = ""
    ) -> Transaction:
        """The customer finishes the checkout for ``reference``: ``success`` or ``failed``.
        A success queues a signed ``charge.success`` to :attr:`webhook_url`."""
        if outcome not in ("success", "failed"):
            raise ValueError("outcome is 'success' or 'failed'")
        with self._lock:
            tx = self.transactions[reference]
            if tx.status in ("success", "failed"):
                return tx  # a checkout completes once
            tx.status = outcome
            tx.gateway_response = gateway_response or ("Successful" if outcome == "success" else "Declined")
            tx.paid_at = _iso(time.time()) if outcome == "success" else None
        if outcome == "success" and self.webhook_url:
            self.send_webhook(tx)
        return tx

    def send_webhook(self, tx: Transaction, event: str = "charge.success") -> None:
        """Queue ``event`` about ``tx`` to the webhook URL (faults apply)."""
        data = self._data(tx)
        if self.faults.wrong_amount_minor:
            data["amount"] = tx.amount + self.faults.wrong_amount_minor
        key = "sk_test_forged_" + secrets.token_hex(8) if self.faults.bad_signature else (self.secret_key)
        self.send_callback(
            self.webhook_url,
            {"event": event, "data": data},
            encode=lambda body: {"x-paystack-signature": signature(key, body)},
        )

    def _data(self, tx: Transaction) -> dict[str, Any]:
        return {
            "id": tx.id,
            "domain": self.domain,
            "status": tx.status,
            "reference": tx.reference,
            "amount": tx.amount,
            "message": None,
            "gateway_response": tx.gateway_response,
            "paid_at": tx.paid_at,
            "created_at": tx.created_at,
            "channel": tx.channel,
            "currency": tx.currency,
            "ip_address": "127.0.0.1",
            "metadata": tx.metadata,
            "fees": min(tx.amount * 15 // 1000, 200000) if tx.status == "success" else None,
            "customer": {
                "id": tx.id % 10**8,
                "first_name": None,
                "last_name": None,
                "email": tx.email,
                "customer_code": tx.customer_code,
                "phone": None,
                "metadata": None,
                "risk_action": "default",
            },
            "authorization": {
                "authorization_code": "AUTH_" + tx.access_code[:10],
                "bin": "408408",
                "last4": "4081",
                "exp_month": "12",
                "exp_year": "2030",
                "channel": tx.channel,
                "card_type": "visa ",
                "bank": "TEST BANK",
                "country_code": "NG",
                "brand": "visa",
                "reusable": True,
                "signature": "SIG_sim",
            },
            "plan": None,
            "requested_amount": tx.amount,
        }

    # -- the HTTP API ----------------------------------------------------------------------

    def error_response(self, status: int) -> Response:
        if status == 429:
            return _fail(429, "Too many requests. Please try again later.")
        return _fail(status, "An error occurred, please try again")

    def _authorised(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        return bool(token) and hmac.compare_digest(token.encode(), self.secret_key.encode())

    async def initialize(self, request: Request) -> Response:
        if not self._authorised(request):
            return _fail(401, "Invalid key")
        try:
            doc = json.loads(await request.body())
        except (ValueError, RecursionError):
            return _fail(400, "Invalid JSON in request body")
        if not isinstance(doc, dict):
            return _fail(400, "Invalid JSON in request body")
        email = doc.get("email")
        if not isinstance(email, str) or "@" not in email:
            return _fail(400, "Invalid Email Address Passed", "invalid_params")
        amount = doc.get("amount")
        if isinstance(amount, str) and amount.isascii() and amount.isdigit():
            amount = int(amount)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            return _fail(400, "Invalid Amount Sent", "invalid_params")
        if amount > 10**9:
            return _fail(400, "Amount exceeds maximum", "invalid_amount")
        currency = doc.get("currency") or "NGN"
        if currency not in CURRENCIES:
            return _fail(403, "Currency not supported by merchant", "unsupported_currency")
        reference = doc.get("reference") or "".join(secrets.choice(_REF_CHARS) for _ in range(10))
        if not isinstance(reference, str):
            return _fail(400, "Invalid reference", "invalid_params")
        with self._lock:
            if any(r.lower() == reference.lower() for r in self.transactions):
                return _fail(400, "Duplicate Transaction Reference", "duplicate_reference")
            code = secrets.token_hex(8)
            tx = Transaction(
                id=next(self._ids),
                reference=reference,
                access_code=code,
                email=email,
                amount=amount,
                currency=currency,
                callback_url=str(doc.get("callback_url") or ""),
                metadata=doc.get("metadata", ""),
                created_at=_iso(time.time()),
            )
            self.transactions[reference] = tx
            self._by_code[code] = reference
        return JSONResponse(
            {
                "status": True,
                "message": "Authorization URL created",
                "data": {
                    "authorization_url": f"{self.url}/checkout/{code}",
                    "access_code": code,
                    "reference": reference,
                },
            }
        )

    async def verify(self, request: Request) -> Response:
        if not self._authorised(request):
            return _fail(401, "Invalid key")
        reference = request.path_params["reference"]
        tx = self.transactions.get(reference)
        if tx is None:
            return _fail(400, "Transaction reference not found", "transaction_not_found")
        return JSONResponse({"status": True, "message": "Verification successful", "data": self._data(tx)})

    async def balance(self, request: Request) -> Response:
        if not self._authorised(request):
            return _fail(401, "Invalid key")
        return JSONResponse(
            {"status": True, "message": "Balances retrieved", "data": [{"currency": "NGN", "balance": 0}]}
        )

    async def checkout(self, request: Request) -> Response:
        """The page behind authorization_url: a form a test can POST or a browser click."""
        reference = self._by_code.get(request.path_params["code"])
        if reference is None:
            return HTMLResponse("<h1>Invalid transaction</h1>", status_code=404)
        tx = self.transactions[reference]
        if request.method == "POST":
            form = parse_qs((await request.body()).decode("utf-8", "replace"))
            action = form.get("action", ["success"])[0]
            if action not in ("success", "failed"):
                return HTMLResponse("<h1>Unknown action</h1>", status_code=400)
            self.paystack_complete(reference, action)
            if tx.callback_url:
                sep = "&" if "?" in tx.callback_url else "?"
                query = urlencode({"trxref": reference, "reference": reference})
                return RedirectResponse(f"{tx.callback_url}{sep}{query}", status_code=303)
            return HTMLResponse(f"<h1 id='result'>Payment {html.escape(tx.status)}</h1>")
        amount = f"{tx.currency} {tx.amount / 100:,.2f}"
        return HTMLResponse(
            "<!doctype html><html><head><title>Paystack checkout (simulator)</title></head>"
            f"<body><h1>Pay {html.escape(amount)}</h1><p id='email'>{html.escape(tx.email)}</p>"
            f"<p id='status'>{html.escape(tx.status)}</p>"
            "<form method='post'><button name='action' value='success' id='pay'>Pay</button>"
            "<button name='action' value='failed' id='fail'>Decline</button></form>"
            "</body></html>"
        )

    async def control(self, request: Request) -> Response:
        what = request.path_params["what"]
        try:
            doc = json.loads(await request.body() or b"{}") if request.method == "POST" else {}
            if not isinstance(doc, dict):
                raise ValueError("a JSON object please")
            if what == "complete":
                tx = self.paystack_complete(str(doc["reference"]), str(doc.get("outcome", "success")))
                return JSONResponse(tx.to_dict())
            if what == "transactions":
                return JSONResponse([t.to_dict() for t in list(self.transactions.values())])
            if what == "webhook":
                self.webhook_url = str(doc["url"])
                return JSONResponse({"ok": True})
        except (KeyError, ValueError) as exc:
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=400)
        return JSONResponse({"error": f"no control {what!r}"}, status_code=404)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.transactions.clear()
            self._by_code.clear()

    def routes(self) -> list[Route]:
        return [
            Route("/transaction/initialize", self.initialize, methods=["POST"]),
            Route("/transaction/verify/{reference}", self.verify, methods=["GET"]),
            Route("/balance", self.balance, methods=["GET"]),
            Route("/checkout/{code}", self.checkout, methods=["GET", "POST"]),
            Route("/sim/{what}", self.control, methods=["GET", "POST"]),
        ]
