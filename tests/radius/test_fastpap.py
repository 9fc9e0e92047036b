"""The PAP fast path (jasiyo.radius.fastpap) answers exactly as the pyrad path does.

Two servers over the same backend, one with ``fast_pap=False``, are fed the same datagrams
through :meth:`RadiusServer.datagram` (the entry point the UDP protocol calls); their
replies must be byte-identical (same Response Authenticator and Message-Authenticator),
or both must drop, with the same counters and the same log lines. The requests are random
PAP requests (users, passwords, attribute order, Proxy-State, Message-Authenticator or not,
NAS requiring it or not), other methods the fast path hands on, and mutated or truncated
bytes. Sockets are covered by the rest of the suite, which now runs on the fast path.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyrad.server_async import ServerType

from jasiyo.network import Access, normalize_mac
from jasiyo.radius import fastpap
from jasiyo.radius.backend import AcctRecord, AuthSubject, NasClient
from jasiyo.radius.memory import MemoryBackend
from jasiyo.radius.server import RadiusServer, _Protocol
from tests.radius.support import SECRET, make_backend, state
from tests.support.props import examples

NAS_ADDR = ("127.0.0.1", 40000)
MAC = "AA:BB:CC:DD:EE:FF"  # the Calling-Station-Id of the generated requests
KNOWN = {
    "alice": "alice-pw",  # accept, with session timeout
    "bob": "bob-pw",  # billing says reject
    "carol": "carol-pw",  # walled garden
    "dave": "dave-pw",  # static address
    "émile": "ünïcode-pässwörd-that-is-longer-than-sixteen",
    "erin": "erin-pw",  # suspended, with a Reply-Message for her
    "fay": "fay-pw",  # one device allowed, one session open from another MAC: refused
    "gus": "gus-pw",  # two devices allowed, one session open: accepted
    "hana": "hana-pw",  # bound to the requests' MAC
    "hal": "hal-pw",  # bound to another MAC
    "ivan": "ivan-pw",  # a data package: Total-Limit from what is left
}


class _Transport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return False


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


def _backend(require_ma: bool) -> MemoryBackend:
    b = make_backend()
    b.add_nas(NasClient("core-1", "127.0.0.1", SECRET, require_message_authenticator=require_ma))
    b.add_subject(AuthSubject("émile", KNOWN["émile"], state("émile")))
    b.add_subject(
        AuthSubject("erin", "erin-pw", state("erin", Access.REJECT, note="Your account is suspended"))
    )
    b.add_subject(AuthSubject("fay", "fay-pw", state("fay", simultaneous_use=1)))
    b.add_subject(AuthSubject("gus", "gus-pw", state("gus", simultaneous_use=2)))
    b.add_subject(AuthSubject("hana", "hana-pw", state("hana", mac=normalize_mac(MAC))))
    b.add_subject(AuthSubject("hal", "hal-pw", state("hal", mac=normalize_mac("02:00:00:00:00:01"))))
    b.add_subject(AuthSubject("ivan", "ivan-pw", state("ivan", data_limit=5 << 30, data_since=0.0)))
    for user in ("fay", "gus"):
        b.record_accounting([AcctRecord("127.0.0.1", "Start", 1000.0, acct_session_id=f"s-{user}",
                                        username=user, calling_station_id="11:22:33:44:55:66")])  # fmt: skip
    return b


def _run(fast: bool, backend: MemoryBackend, datagrams: list[bytes]) -> tuple[Any, ...]:
    """Replies sent per datagram, counters and log lines of a fresh server."""
    server = RadiusServer(backend, "127.0.0.1", 0, 0, fast_pap=fast)
    proto = _Protocol("127.0.0.1", 0, server.logger, server, ServerType.Auth, {}, None)
    transport = _Transport()
    proto.transport = transport  # type: ignore[assignment]
    logger = logging.getLogger("jasiyo.radius")
    records = _Records()
    old_level = logger.level
    logger.addHandler(records)
    logger.setLevel(logging.DEBUG)
    try:
        replies = []
        for data in datagrams:
            before = len(transport.sent)
            server.datagram(proto, data, NAS_ADDR)
            replies.append(transport.sent[before:])
    finally:
        logger.removeHandler(records)
        logger.setLevel(old_level)
    return replies, server.stats.as_dict(), records.lines, len(server.dedup)


def _attr(code: int, value: bytes) -> bytes:
    return bytes((code, len(value) + 2)) + value


def _hide(password: bytes, authenticator: bytes, secret: bytes) -> bytes:
    """RFC 2865 section 5.2, written out here rather than taken from the code under test."""
    padded = password + b"\x00" * (-len(password) % 16)
    out, last = b"", authenticator
    for i in range(0, len(padded), 16):
        pad = hashlib.md5(secret + last).digest()
        last = bytes(a ^ b for a, b in zip(padded[i : i + 16], pad, strict=True))
        out += last
    return out


def _vsa(vendor: int, sub: int, value: bytes) -> bytes:
    return _attr(26, struct.pack("!LBB", vendor, sub, len(value) + 2) + value)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """A PAP Access-Request, mostly valid, in random shape."""
    authenticator = draw(st.binary(min_size=16, max_size=16))
    ident = draw(st.integers(0, 255))
    secret = draw(st.sampled_from([SECRET, SECRET, SECRET, b"wrong-secret"]))
    name = draw(
        st.sampled_from([n.encode() for n in KNOWN] + [b"nobody", b""])
        | st.text(max_size=20).map(str.encode)
        | st.binary(max_size=20)  # not always UTF-8
    )
    known = KNOWN.get(name.decode("utf-8", "replace"), "x")
    password = draw(st.sampled_from([known, "wrong"]) | st.text(max_size=40)).encode()[:128]
    attrs: list[bytes] = []
    if draw(st.integers(0, 9)):
        attrs.append(_attr(1, name))
    if draw(st.booleans()) and attrs:
        attrs.append(_attr(1, b"second-name"))
    kind = draw(st.sampled_from(["pap"] * 8 + ["nopw", "badlen", "chap", "ms", "vsa"]))
    if kind != "nopw":
        hidden = _hide(password, authenticator, secret)
        if kind == "badlen":
            hidden = hidden[:-1] if hidden else b"x"
        attrs.append(_attr(2, hidden))
    if kind == "chap":
        attrs.append(_attr(3, b"\x01" + os.urandom(16)))
    if kind == "ms":  # Microsoft attributes go to pyrad (not an MS-CHAP2-Response: its
        # reject carries a random challenge, so two runs could never be byte-identical)
        attrs.append(_vsa(311, 11, draw(st.binary(min_size=16, max_size=16))))
    if kind == "vsa":  # a MikroTik attribute and a short vendor attribute, both ignored
        attrs.append(_vsa(14988, 10, b"10.0.0.1"))
        attrs.append(_attr(26, b"\x00\x00\x01\x37"))
    for value in draw(st.lists(st.binary(min_size=0, max_size=40), max_size=3)):
        attrs.append(_attr(33, value))  # Proxy-State, copied into the reply in order
    attrs.append(_attr(4, b"\x7f\x00\x00\x01"))  # NAS-IP-Address
    attrs.append(_attr(31, MAC.encode()))
    for code, value in draw(st.lists(st.tuples(st.integers(4, 100), st.binary(max_size=20)), max_size=3)):
        if code not in (26, 80):
            attrs.append(_attr(code, value))
    attrs = draw(st.permutations(attrs))
    ma = draw(st.sampled_from(["good", "good", "none", "bad", "short", "twice"]))
    if ma != "none":
        at = draw(st.integers(0, len(attrs)))
        value = b"\x00" * (15 if ma == "short" else 16)
        attrs.insert(at, _attr(80, value))
        if ma == "twice":
            attrs.append(_attr(80, b"\x00" * 16))
    body = b"".join(attrs)
    header = struct.pack("!BBH", 1, ident, 20 + len(body)) + authenticator
    raw = header + body
    if ma in ("good", "twice"):
        pos = 20 + sum(len(a) for a in attrs[:at])
        digest = hmac.new(secret, raw, "md5").digest()
        raw = raw[: pos + 2] + digest + raw[pos + 18 :]
    if ma == "bad":
        raw = raw[:-1] + bytes((raw[-1] ^ 1,))
    return raw


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A request with bytes flipped, cut off, appended, or a wrong Length field."""
    raw = bytearray(draw(requests()))
    how = draw(st.sampled_from(["flip", "truncate", "append", "length"]))
    if how == "flip":
        for _ in range(draw(st.integers(1, 3))):
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    elif how == "truncate":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif how == "append":
        raw += draw(st.binary(min_size=1, max_size=30))
    else:
        raw[2:4] = draw(st.integers(0, len(raw) + 20)).to_bytes(2, "big")
    return bytes(raw)


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(requests() | mutated(), min_size=1, max_size=6),
    st.booleans(),
    st.booleans(),
)
def test_fast_path_replies_byte_for_byte_as_pyrad(
    datagrams: list[bytes], require_ma: bool, repeat: bool
) -> None:
    if repeat:  # retransmissions: answered from the dedup cache on both paths
        datagrams = datagrams + datagrams[:2]
    backend = _backend(require_ma)
    assert _run(True, backend, datagrams) == _run(False, backend, datagrams)


