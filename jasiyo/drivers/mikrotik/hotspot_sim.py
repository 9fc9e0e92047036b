"""A MikroTik hotspot emulator: the router's side of a captive-portal login, over HTTP and
real RADIUS, for tests, the demo and engineers.

    hs = HotspotSim(radius_port=1812, secret="s3cret", files=hotspot_files(portal_url),
                    mac="AA:BB:CC:00:00:01", ip="10.5.50.20").start()
    # a browser opens hs.url + "/login": the router's login.html sends it to the portal ...
    hs.active   # {"AA:BB:CC:00:00:01": ActiveHost(user=...)} once logged in
    hs.stop()

What it does, as RouterOS's hotspot does:

* ``GET /login`` serves the uploaded ``login.html`` with ``$(var)`` substituted: ``mac``,
  ``ip``, ``link-login-only``, ``link-orig``, ``error``, and a fresh ``chap-id`` and
  ``chap-challenge`` per visit, octal-escaped (``\\371...``) as RouterOS writes them.
* ``POST /login`` (``username``, ``password``, ``dst``, ``popup``): ``password`` is the hex
  MD5 of chap-id + password + chap-challenge (HTTP-CHAP) for the device's last challenge.
  The emulator sends a real Access-Request (pyrad) to the RADIUS server: User-Name,
  CHAP-Password (ident + MD5), CHAP-Challenge, Calling-Station-Id (the MAC),
  Framed-IP-Address, Mikrotik-Host-IP, NAS-Port-Type Wireless-802.11, Called-Station-Id
  (the hotspot server name), NAS-Identifier, Message-Authenticator. An Access-Accept makes
  the device an active host (and an Accounting Start is sent) and serves ``alogin.html``
  (redirecting to ``dst``); a reject serves ``login.html`` again with ``error`` set to the
  Reply-Message or "invalid username or password".

The device (MAC and IP) is the one given (the browser of a test is on 127.0.0.1, not on a
hotspot LAN). ``jasiyo dev hotspot-sim`` runs one from the command line.
"""

from __future__ import annotations

import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote

import uvicorn
from pyrad.client import Client, Timeout
from pyrad.packet import AccessAccept, AccountingRequest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from jasiyo.errors import ConnectError
from jasiyo.portal.hotspot import encode_octal
from jasiyo.radius.dictionaries import load_dictionary
from jasiyo.serving import ServerThread

_VAR = re.compile(r"\$\(([a-z-]+)\)")
_DEFAULT_LOGIN = (
    '<html><body><form method="post" action="$(link-login-only)">'
    '<p>$(error)</p><input name="username"><input name="password">'
    '<input type="hidden" name="dst" value="$(link-orig)">'
    "<button>OK</button></form></body></html>"
)
_DEFAULT_ALOGIN = "<html><body><p>You are logged in</p></body></html>"


@dataclass(slots=True)
class ActiveHost:
    user: str
    mac: str
    ip: str
    session_id: str
    reply: dict[str, list[object]] = field(default_factory=dict)
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    user: str
    accepted: bool
    reason: str
    at: float


