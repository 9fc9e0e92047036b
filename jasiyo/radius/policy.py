"""Who gets in, and with what: the pure half of RADIUS authentication.

The wire layer (:mod:`jasiyo.radius.server`) extracts an :class:`AuthRequest` from a packet
(PAP already decrypted with the NAS secret) and asks :func:`authorize`, which knows nothing
of sockets or secrets. Each ``_check_*`` step returns a rejection reason or nothing; the
first reason wins. Reasons are for our logs; the NAS only ever sees a generic
Reply-Message, so a probe cannot tell an unknown user from a wrong password.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from jasiyo.network import Access, DesiredState, normalize_mac
from jasiyo.radius import mschap, vendors
from jasiyo.radius.backend import AuthSubject, NasClient, Usage

#: The Reply-Message of every Access-Reject.
REJECT_MESSAGE = "Authentication failed"

#: Attribute name and value, in the dictionary's terms (e.g. ``("Session-Timeout", 3600)``).
ReplyAttr = tuple[str, str | int | bytes]


class AuthMethod(StrEnum):
    PAP = "pap"
    CHAP = "chap"
    MSCHAPV2 = "mschapv2"
    NONE = "none"  # no credentials we understand (e.g. MS-CHAPv1, EAP)


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """The parts of an Access-Request that decide the answer."""

    username: str
    method: AuthMethod
    pap_password: str = ""  # PAP: decrypted User-Password
    chap_ident: int = 0  # CHAP: first byte of CHAP-Password
    chap_response: bytes = b""  # CHAP: the 16-byte MD5 after the ident
    challenge: bytes = b""  # CHAP-Challenge (or Request Authenticator) / MS-CHAP-Challenge
    mschap2_response: bytes = b""  # MS-CHAP2-Response value, 50 bytes
    raw_username: bytes = b""  # User-Name as sent; MS-CHAPv2 hashes these bytes
    calling_station_id: str = ""  # the client's MAC, as the NAS wrote it


@dataclass(frozen=True, slots=True)
class Decision:
    """Accept with ``reply`` attributes, or reject for ``reason``.

    ``mschap2`` is set on an MS-CHAPv2 accept: the wire layer must send its success value
    and encrypt its keys with the NAS secret. ``mschap_error`` is set on an MS-CHAPv2
    reject: the MS-CHAP-Error value.
    """

    accept: bool
    reason: str = ""
    reply: tuple[ReplyAttr, ...] = ()
    mschap2: mschap.MsChap2Success | None = field(default=None, repr=False)
    mschap_error: bytes = b""
    #: Reply-Message of a reject, for the customer (set only once the password was right,
    #: so it tells nothing to someone guessing names or passwords).
    message: str = ""


#: A soft end (prepaid paid-through time) never gives a Session-Timeout below this: the
#: billing clock renews or suspends within it, and a reconnecting client is not looped.
MIN_SESSION_TIMEOUT = 60


def needs_usage(state: DesiredState) -> bool:
    """Does deciding for ``state`` need :class:`Usage` (open sessions, data used)?"""
    return state.access is not Access.REJECT and (
        state.simultaneous_use is not None or state.data_limit is not None
    )


def session_timeout(state: DesiredState, now: float) -> int | None:
    """Session-Timeout: the configured one, cut to what remains of the package's time."""
    left: float | None = state.duration
    if state.ends_at is not None:
        until_end = state.ends_at - now
        left = until_end if left is None else min(left, until_end)
    if left is None:
        return state.session_timeout
    left = max(int(left), 1 if state.hard_end else MIN_SESSION_TIMEOUT)
    return min(state.session_timeout, left) if state.session_timeout else left


def data_left(state: DesiredState, usage: Usage | None) -> int | None:
    if state.data_limit is None:
        return None
    return state.data_limit - (usage.used_bytes if usage is not None else 0)


