"""The customer's pages: the hotspot portal (buy a package with M-Pesa, redeem a voucher)
and the pay page for suspended customers.

Flow on a MikroTik hotspot: the router's ``login.html`` (``jasiyo portal hotspot-files``)
sends the browser to ``/hotspot`` with the router's variables; the customer picks a package
and a phone number (``POST /buy``); the agent creates the pending purchase and sends the
STK prompt; ``/wait`` shows progress (a small script polls ``/wait/state``; without script
the page refreshes itself); once paid, the page posts the router's login form to
``link-login-only`` with the CHAP response, so the customer never types a password.

Nothing secret travels in a URL: the purchase in progress is named by an HttpOnly cookie,
the login form is posted, and logs carry no phone number, code or password.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from jasiyo.errors import JasiyoError, NotFound, ValidationError
from jasiyo.log import event, get_logger
from jasiyo.money import format_money
from jasiyo.portal import i18n, security
from jasiyo.portal.hotspot import MAX_VALUE, HotspotLogin, parse_login
from jasiyo.portal.models import PAID, PENDING, Login, PortalBackend, RequestState

log = get_logger(__name__)
HERE = Path(__file__).parent
#: Hotspot variables carried from the router's redirect through the portal's forms.
HOTSPOT_KEYS = ("mac", "ip", "link-login-only", "link-orig", "chap-id", "chap-challenge")
#: Largest form body the portal reads (the biggest honest one is well under 4 KB).
MAX_FORM = 8 * 1024
#: A purchase in progress is remembered (in memory) this long.
KEEP = 3600.0
BUY_COOKIE, PAY_COOKIE, LANG_COOKIE = "jsy_buy", "jsy_pay", "lang"
_FAILED_REASONS = {"insufficient_funds", "wrong_pin", "unreachable"}

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["money"] = format_money
_STATIC = {name: (HERE / "static" / name).read_bytes() for name in ("portal.css", "portal.js")}
_STATIC_TYPES = {"portal.css": "text/css; charset=utf-8", "portal.js": "text/javascript; charset=utf-8"}


class Refused(Exception):
    """Show the customer a clear page (status, message key, detail) and store nothing."""

    def __init__(self, status: int, key: str, detail: str = "") -> None:
        super().__init__(detail or key)
        self.status, self.key, self.detail = status, key, detail


@dataclass
class Purchase:
    request_id: str
    params: dict[str, str]  # the hotspot variables, checked
    login: HotspotLogin
    created: float


class Pending:
    """Purchases and pay-page requests in progress, by the random id in the visitor's
    cookie. In memory: a purchase outlives an agent restart (the money path activates it),
    only this page's automatic login does not."""

    def __init__(self, limit: int = 20000) -> None:
        self._items: dict[str, Any] = {}
        self.limit = limit

    def put(self, value: Any) -> str:
        now = time.monotonic()
        if len(self._items) >= self.limit:
            self._items = {k: v for k, v in self._items.items() if now - v[0] < KEEP}
            while len(self._items) >= self.limit:
                self._items.pop(next(iter(self._items)))
        key = secrets.token_urlsafe(18)
        self._items[key] = (now, value)
        return key

    def get(self, key: str | None) -> Any:
        if not key or len(key) > 64:
            return None
        item = self._items.get(key)
        if item is None or time.monotonic() - item[0] > KEEP:
            return None
        return item[1]


def client_ip(request: Request) -> str:
    """The peer address (proxies' headers are never believed: the pay page's identity)."""
    return request.client.host if request.client else ""


