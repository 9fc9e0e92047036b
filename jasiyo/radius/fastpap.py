"""A fast path for the common Access-Request: plain PAP from a known NAS.

Most of the server's CPU per PAP request went into pyrad's packet objects: decoding every
attribute into an ``AuthPacket``, then building, encoding and signing a reply ``AuthPacket``.
A PAP request needs only a handful of attributes and its reply is a fixed layout, so this
module reads the datagram by index and writes the reply bytes directly:

    header | Response Authenticator | Message-Authenticator | Proxy-State... | reply attrs

which is exactly what pyrad's ``CreateReply`` + ``ReplyPacket`` produce (the
Message-Authenticator first, then the copied Proxy-States, then the attributes in the order
:meth:`RadiusServer._encode` gives them). The encoded reply attributes are cached per
decision, so per packet only the header, two MD5s and the HMAC are computed.

:func:`handle` returns False, having changed nothing, for anything it does not fully
understand (CHAP, MS-CHAP, no User-Password, a malformed attribute, a Message-Authenticator
that does not verify, one missing where the NAS requires it, an odd reply); the server then
takes its pyrad path, which answers or drops such a packet as before. Once it returns True
the request was handled with the same counters, dedup entry, decision and log line as the
pyrad path; ``tests/radius/test_fastpap.py`` checks that both give byte-identical replies.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any

from jasiyo.radius.dedup import DedupKey
from jasiyo.radius.packets import hmac_md5
from jasiyo.radius.policy import REJECT_MESSAGE, AuthMethod, AuthRequest, Decision, authorize

if TYPE_CHECKING:  # the server imports this module; no cycle at run time
    from jasiyo.radius.backend import NasClient
    from jasiyo.radius.server import RadiusServer, _Protocol

_ZERO16 = b"\x00" * 16
_MA_ZERO = b"\x50\x12" + _ZERO16  # Message-Authenticator (80), length 18, zeroed to sign
_MS_VENDOR = b"\x00\x00\x01\x37"  # 311: MS-CHAP attributes live under it
_ACCESS_ACCEPT = 2
_ACCESS_REJECT = 3
_REJECT_ATTRS = bytes((18, len(REJECT_MESSAGE) + 2)) + REJECT_MESSAGE.encode()
#: a reply attribute key the fixed layout cannot express (pyrad would merge it with the
#: copied Proxy-State or the Message-Authenticator): such replies go through pyrad
_SPECIAL_KEYS = frozenset((33, 80))

_md5_secret: dict[bytes, Any] = {}


def _parse(data: bytes, length: int) -> tuple[bytes, bytes, int, bytes] | None:
    """(User-Name, User-Password, offset of the Message-Authenticator or -1, the raw
    Proxy-State attributes joined) of a plain PAP request; None for anything else."""
    name = password = None
    ma = -1
    proxy = b""
    pos = 20
    while pos < length:
        if length - pos < 2:
            return None
        key = data[pos]
        end = pos + data[pos + 1]
        if end - pos < 2 or end > length:
            return None
        if key == 1:
            if name is None:
                name = data[pos + 2 : end]
        elif key == 2:
            if password is None:
                password = data[pos + 2 : end]
        elif key == 80:
            if ma >= 0 or end - pos != 18:
                return None
            ma = pos
        elif key == 33:
            proxy += data[pos:end]
        elif key == 3:  # CHAP-Password
            return None
        elif key == 26 and end - pos >= 8 and data[pos + 2 : pos + 6] == _MS_VENDOR:
            return None  # MS-CHAP(v2) attributes; other vendors' attributes do not matter
        pos = end
    if password is None or len(password) % 16:
        return None  # no PAP, or a password pyrad refuses to decrypt (dropped as malformed)
    return name or b"", password, ma, proxy


def _decrypt(secret: bytes, authenticator: bytes, password: bytes) -> str:
    """RFC 2865 section 5.2, as :meth:`FastAuthPacket.PwDecrypt` (same result)."""
    base = _md5_secret.get(secret)
    if base is None:
        if len(_md5_secret) > 4096:  # secrets of removed routers must not pile up
            _md5_secret.clear()
        base = _md5_secret[secret] = hashlib.md5(secret)
    out = bytearray()
    last = authenticator
    for i in range(0, len(password), 16):
        block = password[i : i + 16]
        h = base.copy()
        h.update(last)
        out += (int.from_bytes(block, "big") ^ int.from_bytes(h.digest(), "big")).to_bytes(
            16, "big"
        )
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
            parts.append(
                bytes((26, n + 8)) + vendor.to_bytes(4, "big") + bytes((sub, n + 2)) + value
            )
        else:
            if key in _SPECIAL_KEYS:
                return None
            if n > 253:
                raise ValueError(f"Value of attribute {key!r} is too long ({n} octets)")
            parts.append(bytes((key, n + 2)) + value)
    return b"".join(parts)


def _reply_attrs(server: RadiusServer, decision: Decision, username: str) -> bytes | None:
    """The encoded attributes of an accept, cached per decision: None if pyrad must build
    the reply, :data:`_REJECT_ATTRS` if they do not encode (logged as on the pyrad path);
    ValueError where pyrad's encoder raises it (an internal error there too)."""
    attrs = decision.reply
    cache = server._fast_attrs
    cached = cache.get(attrs, False)
    if cached is not False:
        return cached  # type: ignore[return-value]
    try:
        encoded = server._encode(attrs)
    except (ValueError, TypeError, KeyError) as exc:
        server._log_unencodable(username, exc)
        return _REJECT_ATTRS
    wire = encode_attributes(encoded)
    if len(cache) >= 65536:
        cache.clear()
    cache[attrs] = wire
    return wire