def test_fast_path_takes_plain_pap_and_leaves_the_rest() -> None:
    """The comparison above would pass vacuously if the fast path never ran."""
    server = RadiusServer(_backend(True), "127.0.0.1", 0, 0)
    proto = _Protocol("127.0.0.1", 0, server.logger, server, ServerType.Auth, {}, None)
    transport = _Transport()
    proto.transport = transport  # type: ignore[assignment]
    auth = os.urandom(16)
    pap = _attr(1, b"alice") + _attr(2, _hide(b"alice-pw", auth, SECRET))
    chap = _attr(1, b"alice") + _attr(3, b"\x01" + os.urandom(16))
    ms = pap + _vsa(311, 11, os.urandom(16)) + _vsa(311, 25, os.urandom(50))
    for body, taken in ((pap, True), (chap, False), (ms, False)):
        raw = struct.pack("!BBH", 1, 7, 38 + len(body)) + auth + _attr(80, b"\x00" * 16) + body
        raw = raw[:22] + hmac.new(SECRET, raw, "md5").digest() + raw[38:]
        assert (fastpap.parse(raw, SECRET, True) is not None) is taken
        fields = fastpap.scan(raw, len(raw))
        assert (fields is not None) is taken  # CHAP and MS-CHAP are left to pyrad
        if fields is None:
            continue
        assert isinstance(fields, tuple)
        key = ("127.0.0.1", NAS_ADDR[1], 1, 7, auth)
        nas = server.backend.nas("127.0.0.1")
        assert nas is not None
        assert server._fast_pap(proto, raw, NAS_ADDR, nas, key, fields, len(raw))
    assert server.stats.access_accepts == 1
    assert len(transport.sent) == 1 and transport.sent[0][0] == 2  # Access-Accept


