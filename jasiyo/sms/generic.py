"""A generic HTTP gateway: a local aggregator described by a URL template.

    [sms]
    provider = "http"
    url_template = "https://sms.example.co.ke/send?user={username}&key={api_key}&to={to}&msg={text}&from={sender_id}"
    method = "GET"                 # or POST
    body_template = ""             # POST body; {text} etc. JSON-escaped when it starts with '{'
    message_id_field = "id"        # where the answer's JSON keeps the message id (dotted path)

Placeholders: ``{to}`` (E.164 with '+'), ``{to_digits}`` (without), ``{text}``,
``{sender_id}``, ``{username}``, ``{api_key}``, ``{reference}``. Values are URL-encoded in
the URL and form-encoded (or JSON-escaped) in the body. Any 2xx answer is "accepted".

Delivery reports and incoming messages are read from a form or JSON body with the fields
``id`` / ``status`` (delivered when it is one of ``delivered``, ``success``, ``delivrd``;
failed when ``failed``, ``rejected``, ``undeliv``, ``expired``) and ``from`` / ``text``.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, quote_plus

import httpx

from jasiyo.sms.africastalking import read_form
from jasiyo.sms.base import SmsGateway
from jasiyo.sms.errors import CallbackError
from jasiyo.sms.http import HttpClient
from jasiyo.sms.models import Delivery, DeliveryReport, IncomingSms, OutgoingSms, SendResult

PLACEHOLDERS = frozenset({"to", "to_digits", "text", "sender_id", "username", "api_key", "reference"})
_DELIVERED = frozenset({"delivered", "success", "delivrd"})
_FAILED = frozenset({"failed", "rejected", "undeliv", "undelivered", "expired"})


def placeholders(template: str) -> set[str]:
    """The names a template uses; ValueError if it is not a valid template."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def check_template(template: str, where: str) -> None:
    try:
        used = placeholders(template)
    except ValueError as exc:
        raise ValueError(f"{where}: not a valid template ({exc})") from None
    unknown = sorted(used - PLACEHOLDERS)
    if unknown:
        raise ValueError(
            f"{where}: unknown placeholder {{{unknown[0]}}} (known: {', '.join(sorted(PLACEHOLDERS))})"
        )


class HttpGateway(SmsGateway):
    name = "http"

    def __init__(
        self,
        settings: Mapping[str, object],
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(settings, transport=transport, timeout=timeout)
        self.url_template = str(settings.get("url_template") or "")
        self.method = str(settings.get("method") or "GET").upper()
        self.body_template = str(settings.get("body_template") or "")
        self.id_field = str(settings.get("message_id_field") or "")
        self._http = HttpClient(self.name, transport=transport, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _values(self, sms: OutgoingSms) -> dict[str, str]:
        return {
            "to": sms.to,
            "to_digits": sms.to.lstrip("+"),
            "text": sms.text,
            "sender_id": sms.sender_id,
            "reference": sms.reference,
            "username": str(self.settings.get("username") or ""),
            "api_key": str(self.settings.get("api_key") or ""),
        }

    def send(self, sms: OutgoingSms) -> SendResult:
        values = self._values(sms)
        url = self.url_template.format(**{k: quote(v, safe="") for k, v in values.items()})
        content: bytes | None = None
        headers: dict[str, str] = {}
        if self.method == "POST" and self.body_template:
            if self.body_template.lstrip().startswith("{"):
                # JSON: str.format would read the braces, so substitute the escaped values.
                body = self.body_template
                for k, v in values.items():
                    body = body.replace("{" + k + "}", json.dumps(v)[1:-1])
                headers["Content-Type"] = "application/json"
            else:
                body = self.body_template.format(**{k: quote_plus(v) for k, v in values.items()})
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            content = body.encode()
        _, answer = self._http.request(self.method, url, content=content, headers=headers)
        return SendResult(self.name, sms.to, True, message_id=self._message_id(answer), status="accepted")

    def _message_id(self, answer: Any) -> str:
        if not self.id_field:
            return ""
        node = answer
        for part in self.id_field.split("."):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return ""
        return str(node) if isinstance(node, str | int) else ""

    def parse_callback(
        self, kind: str, headers: Mapping[str, str], body: bytes
    ) -> DeliveryReport | IncomingSms:
        form: dict[str, Any]
        if body.lstrip().startswith(b"{"):
            try:
                doc = json.loads(body)
            except (ValueError, RecursionError):
                raise CallbackError("callback body is not JSON", self.name) from None
            form = {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else {}
        else:
            form = read_form(body)
        if kind == "dlr":
            mid, status = form.get("id", ""), form.get("status", "").strip().lower()
            if not mid or not status:
                raise CallbackError("delivery report without id or status", self.name)
            delivery = (
                Delivery.DELIVERED
                if status in _DELIVERED
                else Delivery.FAILED
                if status in _FAILED
                else Delivery.PENDING
            )
            return DeliveryReport(
                self.name, mid, delivery, status, form.get("phone", ""), form.get("reason", "")
            )
        if kind == "incoming":
            if not form.get("from") or "text" not in form:
                raise CallbackError("incoming message without from or text", self.name)
            return IncomingSms(self.name, form["from"], form["text"], form.get("to", ""), form.get("id", ""))
        raise CallbackError(f"unknown callback kind {kind!r}", self.name)
