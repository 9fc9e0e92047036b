"""The fast packet classes give exactly pyrad's results."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyrad.packet import AuthPacket, PacketError

from jasiyo.radius.dictionaries import load_dictionary
from jasiyo.radius.packets import FastAcctPacket, FastAuthPacket
from tests.support.props import examples

SECRET = b"s3cret"


@settings(max_examples=examples(200), deadline=None)
@given(
    password=st.text(min_size=1, max_size=100).filter(lambda p: len(p.encode()) <= 128),
    user=st.text(min_size=1, max_size=60),
    rate=st.text(min_size=1, max_size=80),
    class_=st.binary(min_size=1, max_size=200),
)
def test_same_bytes_and_values_as_pyrad(password: str, user: str, rate: str, class_: bytes) -> None:
    d = load_dictionary()
    req = AuthPacket(secret=SECRET, dict=d, message_authenticator=True)
    req.authenticator = os.urandom(16)
    req.AddAttribute("User-Name", user)
    req.AddAttribute("User-Password", req.PwCrypt(password))
    req.AddAttribute("Mikrotik-Rate-Limit", rate)
    req.AddAttribute("Class", class_)
    raw = req.RequestPacket()

    slow = AuthPacket(secret=SECRET, dict=d, packet=raw)
    fast = FastAuthPacket(secret=SECRET, dict=d, packet=raw)
    assert list(fast.items()) == list(slow.items())
    assert fast.verify_message_authenticator()
    assert fast.PwDecrypt(fast[2][0]) == slow.PwDecrypt(slow[2][0])
    assert fast["Mikrotik-Rate-Limit"] == slow["Mikrotik-Rate-Limit"]

    s_reply, f_reply = slow.CreateReply(), fast.CreateReply()
    assert type(f_reply) is FastAuthPacket
    for r in (s_reply, f_reply):
        r.AddAttribute("Mikrotik-Rate-Limit", rate)
        r.AddAttribute("Session-Timeout", 3600)
        r.AddAttribute("Class", class_)
    assert f_reply.ReplyPacket() == s_reply.ReplyPacket()


def test_acct_reply_class_and_oversized_value_refused() -> None:
    d = load_dictionary()
    pkt = FastAcctPacket(secret=SECRET, dict=d)
    pkt.AddAttribute("Acct-Status-Type", "Start")
    decoded = FastAcctPacket(secret=SECRET, dict=d, packet=pkt.RequestPacket())
    assert decoded.VerifyAcctRequest()
    assert type(decoded.CreateReply()) is FastAcctPacket
    reply = decoded.CreateReply()
    reply[(14988, 8)] = [b"x" * 248]  # one octet more than fits in a vendor attribute
    with pytest.raises(ValueError, match="too long"):
        reply.ReplyPacket()


@settings(max_examples=examples(500), deadline=None)
@given(data=st.binary(min_size=0, max_size=300), header=st.binary(min_size=4, max_size=4))
def test_decoding_hostile_bytes_never_accepts_what_pyrad_rejects(data: bytes, header: bytes) -> None:
    d = load_dictionary()
    # give half the cases a consistent Length field so the attribute walk is reached
    raw = header[:2] + (20 + len(data)).to_bytes(2, "big") + b"\x00" * 16 + data
    for candidate in (raw, header + data):
        try:
            slow = AuthPacket(secret=SECRET, dict=d, packet=candidate)
        except Exception:  # noqa: BLE001 - pyrad may refuse a packet with any error
            slow = None
        try:
            fast = FastAuthPacket(secret=SECRET, dict=d, packet=candidate)
        except PacketError:
            fast = None
        if slow is None:
            assert fast is None
        elif fast is not None:
            assert list(fast.items()) == list(slow.items())
            assert (fast.code, fast.id, fast.authenticator) == (slow.code, slow.id, slow.authenticator)
            assert fast.message_authenticator == slow.message_authenticator


@given(key=st.binary(min_size=1, max_size=100), data=st.binary(max_size=300))
def test_hmac_md5_matches_the_standard_library(key: bytes, data: bytes) -> None:
    import hmac

    from jasiyo.radius.packets import hmac_md5

    assert hmac_md5(key, data) == hmac.new(key, data, "md5").digest()