class Pages:
    def __init__(
        self,
        backend: PortalBackend,
        limits: security.Limits | None = None,
        login_hosts: tuple[str, ...] = (),
        brand: tuple[str, str] = ("", ""),
    ) -> None:
        """``brand``: the ISP's name and the number its customers call for help
        (``[agent] business_name``, ``support_phone``), shown on every page when set."""
        self.backend = backend
        self.brand = brand
        self._tel = "".join(ch for ch in brand[1] if ch.isdigit() or ch == "+")  # the tel: link
        self.limits = limits or security.Limits()
        self.login_hosts = login_hosts
        self.buys = Pending()
        self.pays = Pending()

    # ------------------------------------------------------------------ rendering

    def render(
        self,
        request: Request,
        template: str,
        status: int = 200,
        *,
        form_action: str = "",
        set_cookies: dict[str, str] | None = None,
        **ctx: Any,
    ) -> Response:
        lang = self._lang(request)
        token = security.csrf_token(request)
        other = "sw" if lang == "en" else "en"
        query = {k: v for k, v in request.query_params.items() if k != "lang"}
        toggle = request.url.path + "?" + urlencode({**query, "lang": other})
        body = _env.get_template(template).render(
            t=i18n.words(lang),
            lang=lang,
            other=other,
            toggle=toggle,
            period=i18n.period,
            csrf=token,
            here=request.url.path,
            business=self.brand[0],
            support_phone=self.brand[1],
            support_tel=self._tel,
            **ctx,
        )
        resp = Response(
            body,
            status,
            media_type="text/html; charset=utf-8",
            headers={**security.headers(form_action), "content-language": lang},
        )
        security.set_csrf(resp, token)
        if request.query_params.get("lang") in i18n.LANGS:
            resp.set_cookie(
                LANG_COOKIE, request.query_params["lang"], max_age=365 * 86400, samesite="lax", path="/"
            )
        for name, value in (set_cookies or {}).items():
            resp.set_cookie(name, value, max_age=int(KEEP), httponly=True, samesite="lax", path="/")
        return resp

    def _lang(self, request: Request) -> str:
        asked = request.query_params.get("lang")
        return i18n.choose(
            asked if asked in i18n.LANGS else request.cookies.get(LANG_COOKIE),
            request.headers.get("accept-language"),
        )

    def refused(self, request: Request, exc: Refused) -> Response:
        event(
            log,
            "portal.refused",
            remote=client_ip(request),
            path=request.url.path,
            reason=exc.key,
            detail=exc.detail[:200],
        )
        return self.render(request, "error.html", exc.status, message_key=exc.key, detail=exc.detail)

    async def guarded(self, request: Request, handler: Any) -> Response:
        if not self.limits.page(client_ip(request)):
            return self.refused(request, Refused(429, "too_many", "too many requests"))
        try:
            return await handler(request)
        except Refused as exc:
            return self.refused(request, exc)
        except Exception:  # a bug of ours: a clear page for the customer, the trace in the log
            log.exception("portal: %s %s failed", request.method, request.url.path)
            return self.render(request, "error.html", 500, message_key="bad_request", detail="")

    async def form(self, request: Request) -> FormData:
        """The POSTed form, bounded and CSRF-checked (Refused otherwise)."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        if ctype != "application/x-www-form-urlencoded":
            raise Refused(400, "bad_request", "not a form")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_FORM:
            raise Refused(413, "bad_request", "form too large")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                raise Refused(413, "bad_request", "form too large")
        try:
            pairs = parse_qsl(
                body.decode("utf-8"), keep_blank_values=True, max_num_fields=30, strict_parsing=False
            )
        except (UnicodeDecodeError, ValueError):
            raise Refused(400, "bad_request", "unreadable form") from None
        form = FormData([*pairs])  # a new list, typed as FormData takes it (lists are invariant)
        if not security.csrf_ok(request, str(form.get("csrf", ""))):
            raise Refused(403, "expired_form", "CSRF token missing or wrong")
        return form

    def _hotspot(self, source: Any) -> tuple[dict[str, str], HotspotLogin]:
        params = {k: str(source.get(k, "")) for k in HOTSPOT_KEYS}
        try:
            return params, parse_login(params, self.login_hosts)
        except ValidationError as exc:
            raise Refused(400, "not_from_hotspot", str(exc)) from None

    def _login_page(self, request: Request, hs: HotspotLogin, login: Login) -> Response:
        fields = {
            "username": login.username,
            "password": hs.login_password(login.password),
            "dst": hs.dst,
            "popup": "false",
        }
        return self.render(
            request,
            "login.html",
            form_action=security.origin_of(hs.link_login_only),
            action=hs.link_login_only,
            fields=fields,
        )

    # ------------------------------------------------------------------ hotspot

    async def hotspot(self, request: Request) -> Response:
        if not request.query_params.get("mac"):
            # Not sent by a hotspot: a suspended customer's redirected page goes to /pay.
            if await run_in_threadpool(self.backend.due_for, client_ip(request)) is not None:
                return RedirectResponse("/pay", 303, headers=security.headers())
            return self.render(request, "error.html", 400, message_key="not_from_hotspot", detail="")
        params, hs = self._hotspot(request.query_params)
        if not request.query_params.get("error"):
            # A device that already paid for a package here (the page was closed, or the
            # agent restarted mid-purchase) is logged in again. Not after the router
            # refused a login (it sends `error`): that would loop.
            login = await run_in_threadpool(self.backend.device_login, params["mac"])
            if login is not None:
                return self._login_page(request, hs, login)
        offers = await run_in_threadpool(self.backend.offers)
        return self.render(
            request,
            "hotspot.html",
            offers=offers,
            hotspot=params,
            router_error=_router_error(request.query_params.get("error", "")),
        )

    async def buy(self, request: Request) -> Response:
        form = await self.form(request)
        params, hs = self._hotspot(form)
        plan, phone = str(form.get("plan", "")), str(form.get("phone", ""))
        sms_consent = form.get("sms") == "yes"  # unticked unless the customer ticks it
        if not plan or len(plan) > 64 or not phone or len(phone) > 32:
            raise Refused(400, "bad_request", "choose a package and give a phone number")
        ip = client_ip(request)
        digits = _phone_key(phone)
        if not self.limits.stk(digits, hs.mac, ip):
            raise Refused(429, "too_many", "STK prompt rate limit")
        try:
            request_id = await run_in_threadpool(self.backend.buy, plan, phone, hs.mac, ip, sms_consent)
        except (ValidationError, NotFound) as exc:
            self.limits.stk_not_sent(digits, hs.mac, ip)
            raise Refused(400, "bad_request", str(exc)) from None
        except JasiyoError as exc:
            raise Refused(503, "failed", str(exc)) from None
        key = self.buys.put(Purchase(request_id, params, hs, time.monotonic()))
        event(log, "portal.buy", remote=ip, plan=plan, request=request_id)
        resp = RedirectResponse("/wait", 303, headers=security.headers())
        resp.set_cookie(BUY_COOKIE, key, max_age=int(KEEP), httponly=True, samesite="lax", path="/")
        return resp

    async def _buy_state(self, request: Request) -> tuple[Purchase, RequestState]:
        purchase = self.buys.get(request.cookies.get(BUY_COOKIE))
        if purchase is None:
            raise Refused(404, "expired_form", "no purchase in progress")
        try:
            state = await run_in_threadpool(
                self.backend.request_state, purchase.request_id, purchase.login.mac
            )
        except NotFound as exc:
            raise Refused(404, "expired_form", str(exc)) from None
        return purchase, state

    async def wait(self, request: Request) -> Response:
        purchase, state = await self._buy_state(request)
        if state.status == PAID and state.login is not None:
            return self._login_page(request, purchase.login, state.login)
        if state.status in (PENDING, PAID):
            return self.render(request, "wait.html", state_url="/wait/state")
        again = "/hotspot?" + urlencode(purchase.params)
        return self._outcome(request, state.status, again)

    async def wait_state(self, request: Request) -> Response:
        purchase = self.buys.get(request.cookies.get(BUY_COOKIE))
        status = "gone"
        if purchase is not None:
            try:
                state = await run_in_threadpool(
                    self.backend.request_state, purchase.request_id, purchase.login.mac
                )
                status = state.status
            except NotFound:
                pass
        return _json_status(status)

    def _outcome(self, request: Request, status: str, again: str) -> Response:
        if status == "cancelled":
            key, text = "cancelled", "cancelled_text"
        elif status in ("timeout", "expired"):
            key, text = "timeout", "timeout_text"
        else:
            key, text = "failed", "failed_text"
        reason = f"reason_{status}" if status in _FAILED_REASONS else "reason_failed"
        return self.render(
            request, "outcome.html", 200, title_key=key, text_key=text, reason_key=reason, again=again
        )

    async def voucher(self, request: Request) -> Response:
        form = await self.form(request)
        _, hs = self._hotspot(form)
        code = str(form.get("code", "")).strip()
        ip = client_ip(request)
        if not self.limits.voucher(hs.mac, ip):
            raise Refused(429, "too_many", "voucher attempts rate limit")
        if not code or len(code) > 40:
            self.limits.voucher_failed()
            raise Refused(400, "bad_request", "a voucher code please")
        try:
            login = await run_in_threadpool(self.backend.redeem, code, hs.mac, ip)
        except (ValidationError, NotFound) as exc:
            self.limits.voucher_failed()
            raise Refused(400, "bad_request", str(exc)) from None
        event(log, "portal.voucher", remote=ip)
        return self._login_page(request, hs, login)

    # ------------------------------------------------------------------ pay page

    async def pay(self, request: Request) -> Response:
        due = await run_in_threadpool(self.backend.due_for, client_ip(request))
        if due is None:
            return self.render(request, "pay.html", 404, due=None)
        return self.render(request, "pay.html", due=due)

    async def pay_mpesa(self, request: Request) -> Response:
        form = await self.form(request)
        phone = str(form.get("phone", ""))
        ip = client_ip(request)
        if len(phone) > 32:
            raise Refused(400, "bad_request", "phone number too long")
        digits = _phone_key(phone) if phone else ""
        if not self.limits.stk(digits or ip, "", ip):
            raise Refused(429, "too_many", "STK prompt rate limit")
        try:
            request_id = await run_in_threadpool(self.backend.pay_stk, ip, phone)
        except (ValidationError, NotFound) as exc:
            self.limits.stk_not_sent(digits or ip, "", ip)
            raise Refused(400, "bad_request", str(exc)) from None
        except JasiyoError as exc:
            raise Refused(503, "failed", str(exc)) from None
        resp = RedirectResponse("/pay/wait", 303, headers=security.headers())
        resp.set_cookie(
            PAY_COOKIE, self.pays.put(request_id), max_age=int(KEEP), httponly=True, samesite="lax", path="/"
        )
        return resp

    async def pay_card(self, request: Request) -> Response:
        form = await self.form(request)
        email = str(form.get("email", ""))
        ip = client_ip(request)
        if not self.limits.stk(email[:64] or ip, "", ip):
            raise Refused(429, "too_many", "payment link rate limit")
        try:
            url = await run_in_threadpool(self.backend.pay_link, ip, email)
        except (ValidationError, NotFound) as exc:
            self.limits.stk_not_sent(email[:64] or ip, "", ip)
            raise Refused(400, "bad_request", str(exc)) from None
        except JasiyoError as exc:
            raise Refused(503, "failed", str(exc)) from None
        if urlsplit(url).scheme not in ("https", "http") or len(url) > MAX_VALUE:
            raise Refused(502, "failed", "the provider's checkout link is not a web address")
        return RedirectResponse(url, 303, headers=security.headers())

    async def _pay_state(self, request: Request) -> RequestState | None:
        request_id = self.pays.get(request.cookies.get(PAY_COOKIE))
        if request_id is None:
            return None
        try:
            return await run_in_threadpool(self.backend.pay_state, client_ip(request), request_id)
        except NotFound:
            return None

    async def pay_wait(self, request: Request) -> Response:
        state = await self._pay_state(request)
        if state is None:
            raise Refused(404, "expired_form", "no payment in progress from this address")
        if state.status == PAID:
            return self.render(request, "restored.html")
        if state.status == PENDING:
            return self.render(request, "wait.html", state_url="/pay/wait/state")
        return self._outcome(request, state.status, "/pay")

    async def pay_wait_state(self, request: Request) -> Response:
        state = await self._pay_state(request)
        return _json_status(state.status if state else "gone")

    # ------------------------------------------------------------------ routes

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            return Response("not found", 404, headers=security.headers())
        return Response(
            _STATIC[name],
            media_type=_STATIC_TYPES[name],
            headers={**security.headers(), "cache-control": "public, max-age=86400"},
        )

    def routes(self) -> list[Route]:
        def g(handler: Any) -> Any:
            async def endpoint(request: Request) -> Response:
                return await self.guarded(request, handler)

            return endpoint

        return [
            Route("/", g(self.hotspot), methods=["GET"]),
            Route("/hotspot", g(self.hotspot), methods=["GET"]),
            Route("/buy", g(self.buy), methods=["POST"]),
            Route("/wait", g(self.wait), methods=["GET"]),
            Route("/wait/state", g(self.wait_state), methods=["GET"]),
            Route("/voucher", g(self.voucher), methods=["POST"]),
            Route("/pay", g(self.pay), methods=["GET"]),
            Route("/pay/mpesa", g(self.pay_mpesa), methods=["POST"]),
            Route("/pay/card", g(self.pay_card), methods=["POST"]),
            Route("/pay/wait", g(self.pay_wait), methods=["GET"]),
            Route("/pay/wait/state", g(self.pay_wait_state), methods=["GET"]),
            Route("/static/{name}", self.static, methods=["GET"]),
        ]


def _router_error(text: str) -> str:
    """The router's ``$(error)`` (a failed login's reason, often our own Reply-Message),
    shown as plain short text: letters, digits and simple punctuation only, so a crafted
    link cannot put a message of its own (a phone number to "pay") on the page."""
    if len(text) > 120 or any(not (c.isalpha() or c in " .,:'-") for c in text):
        return "login failed" if text else ""
    return text


def _phone_key(phone: str) -> str:
    """What the per-phone limit counts: the number's last nine digits (``0712 345 678``
    and ``+254712345678`` are one phone). Refused before any limit is spent if it cannot
    be a phone number."""
    digits = "".join(c for c in phone if c in "0123456789")
    if len(digits) < 9 or any(not (c.isdigit() or c in " +-().") for c in phone):
        raise Refused(400, "bad_request", "that is not a phone number")
    return digits[-9:]


def _json_status(status: str) -> Response:
    final = status not in (PENDING,)
    return Response(
        json.dumps({"status": status, "final": final}),
        media_type="application/json",
        headers=security.headers(),
    )
