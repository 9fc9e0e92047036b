"""Accounting-Requests read straight from the datagram, without a pyrad packet.

An Accounting-Request needs little: its attributes by number (the first value of each;
every attribute :func:`jasiyo.radius.accounting.decode_record` reads may appear at most
once, :mod:`jasiyo.radius.strict`), its Request Authenticator checked, its
Message-Authenticator checked when it has one, and a reply of 20 bytes plus the
Proxy-States. pyrad builds an ordered dict of lists, a reply packet and its encoding for
the same result; this is about a third of the CPU per request.

:func:`scan` makes one pass: the attribute-count rules of :mod:`.strict` (the same
message), and the attributes. Anything unusual (an attribute that does not parse, a
Message-Authenticator of the wrong size) returns None and the request takes pyrad's path,
which decides it exactly as before.
"""

from __future__ import annotations

import hmac
from typing import Final

from jasiyo.radius import strict
from jasiyo.radius.packets import hmac_md5, md5

_ONCE: Final[bytes] = strict.ONCE_TABLES[4]  # Accounting-Request
_ZERO16: Final[bytes] = b"\x00" * 16
_ACCOUNTING_RESPONSE: Final[int] = 5


class Scanned:
    """A well-formed Accounting-Request's attributes: first value of each, by number."""

    __slots__ = ("attrs", "ma_at", "proxy_states")

    def __init__(self, attrs: dict[int, bytes], proxy_states: list[bytes], ma_at: int) -> None:
        self.attrs = attrs
        self.proxy_states = proxy_states
        self.ma_at = ma_at  # offset of the Message-Authenticator's value, 0 if none


def scan(data: bytes, length: int) -> Scanned | str | None:
    """The attributes of the Accounting-Request ``data`` (``length`` checked by the caller),
    a :mod:`.strict` violation's message, or None for pyrad's path."""
    attrs: dict[int, bytes] = {}
    proxy: list[bytes] = []
    ma_at = 0
    pos = 20
    while pos < length:
        if length - pos < 2:
            return None
        key = data[pos]
        alen = data[pos + 1]
        end = pos + alen
        if alen < 2 or end > length:
            return None
        if key == 26:
            pass  # Vendor-Specific: nothing accounting reads (pyrad never refuses one either)
        elif key == 33:
            proxy.append(data[pos + 2 : end])
        elif key not in attrs:
            attrs[key] = data[pos + 2 : end]
            if key == 80:
                if alen != 18:
                    return None
                ma_at = pos + 2
        elif _ONCE[key]:
            return f"{strict.ACCOUNTING_ONCE[key]} more than once"
        pos = end
    return Scanned(attrs, proxy, ma_at)


def authentic(data: bytes, length: int, scanned: Scanned, secret: bytes) -> str | None:
    """None if the request is signed with ``secret``, else which signature is wrong."""
    body = data[20:length]
    expected = md5(data[:4] + _ZERO16 + body + secret).digest()
    if not hmac.compare_digest(expected, data[4:20]):
        return "Request Authenticator"
    at = scanned.ma_at
    if at:
        # RFC 3579 section 3.2: over the packet with the Message-Authenticator zeroed; the
        # Request Authenticator of an Accounting-Request counts as 16 zeros (RFC 5080 2.2.1)
        signed = data[:4] + _ZERO16 + data[20:at] + _ZERO16 + data[at + 16 : length]
        if not hmac.compare_digest(hmac_md5(secret, signed), data[at : at + 16]):
            return "Message-Authenticator"
    return None


def reply(data: bytes, scanned: Scanned, secret: bytes) -> bytes:
    """The Accounting-Response to ``data``: its Proxy-States in order (RFC 2865 5.33)."""
    attrs = b"".join(bytes((33, len(v) + 2)) + v for v in scanned.proxy_states)
    header = bytes((_ACCOUNTING_RESPONSE, data[1])) + (20 + len(attrs)).to_bytes(2, "big")
    return header + md5(header + data[4:20] + attrs + secret).digest() + attrs


__all__ = ["Scanned", "authentic", "reply", "scan"]
