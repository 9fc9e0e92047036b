"""Accounting-Requests read without pyrad decide as pyrad's path does: the same record,
the same reply bytes, the same drops."""

from __future__ import annotations

import struct

from jasiyo.radius import fastacct, strict
from jasiyo.radius.accounting import decode_attrs, decode_record
from jasiyo.radius.dictionaries import load_dictionary
from jasiyo.radius.packets import FastAcctPacket, hmac_md5, md5

SECRET = b"testing123"


def _request(*extra: tuple[int, bytes], ma: bool = False, secret: bytes = SECRET) -> bytes:
    attrs = [
        (40, struct.pack("!I", 3)),
        (44, b"sess-1"),
        (1, b"alice"),
        (8, bytes([10, 0, 0, 7])),
        (42, struct.pack("!I", 12345)),
        (52, struct.pack("!I", 2)),
        (46, struct.pack("!I", 60)),
        (33, b"proxy-one"),
        (33, b"proxy-two"),
        *extra,
    ]
    if ma:
        attrs.insert(0, (80, b"\x00" * 16))
    body = b"".join(bytes((k, len(v) + 2)) + v for k, v in attrs)
    head = bytes((4, 77)) + struct.pack("!H", 20 + len(body))
    if ma:  # RFC 3579: over the request with a zero authenticator and a zero MA
        digest = hmac_md5(secret, head + b"\x00" * 16 + body)
        body = body[:2] + digest + body[18:]
    return head + md5(head + b"\x00" * 16 + body + secret).digest() + body


def _pyrad(data: bytes) -> FastAcctPacket:
    return FastAcctPacket(secret=SECRET, dict=load_dictionary(), packet=data)


def test_the_record_and_the_reply_are_pyrads() -> None:
    for ma in (False, True):
        data = _request(ma=ma)
        scanned = fastacct.scan(data, len(data))
        assert isinstance(scanned, fastacct.Scanned)
        assert fastacct.authentic(data, len(data), scanned, SECRET) is None
        pkt = _pyrad(data)
        assert pkt.VerifyAcctRequest() and (not ma or pkt.verify_message_authenticator())
        assert decode_attrs(scanned.attrs, "10.1.1.1", 5.0) == decode_record(pkt, "10.1.1.1", 5.0)
        assert fastacct.reply(data, scanned, SECRET) == pkt.CreateReply().ReplyPacket()
        assert pkt.CreateReply().ReplyPacket()[20:].count(b"proxy-") == 2  # kept, in order


def test_vendor_attributes_are_passed_over_as_pyrad_keeps_them_aside() -> None:
    for vsa in (struct.pack("!I", 14988) + bytes((8, 4)) + b"ab", b"\x00\x00\x3a\x8c\x08"):
        data = _request((26, vsa))
        scanned = fastacct.scan(data, len(data))
        assert isinstance(scanned, fastacct.Scanned)
        pkt = _pyrad(data)
        assert decode_attrs(scanned.attrs, "10.1.1.1", 5.0) == decode_record(pkt, "10.1.1.1", 5.0)
        assert fastacct.reply(data, scanned, SECRET) == pkt.CreateReply().ReplyPacket()


def test_a_wrong_signature_is_named() -> None:
    data = _request(ma=True, secret=b"not-the-secret")
    scanned = fastacct.scan(data, len(data))
    assert isinstance(scanned, fastacct.Scanned)
    assert fastacct.authentic(data, len(data), scanned, SECRET) == "Request Authenticator"
    good = _request(ma=True)
    forged = bytearray(good)
    forged[22] ^= 1  # the Message-Authenticator, then the Request Authenticator made to match
    body = bytes(forged[20:])
    forged[4:20] = md5(bytes(forged[:4]) + b"\x00" * 16 + body + SECRET).digest()
    scanned = fastacct.scan(bytes(forged), len(forged))
    assert isinstance(scanned, fastacct.Scanned)
    assert fastacct.authentic(bytes(forged), len(forged), scanned, SECRET) == "Message-Authenticator"


def test_a_repeated_attribute_is_refused_with_stricts_words() -> None:
    data = _request((1, b"mallory"))
    assert fastacct.scan(data, len(data)) == strict.violation(data, len(data)) == "User-Name more than once"


def test_unusual_requests_go_to_pyrad() -> None:
    data = _request()
    runs_past = data + bytes((31, 10)) + b"ab"  # says 10 bytes, has 4
    runs_past = runs_past[:2] + struct.pack("!H", len(runs_past)) + runs_past[4:]
    assert fastacct.scan(runs_past, len(runs_past)) is None
    short_ma = _request((80, b"short"))
    assert fastacct.scan(short_ma, len(short_ma)) is None
