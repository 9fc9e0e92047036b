"""MikroTik hotspot wire facts: the variables ``login.html`` hands the portal, HTTP-CHAP, and
the files to upload to the router.

RouterOS's ``login.html`` substitutes ``$(chap-id)`` and ``$(chap-challenge)`` octal-escaped
(``\\371``, ``\\357\\015\\330...``): each byte is a backslash and three octal digits (RouterOS
escapes every byte that way, printable or not; anything else is refused). The password the hotspot
expects in its login form is the hex MD5 of chap-id + password + chap-challenge (bytes, in
that order), which is what the router's own ``md5.js`` computes in the browser.

Pure functions, no web framework: the portal pages and the hotspot emulator both use them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from jasiyo.errors import ValidationError

#: Longest value accepted for any hotspot variable (URLs included): RouterOS's own are short.
MAX_VALUE = 512
#: A CHAP challenge is 16 bytes on RouterOS; accept up to 64, refuse anything else.
MAX_CHALLENGE = 64
_MAC = re.compile(r"(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}")
_OCTAL = re.compile(r"\\([0-7]{3})")
_OCTAL_ALL = re.compile(r"(?:\\[0-7]{3})*")


def decode_octal(text: str, what: str = "value", max_bytes: int = MAX_CHALLENGE) -> bytes:
    """Bytes from RouterOS's octal-escaped form (every byte ``\\ooo``); ValidationError for
    anything else."""
    if len(text) > max_bytes * 4:
        raise ValidationError(f"{what} is too long")
    if len(text) % 4 or not _OCTAL_ALL.fullmatch(text):
        raise ValidationError(f"{what} is not in RouterOS's octal-escaped form")
    out = bytes(int(m, 8) for m in _OCTAL.findall(text) if int(m, 8) <= 255)
    if len(out) * 4 != len(text):
        raise ValidationError(f"{what} has an escape beyond a byte")
    return out


def encode_octal(data: bytes) -> str:
    """RouterOS's form of ``data`` (every byte escaped), as ``login.html`` writes it."""
    return "".join(f"\\{b:03o}" for b in data)


def chap_response(chap_id: bytes, password: str, challenge: bytes) -> str:
    """The hex MD5 the hotspot login form takes as ``password`` for HTTP-CHAP."""
    return hashlib.md5(chap_id + password.encode() + challenge).hexdigest()


def normalize_mac(text: str) -> str:
    """``AA:BB:CC:DD:EE:FF`` (what RouterOS sends as Calling-Station-Id)."""
    if not _MAC.fullmatch(text or ""):
        raise ValidationError("the device address (mac) is not a MAC address")
    return text.replace("-", ":").upper()


def check_login_url(url: str, allowed_hosts: tuple[str, ...] = ()) -> str:
    """``link-login-only`` as given, if the portal may post a login form to it.

    The portal posts the customer's username and CHAP response there, so a link to just any
    site is refused: it must be http(s) to a private, link-local or loopback address (the
    hotspot's own), or to a host named in ``[portal] login_hosts``.
    """
    if len(url) > MAX_VALUE:
        raise ValidationError("the router's login link is too long")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        raise ValidationError("the router's login link is not an http(s) URL")
    host = parts.hostname.lower()
    if host in {h.lower() for h in allowed_hosts}:
        return url
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValidationError(
            f"the router's login link names {host!r}, which is not one of "
            "this ISP's hotspots ([portal] login_hosts)"
        ) from None
    if not (ip.is_private or ip.is_loopback or ip.is_link_local):
        raise ValidationError("the router's login link is not on the local network")
    return url


def check_dst(url: str) -> str:
    """``link-orig`` (where the customer was going): an http(s) URL or nothing."""
    if not url:
        return ""
    if len(url) > MAX_VALUE:
        raise ValidationError("the original link is too long")
    if urlsplit(url).scheme not in ("http", "https") or any(c in url for c in "\r\n\t\"'<> "):
        raise ValidationError("the original link is not an http(s) URL")
    return url


