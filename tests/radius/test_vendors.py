"""The NAS's vendor decides the reply: real clients (pyrad packets over UDP, radclient)
against the real RadiusServer, one NAS of each kind at its own loopback address."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pyrad.packet import AccessAccept, AccessReject, AuthPacket, Packet

from jasiyo.network import Access, Service
from jasiyo.radius import vendors
from jasiyo.radius.backend import AuthSubject, NasClient
from jasiyo.radius.memory import MemoryBackend
from tests.radius.conftest import SECRET, ServerThread, auth_request, decode_reply, radclient, state
from tests.radius.test_server import mschap2_request

NAS = {
    "mikrotik": NasClient("ccr", "127.0.0.1", SECRET),
    "edgeos": NasClient("er-driven", "127.0.0.2", SECRET, vendor="edgeos"),
    "edgeos-radius-only": NasClient("er-plain", "127.0.0.3", SECRET, vendor="edgeos", walled_garden=False),
    "generic": NasClient("pppd", "127.0.0.4", SECRET, vendor="generic", walled_garden=False),
    "generic-pool": NasClient(
        "accel", "127.0.0.5", SECRET, vendor="generic", walled_garden=False, suspended_pool="jail"
    ),
}
RATE = "2M/10M 4M/20M 1M/5M 16/16"  # upload 2M, download 10M, with a burst WISPr cannot say


def _backend(nases: list[NasClient]) -> MemoryBackend:
    b = MemoryBackend()
    for n in nases:
        b.add_nas(n)
    b.add_subject(AuthSubject("alice", "alice-pw", state("alice", rate_limit=RATE, session_timeout=3600)))
    b.add_subject(
        AuthSubject(
            "carol",
            "carol-pw",
            state("carol", Access.WALLED_GARDEN, rate_limit="256k/512k", address_list="suspended"),
        )
    )
    b.add_subject(
        AuthSubject(
            "dave", "dave-pw", state("dave", service=Service.STATIC, ip="100.64.0.9", rate_limit=RATE)
        )
    )
    b.add_subject(
        AuthSubject(
            "sid",
            "sid-pw",
            state(
                "sid",
                Access.WALLED_GARDEN,
                service=Service.STATIC,
                ip="100.64.0.10",
                rate_limit="256k/256k",
                address_list="suspended",
            ),
        )
    )
    b.add_subject(AuthSubject("bob", "bob-pw", state("bob", Access.REJECT)))
    return b


@pytest.fixture
def server() -> Iterator[ServerThread]:
    st = ServerThread(_backend(list(NAS.values())))
    try:
        yield st
    finally:
        st.close()


def ask(server: ServerThread, nas: str, request: AuthPacket) -> Packet:
    """Send ``request`` from ``nas``'s own source address; the verified reply."""
    port = server.server.auth_port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((NAS[nas].address, 0))
        s.settimeout(5)
        s.sendto(request.RequestPacket(), ("127.0.0.1", port))
        return decode_reply(request, s.recv(4096))


def pap(server: ServerThread, nas: str, user: str) -> Packet:
    return ask(server, nas, auth_request(User_Name=user, User_Password=f"{user}-pw"))


def chap(server: ServerThread, nas: str, user: str) -> Packet:
    challenge = bytes(range(16))
    digest = hashlib.md5(b"\x07" + f"{user}-pw".encode() + challenge).digest()
    return ask(
        server, nas, auth_request(User_Name=user, CHAP_Password=b"\x07" + digest, CHAP_Challenge=challenge)
    )


def vendors_in(reply: Packet) -> set[int]:
    return {key[0] for key in dict.keys(reply) if isinstance(key, tuple)}


def get(reply: Packet, name: str) -> list[Any]:
    return reply[name] if name in reply else []


@pytest.mark.parametrize("login", [pap, chap], ids=["pap", "chap"])
def test_edgeos_gets_wispr_rates_in_bits_per_second(server: ServerThread, login: Any) -> None:
    reply = login(server, "edgeos", "alice")
    assert reply.code == AccessAccept
    assert get(reply, "WISPr-Bandwidth-Max-Up") == [2_000_000]
    assert get(reply, "WISPr-Bandwidth-Max-Down") == [10_000_000]
    assert vendors_in(reply) == {14122}  # no Mikrotik-* at all
    assert get(reply, "Session-Timeout") == [3600]
    assert get(reply, "Acct-Interim-Interval") == [300]


