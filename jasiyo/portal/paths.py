"""The web listener's callback paths, shared by the listener and the payments policy."""

from __future__ import annotations

#: Path segment of ``/hooks/{token}/{segment}`` -> endpoint name. Daraja refuses callback
#: URLs that contain "mpesa" (or "safaricom", "query", ...), so the segments differ.
CALLBACK_PATHS: dict[str, str] = {
    "stk": "mpesa-stk",
    "c2b": "mpesa-c2b",
    "c2b-validation": "mpesa-val",
    "paystack": "paystack",
    "sms-dlr": "sms-dlr",
    "sms-in": "sms-in",
}