def reply_attributes(
    state: DesiredState, usage: Usage | None = None, now: float | None = None
) -> tuple[ReplyAttr, ...]:
    """The Access-Accept attributes for a subscriber's desired state.

    ALLOW: the plan's rate, interim interval, session timeout (cut to what remains of the
    package's time) and static address; a data package's remaining bytes as MikroTik's
    Total-Limit (low 32 bits) and Total-Limit-Gigawords (the rest).
    WALLED_GARDEN: the (low) rate in the state and the address list that fences it in.
    """
    attrs: list[ReplyAttr] = []
    if state.rate_limit:
        attrs.append(("Mikrotik-Rate-Limit", state.rate_limit))
    if state.access is Access.WALLED_GARDEN and state.address_list:
        attrs.append(("Mikrotik-Address-List", state.address_list))
    if state.interim_interval:
        attrs.append(("Acct-Interim-Interval", state.interim_interval))
    if state.duration is None and state.ends_at is None:
        timeout = state.session_timeout
    else:
        timeout = session_timeout(state, time.time() if now is None else now)
    if timeout:
        attrs.append(("Session-Timeout", timeout))
    if state.data_limit is not None:
        left = data_left(state, usage)
        if left is not None and left > 0:
            attrs.append(("Mikrotik-Total-Limit", left & 0xFFFFFFFF))
            attrs.append(("Mikrotik-Total-Limit-Gigawords", left >> 32))
    if state.ip:
        attrs.append(("Framed-IP-Address", state.ip))
    return tuple(attrs)


def authorize(
    request: AuthRequest,
    subject: AuthSubject | None,
    *,
    usage: Usage | None = None,
    now: float | None = None,
    nas: NasClient | None = None,
    new_challenge: Callable[[], bytes] = lambda: os.urandom(16),
) -> Decision:
    """Decide an Access-Request for ``subject`` (None: no such subscriber) from ``nas``.

    The NAS's vendor shapes the reply (:func:`jasiyo.radius.vendors.adapt`); without a NAS
    the reply is MikroTik's.

    ``usage`` (when :func:`needs_usage`) holds the open sessions and data used; without it
    the device and data limits are not checked. Never raises for bad input from the NAS:
    malformed credentials are a rejection. ``new_challenge`` supplies the C= value of an
    MS-CHAPv2 failure (tests fix it).
    """
    reason = _check_known(subject) or _check_method(request)
    checked: mschap.MsChap2Success | None = None
    if not reason:
        assert subject is not None  # _check_known passed
        reason, checked = _check_password(request, subject.password)
    message = ""
    if not reason:
        assert subject is not None
        now = time.time() if now is None else now
        reason, message = (
            _check_access(subject.state) or _check_limits(request, subject.state, usage, now) or ("", "")
        )
    reply: tuple[ReplyAttr, ...] = ()
    if not reason:
        assert subject is not None
        reply = reply_attributes(subject.state, usage, now)
        if nas is not None and (nas.vendor != vendors.Vendor.MIKROTIK or nas.suspended_pool):
            reply, reason = vendors.adapt(
                reply,
                subject.state,
                nas.vendor,
                walled_garden=nas.walled_garden,
                suspended_pool=nas.suspended_pool,
            )
    if reason:
        return Decision(
            False, reason=reason, message=message, mschap_error=_mschap_error(request, new_challenge)
        )
    assert subject is not None
    return Decision(True, reply=reply, mschap2=checked)


def fixed_decision(subject: AuthSubject, nas: NasClient | None = None) -> Decision | None:
    """What :func:`authorize` decides for ``subject`` at ``nas`` given the right PAP
    password, when nothing else can change it (not the clock, the data used, nor the
    device asking) except a sessions limit: that decision holds while the subscriber has
    fewer open sessions than ``state.simultaneous_use``. None when something else can.

    The wire layer keeps it per subscriber, so most Access-Requests need only the password
    compared (and the open sessions counted)."""
    state = subject.state
    if state.access is not Access.REJECT and (
        state.data_limit is not None
        or state.mac
        or state.ends_at is not None
        or state.duration is not None
        or state.starts_by is not None
    ):
        return None
    request = AuthRequest(subject.username, AuthMethod.PAP, pap_password=subject.password)
    return authorize(request, subject, nas=nas)


