"""An Africa's Talking SMS simulator speaking its real shapes, for tests, the demo, engineers.

    sim = AfricasTalkingSim(username="sandbox", api_key="k").start()
    sim.dlr_url = "http://127.0.0.1:8080/hooks/<token>/sms-dlr"   # the dashboard setting
    sim.script("+254712000001", "absent")   # that phone is off: the report says Failed
    ... AfricasTalkingGateway({"base_url": sim.url, ...}).send(...) ...
    sim.incoming("+254712345678", "STOP")     # a customer replies to the short code
    sim.stop()

``POST /version1/messaging`` checks the ``apiKey`` header (401 "The supplied authentication
is invalid") and ``username`` like Africa's Talking, reads the form (``to`` may list several
numbers), and answers ``SMSMessageData`` with one entry per recipient: statusCode 101
``Success`` with a ``messageId``, the cost and ``messageParts``; 403 ``InvalidPhoneNumber``
for a number that is not E.164; 406 ``UserInBlacklist`` for a blacklisted one; 405
``InsufficientBalance`` once ``balance_minor`` runs out. ``rate_per_minute`` answers 429
beyond the cap, like an account throttled by its gateway. A delivery report (form post to
``dlr_url``) follows each accepted message after ``callback_delay``: ``Success``, or per
scripted phone ``Failed`` / ``AbsentSubscriber`` / ``Rejected`` with a ``failureReason``.
Faults from :class:`~jasiyo.payments.simbase.Faults` (``fail_next``, ``throttle_next``,
``latency_s``, lost and duplicated callbacks) apply too.

Control: ``GET /sim/messages``, ``POST /sim/incoming`` ``{"from", "text"}``, ``POST
/sim/config`` ``{"dlr_url", "incoming_url", "balance_minor", "rate_per_minute",
"blacklist": [...], "script": {"+2547...": "absent"}}``, plus the common ``/sim/`` ones.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from jasiyo.payments.simbase import SimServer
from jasiyo.sms.encoding import segments

_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
#: Script name -> (delivery report status, failureReason).
SCRIPTS: dict[str, tuple[str, str]] = {
    "deliver": ("Success", ""),
    "absent": ("AbsentSubscriber", "AbsentSubscriber"),
    "failed": ("Failed", "DeliveryFailure"),
    "rejected": ("Rejected", "RejectedByGateway"),
    "buffered": ("Buffered", ""),  # never reaches the phone while the test runs
}


@dataclass(slots=True)
class SimMessage:
    """One message to one recipient the simulator accepted (or refused)."""

    message_id: str
    to: str
    text: str
    sender: str
    status_code: int
    status: str
    parts: int
    cost: str
    at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AfricasTalkingSim(SimServer):
    name = "africastalking-sim"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        username: str = "sandbox",
        api_key: str = "sim-at-api-key",
        currency: str = "KES",
        part_cost_minor: int = 80,
        callback_delay: float = 0.3,
    ) -> None:
        super().__init__(host, port, callback_delay)
        self.username = username
        self.api_key = api_key
        self.currency = currency
        self.part_cost_minor = part_cost_minor
        self.dlr_url = ""
        self.incoming_url = ""
        self.balance_minor: int | None = None  # None: unlimited
        self.rate_per_minute = 0  # 0: no cap
        self.blacklist: set[str] = set()
        self.scripts: dict[str, str] = {}
        self.messages: list[SimMessage] = []
        self._recent: deque[float] = deque()
        self._mlock = threading.Lock()

    # -- driving it -------------------------------------------------------------------------

    def script(self, phone: str, outcome: str) -> None:
        if outcome not in SCRIPTS:
            raise ValueError(f"unknown outcome {outcome!r}; known: {', '.join(SCRIPTS)}")
        self.scripts[phone] = outcome

    def sent_to(self, phone: str) -> list[SimMessage]:
        with self._mlock:
            return [m for m in self.messages if m.to == phone and m.status_code == 101]

    def accepted(self) -> list[SimMessage]:
        with self._mlock:
            return [m for m in self.messages if m.status_code == 101]

    def incoming(self, phone: str, text: str, to: str = "22384") -> int | None:
        """A customer texts our short code: POST it to ``incoming_url`` now (the status)."""
        if not self.incoming_url:
            raise ValueError("no incoming_url set (the dashboard's incoming messages URL)")
        form = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "from": phone,
            "id": secrets.token_hex(16),
            "linkId": secrets.token_hex(8),
            "text": text,
            "to": to,
            "networkCode": "63902",
        }
        sent = self._form_now(self.incoming_url, form)
        return sent

    def reset(self) -> None:
        super().reset()
        with self._mlock:
            self.messages.clear()
            self._recent.clear()

    # -- the API ------------------------------------------------------------------------------

    def _throttled(self) -> bool:
        if not self.rate_per_minute:
            return False
        now = time.monotonic()
        with self._mlock:
            while self._recent and self._recent[0] < now - 60:
                self._recent.popleft()
            if len(self._recent) >= self.rate_per_minute:
                return True
            self._recent.append(now)
            return False

    async def messaging(self, request: Request) -> Response:
        if request.headers.get("apikey", "") != self.api_key:
            return PlainTextResponse("The supplied authentication is invalid", 401)
        if self._throttled():
            return PlainTextResponse("Too Many Requests", 429)
        raw = await request.body()
        try:
            form = dict(parse_qsl(raw.decode(), keep_blank_values=True, max_num_fields=50))
        except (UnicodeDecodeError, ValueError):
            return PlainTextResponse("Request is missing required form field 'to'", 400)
        if form.get("username") != self.username:
            return PlainTextResponse("The supplied authentication is invalid", 401)
        to, text = form.get("to", ""), form.get("message")
        if not to:
            return PlainTextResponse("Request is missing required form field 'to'", 400)
        if text is None:
            return PlainTextResponse("Request is missing required form field 'message'", 400)
        sender = form.get("from", "")
        parts = segments(text).parts
        recipients = []
        total = 0
        for number in [n.strip() for n in to.split(",") if n.strip()]:
            msg = self._one(number, text, sender, parts)
            if msg.status_code == 101:
                total += self.part_cost_minor * parts
            recipients.append(
                {
                    "statusCode": msg.status_code,
                    "number": number,
                    "status": msg.status,
                    "cost": msg.cost,
                    "messageId": msg.message_id,
                    "messageParts": parts,
                }
            )
        ok = sum(1 for r in recipients if r["statusCode"] == 101)
        summary = f"Sent to {ok}/{len(recipients)} Total Cost: {self.currency} {total / 100:.4f}"
        return JSONResponse(
            {"SMSMessageData": {"Message": summary, "Recipients": recipients}}, status_code=201
        )

    def _one(self, number: str, text: str, sender: str, parts: int) -> SimMessage:
        cost = self.part_cost_minor * parts
        with self._mlock:
            if not _E164.fullmatch(number):
                code, status = 403, "InvalidPhoneNumber"
            elif number in self.blacklist:
                code, status = 406, "UserInBlacklist"
            elif self.balance_minor is not None and self.balance_minor < cost:
                code, status = 405, "InsufficientBalance"
            else:
                code, status = 101, "Success"
                if self.balance_minor is not None:
                    self.balance_minor -= cost
            ok = code == 101
            msg = SimMessage(
                message_id=f"ATXid_{secrets.token_hex(16)}" if ok else "None",
                to=number,
                text=text,
                sender=sender,
                status_code=code,
                status=status,
                parts=parts,
                cost=f"{self.currency} {cost / 100:.4f}" if ok else "0",
                at=time.time(),
            )
            self.messages.append(msg)
        if ok and self.dlr_url:
            dlr_status, reason = SCRIPTS[self.scripts.get(number, "deliver")]
            form = {
                "id": msg.message_id,
                "status": dlr_status,
                "phoneNumber": number,
                "networkCode": "63902",
                "retryCount": "0",
            }
            if reason:
                form["failureReason"] = reason
            self._form_later(self.dlr_url, form)
        return msg

    # -- form callbacks (Africa's Talking posts forms, not JSON) ---------------------------

    def _form_later(self, url: str, form: dict[str, str]) -> None:
        sender = self._sender
        if sender is None:
            return
        wait = self.callback_delay + self.faults.late_s
        if self.faults.take_lost():
            return
        body = urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        for i in range(max(1, self.faults.duplicate_callbacks)):
            sender.schedule(wait + i * 0.01, url, body, headers)

    def _form_now(self, url: str, form: dict[str, str]) -> int | None:
        if self._sender is None:
            raise ValueError("the simulator is not running")
        sent = self._sender.post_now(
            url, urlencode(form).encode(), {"Content-Type": "application/x-www-form-urlencoded"}
        )
        return sent.status

    # -- control ----------------------------------------------------------------------------

    async def control(self, request: Request) -> Response:
        what = request.path_params["what"]
        if what == "messages":
            with self._mlock:
                return JSONResponse([m.to_dict() for m in self.messages])
        if request.method != "POST":
            return JSONResponse({"error": "not found"}, 404)
        try:
            doc = json.loads(await request.body() or b"{}")
            if not isinstance(doc, dict):
                raise ValueError("a JSON object")
            if what == "incoming":
                from starlette.concurrency import run_in_threadpool

                status = await run_in_threadpool(self.incoming, str(doc["from"]), str(doc["text"]))
                return JSONResponse({"delivered_status": status})
            if what == "config":
                self.configure(doc)
                return JSONResponse({"ok": True})
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"error": "not found"}, 404)

    def configure(self, doc: dict[str, Any]) -> None:
        for key, value in doc.items():
            if key in ("dlr_url", "incoming_url"):
                setattr(self, key, str(value))
            elif key == "balance_minor":
                self.balance_minor = None if value is None else int(value)
            elif key == "rate_per_minute":
                self.rate_per_minute = int(value)
            elif key == "blacklist":
                self.blacklist = {str(v) for v in value}
            elif key == "script":
                for phone, outcome in dict(value).items():
                    self.script(str(phone), str(outcome))
            else:
                raise ValueError(f"unknown setting {key!r}")

    def routes(self) -> list[Route]:
        return [
            Route("/version1/messaging", self.messaging, methods=["POST"]),
            Route("/sim/{what}", self.control, methods=["GET", "POST"]),
        ]