@dataclass(frozen=True, slots=True)
class HotspotLogin:
    """What the router's ``login.html`` sent, checked: enough to log the device in later."""

    mac: str
    ip: str
    link_login_only: str
    dst: str
    chap_id: bytes
    chap_challenge: bytes

    @property
    def chap(self) -> bool:
        return bool(self.chap_challenge)

    def login_password(self, password: str) -> str:
        """What to post as ``password``: the CHAP response, or the password itself (PAP)."""
        if self.chap:
            return chap_response(self.chap_id, password, self.chap_challenge)
        return password


def parse_login(params: dict[str, str], allowed_hosts: tuple[str, ...] = ()) -> HotspotLogin:
    """The hotspot variables from the redirect (``mac``, ``ip``, ``link-login-only``,
    ``link-orig``, ``chap-id``, ``chap-challenge``); ValidationError naming the bad one."""
    for key, value in params.items():
        if len(value) > MAX_VALUE:
            raise ValidationError(f"{key[:30]} is too long")
    mac = normalize_mac(params.get("mac", ""))
    ip_text = params.get("ip", "")
    try:
        ip = str(ipaddress.ip_address(ip_text)) if ip_text else ""
    except ValueError:
        raise ValidationError("the device's IP address is not an IP address") from None
    link = check_login_url(params.get("link-login-only", ""), allowed_hosts)
    dst = check_dst(params.get("link-orig", ""))
    chap_id = decode_octal(params.get("chap-id", ""), "chap-id", max_bytes=1)
    challenge = decode_octal(params.get("chap-challenge", ""), "chap-challenge")
    if bool(chap_id) != bool(challenge):
        raise ValidationError("chap-id and chap-challenge come together or not at all")
    return HotspotLogin(mac, ip, link, dst, chap_id, challenge)


# ---------------------------------------------------------------------- files for the router

_LOGIN_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Internet</title></head>
<body onload="document.redirect.submit()">
<form name="redirect" action="{portal}/hotspot" method="get">
<input type="hidden" name="mac" value="$(mac)">
<input type="hidden" name="ip" value="$(ip)">
<input type="hidden" name="link-login-only" value="$(link-login-only)">
<input type="hidden" name="link-orig" value="$(link-orig)">
<input type="hidden" name="chap-id" value="$(chap-id)">
<input type="hidden" name="chap-challenge" value="$(chap-challenge)">
<input type="hidden" name="error" value="$(error)">
<input type="submit" value="Continue / Endelea">
</form>
</body></html>
"""

_ALOGIN_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Connected</title>
$(if link-redirect)<meta http-equiv="refresh" content="2; url=$(link-redirect)">$(endif)
</head><body><p>You are connected. / Umeunganishwa.</p>
$(if link-redirect)<p><a href="$(link-redirect)">Continue / Endelea</a></p>$(endif)
</body></html>
"""


def hotspot_files(portal_url: str) -> dict[str, str]:
    """The files to upload to the router's ``hotspot/`` folder, by name.

    ``login.html`` sends the customer to the portal with the router's variables: a form
    the page submits itself (the button is there for a browser without JavaScript), so the
    browser encodes the octal-escaped CHAP values; ``alogin.html`` is what the router
    shows after a successful login.
    """
    base = portal_url.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"portal URL {portal_url!r} must be an http(s):// URL")
    if any(c in base for c in "\"'<> $"):
        raise ValidationError(f"portal URL {portal_url!r} has characters a URL cannot have")
    return {"login.html": _LOGIN_HTML.format(portal=base), "alogin.html": _ALOGIN_HTML}


def walled_garden_hosts(portal_url: str, provider_urls: tuple[str, ...] = ()) -> list[str]:
    """Hosts a device must reach before it is logged in: the portal and the payment
    providers' pages (a Paystack checkout). M-Pesa's prompt arrives on the phone itself,
    over the mobile network, so Daraja needs no entry."""
    out: list[str] = []
    for url in (portal_url, *provider_urls):
        host = urlsplit(url).hostname
        if host and host not in out:
            out.append(host)
    return out