@pytest.mark.parametrize("login", [pap, chap], ids=["pap", "chap"])
def test_generic_nas_gets_only_standard_attributes(server: ServerThread, login: Any) -> None:
    reply = login(server, "generic", "dave")
    assert reply.code == AccessAccept
    assert vendors_in(reply) == set()
    assert get(reply, "Framed-IP-Address") == ["100.64.0.9"]
    assert get(reply, "Acct-Interim-Interval") == [300]


def test_mikrotik_reply_is_unchanged(server: ServerThread) -> None:
    reply = pap(server, "mikrotik", "alice")
    assert get(reply, "Mikrotik-Rate-Limit") == [RATE]
    assert vendors_in(reply) == {14988}
    walled = pap(server, "mikrotik", "carol")
    assert walled.code == AccessAccept
    assert get(walled, "Mikrotik-Address-List") == ["suspended"]


def test_mschapv2_on_a_generic_nas_keeps_the_mppe_keys(server: ServerThread) -> None:
    req, _, _ = mschap2_request(b"alice", "alice-pw")
    reply = ask(server, "generic", req)
    assert reply.code == AccessAccept
    assert vendors_in(reply) == {311}  # MS-CHAP2-Success and the MPPE keys, nothing else
    assert (311, 16) in dict.keys(reply) and (311, 17) in dict.keys(reply)


@pytest.mark.parametrize("nas", ["generic", "edgeos-radius-only"])
@pytest.mark.parametrize("user", ["carol", "sid"])
def test_suspended_is_rejected_where_the_nas_cannot_fence(
    server: ServerThread, nas: str, user: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="jasiyo.radius.server")
    assert pap(server, nas, user).code == AccessReject
    assert chap(server, nas, user).code == AccessReject
    assert "cannot hold a walled garden" in caplog.text
    assert pap(server, nas, "alice").code == AccessAccept  # the NAS itself still works


def test_suspended_goes_to_the_suspended_pool_when_one_is_set(server: ServerThread) -> None:
    for user in ("carol", "sid"):
        reply = pap(server, "generic-pool", user)
        assert reply.code == AccessAccept
        assert get(reply, "Framed-Pool") == ["jail"]
        assert get(reply, "Framed-IP-Address") == []  # a fixed address would escape the pool
        assert vendors_in(reply) == set()
    # an allowed static customer on that NAS keeps its address and no pool
    reply = pap(server, "generic-pool", "dave")
    assert get(reply, "Framed-IP-Address") == ["100.64.0.9"]
    assert get(reply, "Framed-Pool") == []


def test_suspended_on_a_driven_edgerouter_gets_the_walled_garden_rate(server: ServerThread) -> None:
    reply = pap(server, "edgeos", "carol")
    assert reply.code == AccessAccept  # the EdgeOS driver fences the session's address
    assert get(reply, "WISPr-Bandwidth-Max-Up") == [256_000]
    assert get(reply, "WISPr-Bandwidth-Max-Down") == [512_000]


def test_rejected_subscriber_is_rejected_everywhere(server: ServerThread) -> None:
    for nas in NAS:
        assert pap(server, nas, "bob").code == AccessReject


@pytest.mark.radclient
def test_radclient_sees_wispr_from_an_edgeos_nas() -> None:
    st = ServerThread(_backend([NasClient("er", "127.0.0.1", SECRET, vendor="edgeos")]))
    try:
        r = radclient(
            st.server.auth_port,
            "auth",
            'User-Name = "alice"\nUser-Password = "alice-pw"\nMessage-Authenticator = 0x00\n',
        )
    finally:
        st.close()
    assert r.code == "Access-Accept", r.output
    assert r.attrs["WISPr-Bandwidth-Max-Up"] == ["2000000"]
    assert r.attrs["WISPr-Bandwidth-Max-Down"] == ["10000000"]
    assert not [name for name in r.attrs if name.startswith("Mikrotik-")]


def test_coa_rate_attributes_follow_the_vendor() -> None:
    assert vendors.rate_attributes(RATE, "mikrotik") == {"Mikrotik-Rate-Limit": RATE}
    assert vendors.rate_attributes(RATE, "edgeos") == {
        "WISPr-Bandwidth-Max-Up": 2_000_000,
        "WISPr-Bandwidth-Max-Down": 10_000_000,
    }
    assert vendors.rate_attributes(RATE, "generic") == {}
