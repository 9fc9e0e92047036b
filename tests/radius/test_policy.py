"""authorize() without sockets: each rule, and the reply built from the desired state."""

from __future__ import annotations

import hashlib

from jasiyo.network import Access
from jasiyo.radius import mschap
from jasiyo.radius.backend import AuthSubject
from jasiyo.radius.dedup import DedupCache
from jasiyo.radius.policy import AuthMethod, AuthRequest, authorize, reply_attributes

from .conftest import RATE, state

ALICE = AuthSubject("alice", "s3cret pw ", state("alice", session_timeout=3600, ip="100.64.0.7"))


def pap(password: str, user: str = "alice") -> AuthRequest:
    return AuthRequest(user, AuthMethod.PAP, pap_password=password)


def test_pap_accept_reply_from_state() -> None:
    d = authorize(pap("s3cret pw "), ALICE)
    assert d.accept and not d.reason
    assert d.reply == (
        ("Mikrotik-Rate-Limit", RATE),
        ("Acct-Interim-Interval", 300),
        ("Session-Timeout", 3600),
        ("Framed-IP-Address", "100.64.0.7"),
    )


def test_rejections_name_their_reason() -> None:
    assert authorize(pap("x"), None).reason == "unknown user"
    assert authorize(pap("s3cret pw"), ALICE).reason == "wrong password (PAP)"  # no trimming
    none = AuthRequest("alice", AuthMethod.NONE)
    assert "no supported credentials" in authorize(none, ALICE).reason
    bob = AuthSubject("bob", "pw", state("bob", Access.REJECT))
    d = authorize(pap("pw", "bob"), bob)
    assert not d.accept and d.reason == "access denied by billing state" and d.reply == ()


def test_walled_garden_gets_low_rate_and_address_list() -> None:
    s = state("carol", Access.WALLED_GARDEN, rate_limit="128k/128k", address_list="unpaid")
    d = authorize(pap("pw", "carol"), AuthSubject("carol", "pw", s))
    assert d.accept
    assert ("Mikrotik-Rate-Limit", "128k/128k") in d.reply
    assert ("Mikrotik-Address-List", "unpaid") in d.reply


def test_address_list_only_in_walled_garden() -> None:
    s = state("x", Access.ALLOW, address_list="unpaid")
    assert all(name != "Mikrotik-Address-List" for name, _ in reply_attributes(s))


def test_chap_uses_password_bytes_exactly() -> None:
    challenge = b"c" * 16
    good = hashlib.md5(b"\x01" + b"s3cret pw " + challenge).digest()
    req = AuthRequest("alice", AuthMethod.CHAP, chap_ident=1, chap_response=good,
                      challenge=challenge)  # fmt: skip
    assert authorize(req, ALICE).accept
    bad = AuthRequest("alice", AuthMethod.CHAP, chap_ident=2, chap_response=good,
                      challenge=challenge)  # fmt: skip
    assert authorize(bad, ALICE).reason == "wrong password (CHAP)"
    short = AuthRequest("alice", AuthMethod.CHAP, chap_response=b"abc", challenge=challenge)
    assert not authorize(short, ALICE).accept


def test_mschapv2_accept_and_failure_error() -> None:
    ac, pc = b"A" * 16, b"P" * 16
    nt = mschap.generate_nt_response(ac, pc, b"alice", "s3cret pw ")
    resp = b"\x05\x00" + pc + b"\x00" * 8 + nt
    req = AuthRequest("alice", AuthMethod.MSCHAPV2, challenge=ac, mschap2_response=resp)
    d = authorize(req, ALICE)
    assert d.accept and d.mschap2 is not None and d.mschap2.success.startswith(b"\x05S=")

    wrong = AuthSubject("alice", "other", ALICE.state)
    d = authorize(req, wrong, new_challenge=lambda: b"\xab" * 16)
    assert not d.accept
    assert d.mschap_error == b"\x05E=691 R=0 C=" + b"AB" * 16 + b" V=3 M=Authentication failed"

    malformed = AuthRequest("alice", AuthMethod.MSCHAPV2, challenge=ac, mschap2_response=b"\x01")
    assert authorize(malformed, ALICE).reason.startswith("malformed MS-CHAPv2")


def test_dedup_cache_expires_and_stays_bounded() -> None:
    now = [0.0]
    cache = DedupCache(ttl=30, max_entries=3, clock=lambda: now[0])
    key = ("127.0.0.1", 1, 1, 1, b"a" * 16)
    entry = cache.add(key, b"req")
    entry.reply = b"rep"
    assert cache.get(key, b"req") is entry
    assert cache.get(key, b"forged") is None  # same key, other bytes: not a retransmission
    now[0] = 31
    assert cache.get(key, b"req") is None
    for i in range(5):
        cache.add(("127.0.0.1", 1, 1, i, b"b" * 16), b"r")
    assert len(cache) == 3 and cache.evictions == 2