def _pap_request(name: str, password: str, ident: int, proxy: bytes = b"") -> bytes:
    """A signed PAP Access-Request (Message-Authenticator first), as a MikroTik sends it."""
    authenticator = os.urandom(16)
    body = (
        _attr(1, name.encode())
        + _attr(2, _hide(password.encode(), authenticator, SECRET))
        + _attr(4, b"\x7f\x00\x00\x01")
        + _attr(31, MAC.encode())
        + proxy
    )
    raw = struct.pack("!BBH", 1, ident, 38 + len(body)) + authenticator + _attr(80, b"\x00" * 16) + body
    return raw[:22] + hmac.new(SECRET, raw, "md5").digest() + raw[38:]


def test_every_kind_of_subscriber_answered_as_pyrad_answers() -> None:
    """Each subscriber of the backend (fixed answers, sessions limits under and over, device
    binding, data packages, suspended with a message), right and wrong password, asked
    twice (the second time from the per-subscriber cache): byte-identical to pyrad's."""
    datagrams = []
    for i, (name, password) in enumerate(sorted(KNOWN.items())):
        for j, pw in enumerate((password, "wrong", password)):
            datagrams.append(_pap_request(name, pw, (3 * i + j) % 256, _attr(33, b"ps") if j else b""))
    backend = _backend(True)
    fast, slow = _run(True, backend, datagrams), _run(False, backend, datagrams)
    assert fast == slow
    replies, stats, lines, _ = fast
    assert all(len(r) == 1 for r in replies)
    by_user = {line.split("user=")[1].split()[0]: line for line in lines if "result=" in line}
    assert "result=accept" in by_user["gus"] and "result=reject" in by_user["fay"]
    assert "result=accept" in by_user["hana"] and "result=reject" in by_user["hal"]
    erin = [r[0] for r, d in zip(replies, datagrams, strict=True) if b"erin" in d]
    assert erin[0][0] == 3 and b"Your account is suspended" in erin[0]  # her own Reply-Message
    assert stats["access_accepts"] == 2 * sum(1 for u in KNOWN if u not in ("bob", "erin", "fay", "hal"))


_REPLY_ATTRS = st.sampled_from(
    [
        ("Mikrotik-Rate-Limit", "10M/10M"),
        ("Mikrotik-Address-List", "jasiyo-suspended"),
        ("Acct-Interim-Interval", 300),
        ("Framed-IP-Address", "100.64.0.9"),
        ("Framed-Pool", "suspended"),
        ("WISPr-Bandwidth-Max-Up", 1_000_000),
        ("Service-Type", "Framed-User"),
        ("Service-Type", 2),
    ]
) | st.tuples(
    st.sampled_from(["Session-Timeout", "Mikrotik-Total-Limit", "Mikrotik-Total-Limit-Gigawords"]),
    st.integers(0, 2**32 - 1),
)


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.lists(_REPLY_ATTRS, max_size=8).map(tuple), min_size=1, max_size=5))
def test_attribute_encoder_matches_a_pyrad_packet(replies: list[tuple[Any, ...]]) -> None:
    """Encoded per attribute (the prepaid/data-package replies change one value per
    request), the reply is what one pyrad packet holding them all encodes: same values,
    grouped by attribute in order of first appearance. One encoder for all, as a server."""
    from collections import OrderedDict

    from pyrad.packet import Packet

    from jasiyo.radius.dictionaries import load_dictionary
    from jasiyo.radius.replies import AttributeEncoder

    d = load_dictionary()
    encoder = AttributeEncoder(d)
    for attrs in replies:
        whole = Packet(dict=d)
        for name, value in attrs:
            whole.AddAttribute(name, value)
        assert encoder.attributes(attrs) == tuple((k, v) for k, vs in OrderedDict.items(whole) for v in vs)