# ---------------------------------------------------------------- the steps


def _check_known(subject: AuthSubject | None) -> str | None:
    return "unknown user" if subject is None else None


def _check_method(request: AuthRequest) -> str | None:
    if request.method is AuthMethod.NONE:
        return "no supported credentials (PAP, CHAP or MS-CHAPv2)"
    return None


def _check_password(request: AuthRequest, password: str) -> tuple[str | None, mschap.MsChap2Success | None]:
    if request.method is AuthMethod.PAP:
        ok = hmac.compare_digest(request.pap_password.encode(), password.encode())
        return (None if ok else "wrong password (PAP)"), None
    if request.method is AuthMethod.CHAP:
        ok = _chap_ok(request, password)
        return (None if ok else "wrong password (CHAP)"), None
    try:
        checked = mschap.verify_response(
            request.raw_username or request.username.encode(),
            password,
            request.challenge,
            request.mschap2_response,
        )
    except ValueError as exc:
        return f"malformed MS-CHAPv2 ({exc})", None
    return (None if checked else "wrong password (MS-CHAPv2)"), checked


def _chap_ok(request: AuthRequest, password: str) -> bool:
    """RFC 1994: MD5(ident + secret + challenge); the password is used byte for byte."""
    if len(request.chap_response) != 16 or not request.challenge:
        return False
    expected = hashlib.md5(bytes([request.chap_ident]) + password.encode() + request.challenge).digest()
    return hmac.compare_digest(expected, request.chap_response)


def _check_access(state: DesiredState) -> tuple[str, str] | None:
    if state.access is Access.REJECT:
        return "access denied by billing state", state.note or ""
    return None


def _check_limits(
    request: AuthRequest, state: DesiredState, usage: Usage | None, now: float
) -> tuple[str, str] | None:
    """The package's time, data, device binding and sessions at once: (reason, message)."""
    if state.hard_end and state.ends_at is not None and now >= state.ends_at:
        return "package time used up", "Your package time is used up"
    if state.starts_by is not None and state.ends_at is None and now > state.starts_by:
        return "expired before first use", "This voucher has expired"
    if state.mac and (normalize_mac(request.calling_station_id) or "") != state.mac:
        return (
            f"bound to {state.mac}, not {request.calling_station_id or 'no MAC'}",
            "This account is tied to another device",
        )
    if state.data_limit is not None:
        left = data_left(state, usage)
        if left is not None and left <= 0:
            return "package data used up", "Your package data is used up"
    if (
        usage is not None
        and state.simultaneous_use is not None
        and len(usage.sessions) >= state.simultaneous_use
    ):
        # The same device reconnecting (its Stop lost) is not a second device. Without a
        # Calling-Station-Id a reconnect cannot be told from another device: sessions
        # without one count only against requests that have one.
        mac = normalize_mac(request.calling_station_id) or ""
        others = [m for m in usage.sessions if m != mac]
        if len(others) >= state.simultaneous_use:
            return (
                f"{len(others)} session(s) open, {state.simultaneous_use} allowed",
                f"Already online on {len(others)} device(s): this package allows {state.simultaneous_use}",
            )
    return None


def _mschap_error(request: AuthRequest, new_challenge: Callable[[], bytes]) -> bytes:
    """MS-CHAP-Error for a failed MS-CHAPv2 request: E=691 (authentication failure), no retry."""
    if request.method is not AuthMethod.MSCHAPV2 or not request.mschap2_response:
        return b""
    ident = request.mschap2_response[0]
    text = f"E=691 R=0 C={new_challenge().hex().upper()} V=3 M={REJECT_MESSAGE}"
    return bytes([ident]) + text.encode("ascii")
