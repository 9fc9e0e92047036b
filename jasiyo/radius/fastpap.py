"""A fast path for the common Access-Request: plain PAP from a known NAS.

Most of the server's CPU per PAP request went into pyrad's packet objects: decoding every
attribute into an ``AuthPacket``, then building, encoding and signing a reply ``AuthPacket``.
A PAP request needs only a handful of attributes and its reply is a fixed layout, so this
module reads the datagram by index and writes the reply bytes directly:

    header | Response Authenticator | Message-Authenticator | Proxy-State... | reply attrs

which is exactly what pyrad's ``CreateReply`` + ``ReplyPacket`` produce (the
Message-Authenticator first, then the copied Proxy-States, then the attributes in the order
:class:`~jasiyo.radius.replies.AttributeEncoder` gives them). The server caches the encoded reply attributes
per decision, so per packet only the header, two MD5s and the HMAC are computed.

Pure functions over bytes; the server (``RadiusServer._fast_pap``) does the rest: the
counters, the dedup entry, the decision and the log line, as on its pyrad path.
:func:`parse` returns None for anything it does not fully understand (CHAP, MS-CHAP, no
User-Password, a malformed attribute, a Message-Authenticator that does not verify, one
missing where the NAS requires it), and the server then takes its pyrad path, which answers
or drops such a packet as before; so does :func:`encode_attributes` for an odd reply.
``tests/radius/test_fastpap.py`` checks that both paths give byte-identical replies.
"""

from __future__ import annotations

import hmac
from typing import Any

from jasiyo.radius.packets import hmac_md5, md5
from jasiyo.radius.policy import REJECT_MESSAGE
from jasiyo.radius.strict import ACCESS_ONCE, ONCE_TABLES

_ZERO16 = b"\x00" * 16
_MA_ZERO = b"\x50\x12" + _ZERO16  # Message-Authenticator (80), length 18, zeroed to sign
_MS_VENDOR = b"\x00\x00\x01\x37"  # 311: MS-CHAP attributes live under it
_ACCESS_ACCEPT = 2
_ACCESS_REJECT = 3
#: the attributes of every reject (a Reply-Message)
REJECT_ATTRS = bytes((18, len(REJECT_MESSAGE) + 2)) + REJECT_MESSAGE.encode()
#: a reply attribute key the fixed layout cannot express (pyrad would merge it with the
#: copied Proxy-State or the Message-Authenticator): such replies go through pyrad
_SPECIAL_KEYS = frozenset((33, 80))

_md5_secret: dict[bytes, Any] = {}


#: Access-Request attributes allowed at most once (:mod:`.strict`), as a 256-entry table
_ONCE = ONCE_TABLES[1]  # Access-Request

_NAME, _PASSWORD, _CALLING, _MA, _PROXY, _CHAP, _VENDOR = range(1, 8)
#: what :func:`scan` does with each attribute number (0: nothing)
_ACT = bytes(
    {1: _NAME, 2: _PASSWORD, 31: _CALLING, 80: _MA, 33: _PROXY, 3: _CHAP, 26: _VENDOR}.get(i, 0)
    for i in range(256)
)

#: what :func:`scan` finds: (User-Name, User-Password, offset of the Message-Authenticator
#: or -1, the raw Proxy-State attributes joined, Calling-Station-Id)
Fields = tuple[bytes, bytes, int, bytes, bytes]


def scan(data: bytes, length: int) -> Fields | str | None:
    """One pass over an Access-Request's attributes: its :data:`Fields` if it is plain PAP
    and keeps the attribute-count rules; a str (what :func:`strict.violation` says) if it
    breaks them; None for anything else (malformed, CHAP, MS-CHAP, no usable password),
    the rules then still to be checked by :func:`strict.violation`."""
    name = password = None
    calling = b""
    ma = -1
    proxy = b""
    seen = bytearray(256)
    once, act = _ONCE, _ACT
    pos = 20
    while pos < length:
        if length - pos < 2:
            return None
        key = data[pos]
        end = pos + data[pos + 1]
        if end - pos < 2 or end > length:
            return None
        if once[key]:
            if seen[key]:
                return f"{ACCESS_ONCE[key]} more than once"
            seen[key] = 1
        what = act[key]
        if what:  # most attributes are neither read nor refused here
            if what == _NAME:
                name = data[pos + 2 : end]
            elif what == _PASSWORD:
                password = data[pos + 2 : end]
            elif what == _CALLING:
                calling = data[pos + 2 : end]
            elif what == _MA:
                if end - pos != 18:
                    return None
                ma = pos
            elif what == _PROXY:
                proxy += data[pos:end]
            elif what == _CHAP:
                return None
            elif end - pos >= 8 and data[pos + 2 : pos + 6] == _MS_VENDOR:  # _VENDOR
                return None  # MS-CHAP(v2) attributes; other vendors' attributes do not matter
        pos = end
    if password is None or len(password) % 16:
        return None  # no PAP, or a password pyrad refuses to decrypt (dropped as malformed)
    return name or b"", password, ma, proxy, calling