def handle(
    server: RadiusServer,
    protocol: _Protocol,
    data: bytes,
    addr: tuple[str, int],
    nas: NasClient,
    key: DedupKey,
) -> bool:
    """Answer ``data``, an Access-Request already checked for size and NAS and not a
    duplicate, if it is plain PAP; False (nothing done) to leave it to the pyrad path."""
    secret = nas.secret
    if not secret or type(secret) is not bytes:
        return False
    length = (data[2] << 8) | data[3]
    parsed = _parse(data, length)
    if parsed is None:
        return False
    name_raw, password, ma, proxy = parsed
    if ma >= 0:
        raw = data[:length]
        signed = raw[: ma + 2] + _ZERO16 + raw[ma + 18 :]
        if not hmac.compare_digest(raw[ma + 2 : ma + 18], hmac_md5(secret, signed)):
            return False
    elif nas.require_message_authenticator:
        return False
    else:
        server._warn_no_ma(nas)

    stats = server.stats
    entry = server.dedup.add(key, data)
    try:
        stats.access_requests += 1
        authenticator = data[4:20]
        username = name_raw.decode("utf-8", "replace")
        request = AuthRequest(
            username, AuthMethod.PAP, pap_password=_decrypt(secret, authenticator, password)
        )
        decision = authorize(request, server._lookup(server.backend.subject, username), nas=nas)
        attrs: bytes | None = _REJECT_ATTRS
        if decision.accept:
            attrs = _reply_attrs(server, decision, username)
            if attrs is None:  # a reply the fixed layout cannot express: pyrad builds it
                raw, decision = server._auth_reply(server._decode_auth(data, nas), decision,
                                                   username)  # fmt: skip
            elif attrs is _REJECT_ATTRS:  # did not encode: rejected (logged)
                decision = Decision(False, reason="reply attributes unencodable")
        if attrs is not None:
            tail = proxy + attrs
            n = 38 + len(tail)
            header = bytes((_ACCESS_ACCEPT if decision.accept else _ACCESS_REJECT, data[1],
                            n >> 8, n & 0xFF))  # fmt: skip
            digest = hmac_md5(secret, header + authenticator + _MA_ZERO + tail)
            body = b"\x50\x12" + digest + tail
            raw = header + hashlib.md5(header + authenticator + body + secret).digest() + body
    except BaseException:
        server.dedup.forget(key, entry)  # unanswered: a retransmission gets another try
        raise
    if decision.accept:
        stats.access_accepts += 1
    else:
        stats.access_rejects += 1
    entry.reply = raw
    server._send(protocol, raw, addr)
    server._log_auth(username, nas, AuthMethod.PAP, decision)
    return True


__all__ = ["encode_attributes", "handle"]
