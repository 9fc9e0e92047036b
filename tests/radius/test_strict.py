"""The attribute-count rules of RFC 2865/2866/2869: one test per rule, on both auth paths.

Each rule is shown twice: the request with the attribute once is answered, the same
request with the attribute twice is dropped and counted. Requests are built byte by byte
(pyrad's client refuses to build most of them) and signed correctly, so the only thing
wrong with a dropped one is the repeated attribute.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from jasiyo.radius.dictionaries import load_dictionary
from jasiyo.radius.strict import ACCESS_ONCE, ACCOUNTING_ONCE, STATUS_ONCE

from .conftest import SECRET, ServerThread, make_backend

_DICT = load_dictionary()
_TYPES = {attr.code: attr.type for attr in _DICT.attributes.values() if not attr.vendor}


def _value(code: int) -> bytes:
    """A value of the right shape for attribute ``code`` (so that once is fine)."""
    kind = _TYPES.get(code, "string")
    if kind in ("integer", "ipaddr", "date"):
        return b"\x00\x00\x00\x01" if code != 8 else bytes((100, 64, 0, 9))
    if kind == "ipv6addr":
        return b"\xfd" + b"\x00" * 14 + b"\x01"
    return b"x1"


def _attr(code: int, value: bytes) -> bytes:
    return bytes((code, len(value) + 2)) + value


def _pap(authenticator: bytes, password: bytes) -> bytes:
    pad = hashlib.md5(SECRET + authenticator).digest()
    block = password.ljust(16, b"\x00")
    return bytes(a ^ b for a, b in zip(block, pad, strict=True))


def _sign_access(code: int, attrs: bytes, authenticator: bytes, ma: int = 1) -> bytes:
    """Header + ``attrs`` + ``ma`` Message-Authenticators, the first one valid."""
    zero = _attr(80, b"\x00" * 16)
    body = attrs + zero * ma
    header = struct.pack("!BBH", code, 7, 20 + len(body))
    if not ma:
        return header + authenticator + body
    digest = hmac.new(SECRET, header + authenticator + body, "md5").digest()
    at = len(attrs)
    return header + authenticator + body[:at] + _attr(80, digest) + body[at + 18 :]


def alice(chap: bool = False) -> tuple[bytes, bytes]:
    """(Request Authenticator, attributes) of alice's PAP or CHAP Access-Request."""
    auth = os.urandom(16)
    attrs = _attr(1, b"alice")
    if chap:
        chap_id = 5
        response = hashlib.md5(bytes((chap_id,)) + b"alice-pw" + auth).digest()
        attrs += _attr(3, bytes((chap_id,)) + response)
    else:
        attrs += _attr(2, _pap(auth, b"alice-pw"))
    return auth, attrs


def build_access(code: int, copies: int, chap: bool = False) -> bytes:
    auth, attrs = alice(chap)
    if code == 80:
        return _sign_access(1, attrs, auth, ma=copies)
    present = {1: 1, 2: 0 if chap else 1, 3: 1 if chap else 0}.get(code, 0)
    for _ in range(copies - present):
        if code == 2:
            attrs += _attr(2, _pap(auth, b"alice-pw"))
        elif code == 3:
            attrs += _attr(3, b"\x05" + hashlib.md5(b"\x05alice-pw" + auth).digest())
        elif code == 1:
            attrs += _attr(1, b"alice")
        else:
            attrs += _attr(code, _value(code))
    return _sign_access(1, attrs, auth)


def build_accounting(code: int, copies: int) -> bytes:
    base = {40: struct.pack("!I", 1), 44: b"sess-1", 1: b"alice"}  # Start, a session, a user
    attrs = b""
    for key, value in base.items():
        attrs += _attr(key, value) * (copies if key == code else 1)
    if code not in base:
        attrs += _attr(code, _value(code)) * copies
    header = struct.pack("!BBH", 4, 9, 20 + len(attrs))
    authenticator = hashlib.md5(header + b"\x00" * 16 + attrs + SECRET).digest()
    if code == 80:  # Message-Authenticator on accounting is signed over a zero authenticator
        raise AssertionError("built separately")
    return header + authenticator + attrs


def build_accounting_ma(copies: int) -> bytes:
    attrs = _attr(40, struct.pack("!I", 1)) + _attr(44, b"sess-1") + _attr(1, b"alice")
    body = attrs + _attr(80, b"\x00" * 16) * copies
    header = struct.pack("!BBH", 4, 9, 20 + len(body))
    digest = hmac.new(SECRET, header + b"\x00" * 16 + body, "md5").digest()
    body = attrs + _attr(80, digest) + body[len(attrs) + 18 :]
    authenticator = hashlib.md5(header + b"\x00" * 16 + body + SECRET).digest()
    return header + authenticator + body


