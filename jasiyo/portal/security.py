"""The portal's guards: CSRF tokens, security headers, and rate limits.

* **CSRF**: every page sets an HttpOnly ``jsy_csrf`` cookie (random, SameSite=Strict) and
  puts the same value in its forms; a POST whose field does not match it, or whose
  ``Origin`` names another site, is refused before anything else is read.
* **Headers**: a Content-Security-Policy that allows only this listener's own styles and
  script (no inline script, no other origins), no framing, no referrer (URLs never leave),
  no caching of pages that show an account.
* **Rate limits** (token buckets per key, ``jasiyo.ratelimit``): STK prompts per phone, per
  device MAC and per client address, so the portal cannot be used to spam M-Pesa prompts
  to strangers; voucher attempts per address and per MAC plus a global ceiling on failed
  ones, so codes cannot be guessed; page requests per address.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from jasiyo.ratelimit import Buckets

CSRF_COOKIE = "jsy_csrf"


def csp(form_action: str = "") -> str:
    """The policy for a page; ``form_action`` adds the one other origin a form may post to
    (the hotspot's login link)."""
    actions = "'self'" + (f" {form_action}" if form_action else "")
    return (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        f"connect-src 'self'; form-action {actions}; frame-ancestors 'none'; "
        "base-uri 'none'"
    )


def headers(form_action: str = "") -> dict[str, str]:
    return {
        "content-security-policy": csp(form_action),
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
        "cross-origin-opener-policy": "same-origin",
    }


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def csrf_token(request: Request) -> str:
    """The visitor's token (the cookie's, else a new one the response must set)."""
    have = request.cookies.get(CSRF_COOKIE, "")
    if len(have) == 32 and all(c in "0123456789abcdef" for c in have):
        return have
    return secrets.token_hex(16)


def set_csrf(response: Response, token: str) -> None:
    response.set_cookie(CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict", path="/")


def csrf_ok(request: Request, given: str) -> bool:
    """The form's token matches the cookie and the request comes from our own pages."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not given or len(given) > 64:
        return False
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if urlsplit(origin).netloc != host:
            return False
    return hmac.compare_digest(cookie.encode(), given.encode())


@dataclass
class Limits:
    """Every bucket of one portal app. Counts are per hour (the burst is the count)."""

    stk_per_phone: int = 5
    stk_per_mac: int = 5
    stk_per_ip: int = 60
    voucher_per_ip: int = 30
    voucher_per_mac: int = 10
    voucher_failures_per_minute: int = 60
    page_rate: float = 20.0
    page_burst: int = 200

    def __post_init__(self) -> None:
        hour = 3600.0
        self.phone = Buckets(self.stk_per_phone / hour, self.stk_per_phone)
        self.mac = Buckets(self.stk_per_mac / hour, self.stk_per_mac)
        self.ip = Buckets(self.stk_per_ip / hour, self.stk_per_ip)
        self.v_ip = Buckets(self.voucher_per_ip / hour, self.voucher_per_ip)
        self.v_mac = Buckets(self.voucher_per_mac / hour, self.voucher_per_mac)
        self.v_fail = Buckets(self.voucher_failures_per_minute / 60.0, self.voucher_failures_per_minute)
        self.pages = Buckets(self.page_rate, self.page_burst)
        self._guessing_until = 0.0

    def stk(self, phone: str, mac: str, ip: str) -> bool:
        """May this phone / device / address be sent one more prompt? (Takes from each.)"""
        now = time.monotonic()
        ok = self.ip.take(ip, now)
        ok = self.mac.take(mac, now) and ok if mac else ok
        return self.phone.take(phone, now) and ok

    def stk_not_sent(self, phone: str, mac: str, ip: str) -> None:
        """The prompt was refused before it was sent (a bad number, no such package): it
        does not count against anyone."""
        self.ip.give_back(ip)
        if mac:
            self.mac.give_back(mac)
        self.phone.give_back(phone)

    def voucher(self, mac: str, ip: str) -> bool:
        """May this device / address try one more code?"""
        now = time.monotonic()
        if now < self._guessing_until:
            return False
        ok = self.v_ip.take(ip, now)
        return self.v_mac.take(mac, now) and ok if mac else ok

    def voucher_failed(self) -> None:
        """A code was wrong. Too many wrong codes from anywhere in a minute (someone
        guessing from many devices) stops every attempt for a minute."""
        now = time.monotonic()
        if not self.v_fail.take("*", now):
            self._guessing_until = now + 60.0

    def page(self, ip: str) -> bool:
        return self.pages.take(ip, time.monotonic())