def _decrypt(secret: bytes, authenticator: bytes, password: bytes) -> str:
    """RFC 2865 section 5.2, as :meth:`FastAuthPacket.PwDecrypt` (same result)."""
    base = _md5_secret.get(secret)
    if base is None:
        if len(_md5_secret) > 4096:  # secrets of removed routers must not pile up
            _md5_secret.clear()
        base = _md5_secret[secret] = md5(secret)
    if len(password) == 16:  # the common case: a password of up to 16 bytes
        h = base.copy()
        h.update(authenticator)
        plain = (int.from_bytes(password, "big") ^ int.from_bytes(h.digest(), "big")).to_bytes(16, "big")
        return plain.rstrip(b"\x00").decode("utf-8", errors="ignore")
    out = bytearray()
    last = authenticator
    for i in range(0, len(password), 16):
        block = password[i : i + 16]
        h = base.copy()
        h.update(last)
        out += (int.from_bytes(block, "big") ^ int.from_bytes(h.digest(), "big")).to_bytes(16, "big")
        last = block
    return bytes(out).rstrip(b"\x00").decode("utf-8", errors="ignore")


def encode_attributes(encoded: tuple[tuple[Any, bytes], ...]) -> bytes | None:
    """Wire bytes of (pyrad key, raw value) pairs, as ``_PktEncodeAttributes`` writes them;
    None when a key is Proxy-State or Message-Authenticator. ValueError (as pyrad) for a
    value too long for one attribute."""
    parts: list[bytes] = []
    for key, value in encoded:
        n = len(value)
        if type(key) is tuple:
            vendor, sub = key
            if n > 247:
                raise ValueError(f"Value of attribute {key!r} is too long ({n} octets)")
            parts.append(bytes((26, n + 8)) + vendor.to_bytes(4, "big") + bytes((sub, n + 2)) + value)
        else:
            if key in _SPECIAL_KEYS:
                return None
            if n > 253:
                raise ValueError(f"Value of attribute {key!r} is too long ({n} octets)")
            parts.append(bytes((key, n + 2)) + value)
    return b"".join(parts)


class PapRequest:
    """What a plain PAP Access-Request carries that its answer needs."""

    __slots__ = ("authenticator", "calling_station_id", "password", "proxy", "signed", "username")

    def __init__(
        self,
        username: str,
        password: str,
        authenticator: bytes,
        proxy: bytes,
        signed: bool,
        calling_station_id: str = "",
    ) -> None:
        self.username = username
        #: the decrypted User-Password
        self.password = password
        #: the Request Authenticator
        self.authenticator = authenticator
        #: the raw Proxy-State attributes, copied into the reply
        self.proxy = proxy
        #: it carried a Message-Authenticator (verified)
        self.signed = signed
        #: the client's MAC as the NAS wrote it ("" if none)
        self.calling_station_id = calling_station_id


def verify(data: bytes, length: int, fields: Fields, secret: bytes, require_ma: bool) -> PapRequest | None:
    """The request :func:`scan` found in ``data``, if signed with ``secret`` (or unsigned
    where ``require_ma`` is False), its password decrypted; None otherwise."""
    name_raw, password, ma, proxy, calling = fields
    if ma >= 0:
        raw = data if length == len(data) else data[:length]
        signed = raw[: ma + 2] + _ZERO16 + raw[ma + 18 :]
        if not hmac.compare_digest(raw[ma + 2 : ma + 18], hmac_md5(secret, signed)):
            return None
    elif require_ma:
        return None
    authenticator = data[4:20]
    return PapRequest(name_raw.decode("utf-8", "replace"),
                      _decrypt(secret, authenticator, password), authenticator, proxy,
                      ma >= 0, calling.decode("utf-8", "replace") if calling else "")  # fmt: skip


def parse(data: bytes, secret: bytes, require_ma: bool) -> PapRequest | None:
    """``data``, an Access-Request already checked for size, NAS and attribute counts, if
    it is plain PAP signed with ``secret`` (or unsigned where ``require_ma`` is False);
    None otherwise."""
    length = (data[2] << 8) | data[3]
    fields = scan(data, length)
    if fields is None or type(fields) is str:
        return None
    return verify(data, length, fields, secret, require_ma)  # type: ignore[arg-type]


def reject_attrs(message: str) -> bytes:
    """The attributes of a reject carrying its own Reply-Message (as the pyrad path cuts it)."""
    value = message.encode()[:253]
    return bytes((18, len(value) + 2)) + value


def reply(data: bytes, request: PapRequest, secret: bytes, accept: bool, attrs: bytes) -> bytes:
    """The signed Access-Accept (or Access-Reject) to ``data`` carrying encoded ``attrs``."""
    tail = request.proxy + attrs
    n = 38 + len(tail)
    header = bytes((_ACCESS_ACCEPT if accept else _ACCESS_REJECT, data[1], n >> 8, n & 0xFF))
    authenticator = request.authenticator
    digest = hmac_md5(secret, header + authenticator + _MA_ZERO + tail)
    body = b"\x50\x12" + digest + tail
    return header + md5(header + authenticator + body + secret).digest() + body


__all__ = [
    "REJECT_ATTRS",
    "Fields",
    "PapRequest",
    "encode_attributes",
    "parse",
    "reject_attrs",
    "reply",
    "scan",
    "verify",
]