@pytest.fixture(params=[True, False], ids=["fast-pap", "pyrad"])
def server(request: Any) -> Iterator[ServerThread]:
    st = ServerThread(make_backend(), fast_pap=request.param)
    try:
        yield st
    finally:
        st.close()


def _exchange(udp: Any, port: int, data: bytes) -> bytes | None:
    return udp(port).exchange(data)


def _dropped(server: ServerThread, udp: Any, port: int, data: bytes, counter: str) -> bool:
    """True if ``data`` was dropped and counted under ``counter``: the server handles a
    socket's datagrams in order, so once the counter moved any reply would have been sent."""
    client = udp(port)
    before = getattr(server.stats, counter)
    client.sock.sendto(data, ("127.0.0.1", port))
    assert server.wait_for(lambda: getattr(server.stats, counter) == before + 1), server.stats
    return client.receive(timeout=0.05) is None


@pytest.mark.parametrize("code", sorted(ACCESS_ONCE), ids=lambda c: ACCESS_ONCE[c])
def test_access_request_attribute_at_most_once(server: ServerThread, udp: Any, code: int) -> None:
    chap = code == 3
    once = _exchange(udp, server.server.auth_port, build_access(code, 1, chap))
    assert once is not None and once[0] in (2, 3), f"{ACCESS_ONCE[code]} once: not answered"
    twice = build_access(code, 2, chap)
    assert _dropped(server, udp, server.server.auth_port, twice, "dropped_duplicate_attribute")
    assert server.stats.dropped == 1


def test_password_and_chap_password_together_dropped(server: ServerThread, udp: Any) -> None:
    auth, attrs = alice()
    attrs += _attr(3, b"\x05" + hashlib.md5(b"\x05alice-pw" + auth).digest())
    assert _dropped(
        server, udp, server.server.auth_port, _sign_access(1, attrs, auth), "dropped_duplicate_attribute"
    )


@pytest.mark.parametrize("code", sorted(ACCOUNTING_ONCE), ids=lambda c: ACCOUNTING_ONCE[c])
def test_accounting_request_attribute_at_most_once(server: ServerThread, udp: Any, code: int) -> None:
    build = (lambda n: build_accounting_ma(n)) if code == 80 else (lambda n: build_accounting(code, n))
    once = _exchange(udp, server.server.acct_port, build(1))
    assert once is not None and once[0] == 5, f"{ACCOUNTING_ONCE[code]} once: not answered"
    stored = len(server.backend.records)
    assert _dropped(server, udp, server.server.acct_port, build(2), "dropped_duplicate_attribute")
    assert len(server.backend.records) == stored  # nothing stored from the dropped one


@pytest.mark.parametrize("code", sorted(STATUS_ONCE), ids=lambda c: STATUS_ONCE[c])
def test_status_server_attribute_at_most_once(server: ServerThread, udp: Any, code: int) -> None:
    def build(n: int) -> bytes:
        auth = os.urandom(16)
        if code == 80:
            return _sign_access(12, b"", auth, ma=n)
        return _sign_access(12, _attr(code, _value(code)) * n, auth)

    once = _exchange(udp, server.server.auth_port, build(1))
    assert once is not None and once[0] == 2
    assert _dropped(server, udp, server.server.auth_port, build(2), "dropped_duplicate_attribute")


def test_wrong_secret_is_a_rate_limited_warning_naming_the_nas(
    server: ServerThread, udp: Any, caplog: Any
) -> None:
    """The commonest mistake on a new router must be visible."""
    auth, attrs = alice()
    good = _sign_access(1, attrs, auth)
    bad = bytearray(good)
    bad[-1] ^= 1  # as if signed with another secret
    caplog.set_level(logging.WARNING, logger="jasiyo")
    client = udp(server.server.auth_port)
    for _ in range(5):
        assert client.exchange(bytes(bad), timeout=0.2) is None
    assert server.wait_for(lambda: server.stats.dropped_bad_authenticator == 5)
    lines = [r.getMessage() for r in caplog.records if "radius.bad_secret" in r.getMessage()]
    assert len(lines) == 1, lines  # five drops, one line
    assert "core-1" in lines[0] and "testing123" not in lines[0]


def test_missing_message_authenticator_is_a_warning_naming_the_nas(
    server: ServerThread, udp: Any, caplog: Any
) -> None:
    auth, attrs = alice()
    caplog.set_level(logging.WARNING, logger="jasiyo")
    client = udp(server.server.auth_port)
    for _ in range(3):
        assert client.exchange(_sign_access(1, attrs, auth, ma=0), timeout=0.2) is None
    assert server.wait_for(lambda: server.stats.dropped_missing_message_authenticator == 3)
    lines = [
        r.getMessage() for r in caplog.records if "radius.missing_message_authenticator" in r.getMessage()
    ]
    assert len(lines) == 1 and "core-1" in lines[0], lines