def _escape_html(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


class HotspotSim:
    """One hotspot server (``server_name``) in front of one device."""

    def __init__(
        self,
        *,
        radius_port: int,
        secret: str,
        files: dict[str, str] | None = None,
        radius_host: str = "127.0.0.1",
        acct_port: int | None = None,
        mac: str = "AA:BB:CC:00:00:01",
        ip: str = "10.5.50.20",
        host: str = "127.0.0.1",
        port: int = 0,
        server_name: str = "hotspot1",
        identity: str = "jasiyo-hotspot",
        orig: str = "",
    ) -> None:
        self.host, self.port = host, port
        self.radius_host, self.radius_port = radius_host, radius_port
        self.acct_port = acct_port
        self.secret = secret.encode()
        self.files = dict(files or {})
        self.mac, self.ip = mac.upper(), ip
        self.server_name, self.identity = server_name, identity
        self._orig = orig  # where the device was going; default: this emulator's /status
        self.active: dict[str, ActiveHost] = {}
        self.attempts: list[LoginAttempt] = []
        self._challenge: tuple[int, bytes] | None = None
        self._counter = 0
        self._lock = threading.Lock()
        self._server: ServerThread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def orig(self) -> str:
        return self._orig or f"{self.url}/status"

    # -- the router's pages ----------------------------------------------------------------

    def _render(self, name: str, error: str = "", dst: str = "") -> str:
        with self._lock:
            chap_id = secrets.randbelow(256)
            challenge = secrets.token_bytes(16)
            self._challenge = (chap_id, challenge)
        link_login_only = f"{self.url}/login"
        values = {
            "mac": self.mac,
            "mac-esc": quote(self.mac, safe=""),
            "ip": self.ip,
            "link-login-only": link_login_only,
            "link-login-only-esc": quote(link_login_only, safe=""),
            "link-login": f"{link_login_only}?dst={quote(self.orig, safe='')}",
            "link-orig": self.orig,
            "link-orig-esc": quote(self.orig, safe=""),
            "link-redirect": dst or self.orig,
            "error": error,
            "error-esc": quote(error, safe=""),
            "chap-id": encode_octal(bytes([chap_id])),
            "chap-challenge": encode_octal(challenge),
            "identity": self.identity,
            "server-name": self.server_name,
            "username": "",
        }
        template = self.files.get(name) or (_DEFAULT_LOGIN if name == "login.html" else _DEFAULT_ALOGIN)
        # RouterOS substitutes variables into the page as they are; values it makes itself
        # are safe, the error text we escape.
        return _VAR.sub(
            lambda m: (
                _escape_html(values.get(m.group(1), ""))
                if m.group(1) == "error"
                else values.get(m.group(1), "")
            ),
            template,
        )

    async def login_page(self, request: Request) -> Response:
        return HTMLResponse(self._render("login.html"))

    async def login_post(self, request: Request) -> Response:
        body = await request.body()
        form = dict(parse_qsl(body[:8192].decode("utf-8", "replace"), keep_blank_values=True))
        user = str(form.get("username", ""))[:253]
        response = str(form.get("password", ""))
        dst = str(form.get("dst", ""))
        with self._lock:
            challenge = self._challenge
            self._challenge = None  # one login per challenge, as the router
        if challenge is None or not re.fullmatch(r"[0-9a-f]{32}", response):
            self.attempts.append(LoginAttempt(user, False, "no challenge or not CHAP", time.time()))
            return HTMLResponse(self._render("login.html", "invalid username or password"))
        accepted, reason, reply = await run_in_threadpool(
            self._radius_login, user, challenge[0], bytes.fromhex(response), challenge[1]
        )
        self.attempts.append(LoginAttempt(user, accepted, reason, time.time()))
        if not accepted:
            return HTMLResponse(self._render("login.html", reason or "invalid username or password"))
        self._counter += 1
        host = ActiveHost(user, self.mac, self.ip, f"81a0{self._counter:04x}", reply, time.time())
        with self._lock:
            self.active[self.mac] = host
        await run_in_threadpool(self._accounting_start, host)
        return HTMLResponse(self._render("alogin.html", dst=dst))

    async def status(self, request: Request) -> Response:
        host = self.active.get(self.mac)
        text = f"logged in as {host.user}" if host else "not logged in"
        return HTMLResponse(f"<html><body><p id='status'>{_escape_html(text)}</p></body></html>")

    # -- RADIUS, as the router speaks it ---------------------------------------------------

    def _client(self) -> Client:
        client = Client(
            server=self.radius_host,
            authport=self.radius_port,
            acctport=self.acct_port or self.radius_port + 1,
            secret=self.secret,
            dict=load_dictionary(),
        )
        client.timeout, client.retries = 1.1, 3  # RouterOS: 1100 ms
        return client

    def _radius_login(
        self, user: str, chap_id: int, digest: bytes, challenge: bytes
    ) -> tuple[bool, str, dict[str, list[object]]]:
        client = self._client()
        pkt = client.CreateAuthPacket(User_Name=user)
        pkt["CHAP-Password"] = bytes([chap_id]) + digest
        pkt["CHAP-Challenge"] = challenge
        pkt["Calling-Station-Id"] = self.mac
        pkt["Framed-IP-Address"] = self.ip
        pkt["Mikrotik-Host-IP"] = self.ip
        pkt["NAS-Port-Type"] = "Wireless-802.11"
        pkt["Called-Station-Id"] = self.server_name
        pkt["NAS-Identifier"] = self.identity
        pkt["NAS-IP-Address"] = "127.0.0.1"
        pkt["NAS-Port"] = 1
        try:
            reply = client.SendPacket(pkt)
        except (Timeout, OSError) as exc:
            raise ConnectError(
                f"hotspot: RADIUS server at {self.radius_host}:{self.radius_port} did not answer ({exc})"
            ) from None
        finally:
            client._CloseSocket()
        attrs = {str(k): list(reply[k]) for k in reply.keys()}
        reason = " ".join(str(v) for v in attrs.get("Reply-Message", []))
        return reply.code == AccessAccept, reason, attrs

    def _accounting_start(self, host: ActiveHost) -> None:
        client = self._client()
        pkt = client.CreateAcctPacket(code=AccountingRequest, User_Name=host.user)
        pkt["Acct-Status-Type"] = "Start"
        pkt["Acct-Session-Id"] = host.session_id
        pkt["Calling-Station-Id"] = host.mac
        pkt["Framed-IP-Address"] = host.ip
        pkt["NAS-IP-Address"] = "127.0.0.1"
        pkt["NAS-Identifier"] = self.identity
        pkt["Called-Station-Id"] = self.server_name
        try:
            client.SendPacket(pkt)
        except (Timeout, OSError):
            pass  # a router keeps the host logged in when accounting is lost
        finally:
            client._CloseSocket()

    # -- lifecycle -------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/login", self.login_page, methods=["GET"]),
                Route("/login", self.login_post, methods=["POST"]),
                Route("/status", self.status, methods=["GET"]),
            ]
        )

    def start(self) -> HotspotSim:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app(),
            ws="none",
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = ServerThread(config, sock, "hotspot-sim")
        if not self._server.start():
            raise ConnectError("the hotspot emulator did not start")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._server = None

    def __enter__(self) -> HotspotSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
