"""Session limits over real RADIUS (pyrad packets over UDP to the real server on the real
store): vouchers, short and data packages, Simultaneous-Use, MAC binding, paid-through time.
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyrad.packet import AccessAccept, AccessReject, Packet

from jasiyo.agent import billing, hotspot, plans, routers, vouchers
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import Config
from tests.agent.test_lifecycle import RadiusThread
from tests.conftest import make_config
from tests.radius.conftest import acct_request, auth_request, decode_reply

SECRET = b"nas-secret-123"
MAC_A = "AA:BB:CC:00:00:0A"
MAC_B = "AA:BB:CC:00:00:0B"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Config, Store, RadiusThread]]:
    cfg = make_config(tmp_path)
    store = Store.open(cfg)
    routers.add(store, "hs-1", driver="mikrotik", host="127.0.0.1", radius_secret=SECRET.decode(), actor="t")
    plans.add(store, plans.build("1h", rate="2M/2M", price="10", period="1h", portal=True), "t")
    plans.add(store, plans.build("2gb", rate="5M/5M", price="100", period="7d", data="2G"), "t")
    plans.add(store, plans.build("5gb", rate="5M/5M", price="200", period="7d", data="5G"), "t")
    plans.add(store, plans.build("home", rate="10M/10M", price="1500", period="30d"), "t")
    radius = RadiusThread(cfg)
    yield cfg, store, radius
    radius.close()
    store.close()


def _exchange(port: int, pkt: Packet) -> Packet:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5.0)
        s.sendto(pkt.RequestPacket(), ("127.0.0.1", port))
        raw = s.recv(4096)
    return decode_reply(pkt, raw)


def login(radius: RadiusThread, user: str, password: str, mac: str | None = MAC_A) -> Packet:
    extra: dict[str, Any] = {"Calling_Station_Id": mac} if mac else {}
    return _exchange(
        radius.server.auth_port,
        auth_request(
            secret=SECRET, User_Name=user, User_Password=password, NAS_IP_Address="127.0.0.1", **extra
        ),
    )


def chap_login(radius: RadiusThread, user: str, password: str, mac: str = MAC_A) -> Packet:
    """CHAP, as a MikroTik hotspot sends it by default."""
    pkt = auth_request(secret=SECRET, User_Name=user, NAS_IP_Address="127.0.0.1", Calling_Station_Id=mac)
    challenge, ident = b"0123456789abcdef", 7
    pkt.AddAttribute("CHAP-Challenge", challenge)
    pkt.AddAttribute(
        "CHAP-Password", bytes([ident]) + hashlib.md5(bytes([ident]) + password.encode() + challenge).digest()
    )
    return _exchange(radius.server.auth_port, pkt)


def account(
    radius: RadiusThread,
    user: str,
    sid: str,
    status: str = "Start",
    *,
    mac: str = MAC_A,
    ago: int = 0,
    octets: int = 0,
    session_time: int = 0,
) -> None:
    """An Accounting-Request; ``ago`` sets Acct-Delay-Time (the event was that long ago)."""
    _exchange(
        radius.server.acct_port,
        acct_request(
            secret=SECRET,
            User_Name=user,
            Acct_Session_Id=sid,
            Acct_Status_Type=status,
            NAS_IP_Address="127.0.0.1",
            Calling_Station_Id=mac,
            Acct_Delay_Time=ago,
            Acct_Input_Octets=octets,
            Acct_Session_Time=session_time,
        ),
    )


def timeout_of(reply: Packet) -> int:
    assert reply.code == AccessAccept, reply.get("Reply-Message")
    return reply["Session-Timeout"][0]


def rejected(reply: Packet, message: str) -> bool:
    return reply.code == AccessReject and message in reply["Reply-Message"][0]


def eventually(check: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def wait_for_cache(radius: RadiusThread) -> None:
    """The backend re-reads the store's auth_rev every 0.25 s: give it one turn."""
    deadline = time.monotonic() + 5
    rev = radius.backend._rev
    while time.monotonic() < deadline and radius.backend._rev == rev:
        time.sleep(0.05)
        radius.backend._fresh()


def test_one_hour_voucher_gets_3600_at_first_login_and_less_later(env) -> None:
    cfg, store, radius = env
    (code,) = vouchers.generate(store, "1h", 1, "t")
    first = login(radius, code, code)
    assert timeout_of(first) == 3600
    assert first["Mikrotik-Rate-Limit"] == ["2M/2M"]
    account(radius, code, "v1", ago=600)  # logged in ten minutes ago: the clock started then
    assert store.scalar("SELECT pop FROM voucher_uses WHERE code = ?", (code,)) is not None
    wait_for_cache(radius)
    later = timeout_of(login(radius, code, code))
    assert 2990 <= later <= 3000
    # typed in another form at the login page (CHAP hashes the password as typed)
    typed = vouchers.display(code).lower()
    assert 2990 <= timeout_of(chap_login(radius, typed, typed)) <= 3000
    assert vouchers.get(store, code).status == "active"


def test_used_up_expired_and_revoked_vouchers_are_rejected_with_a_reason(env) -> None:
    cfg, store, radius = env
    used, expired, revoked, fresh = vouchers.generate(store, "1h", 4, "t")
    account(radius, used, "u1", ago=3700)  # started over an hour ago
    store.conn.execute("UPDATE vouchers SET valid_until = ? WHERE code = ?", (time.time() - 60, expired))
    vouchers.revoke(store, revoked, "t")
    wait_for_cache(radius)
    assert rejected(login(radius, used, used), "used up")
    assert rejected(login(radius, expired, expired), "expired")
    assert rejected(login(radius, revoked, revoked), "cancelled")
    # no oracle: an unknown code and a wrong password get the same generic answer
    unknown = login(radius, "ACDEF-GHJKM", "ACDEF-GHJKM")
    wrong = login(radius, fresh, "ACDEFGHJKM")
    assert rejected(unknown, "Authentication failed") and rejected(wrong, "Authentication failed")


def test_data_package_gets_the_total_limit_attributes(env) -> None:
    cfg, store, radius = env
    subs.add(store, subs.NewSubscriber.build("dan", password="dan-pw", plan="2gb"), "t")
    subs.add(store, subs.NewSubscriber.build("eve", password="eve-pw", plan="5gb"), "t")
    reply = login(radius, "dan", "dan-pw")
    assert reply.code == AccessAccept
    assert reply["Mikrotik-Total-Limit"] == [2_000_000_000]
    assert reply["Mikrotik-Total-Limit-Gigawords"] == [0]
    reply = login(radius, "eve", "eve-pw")
    assert reply["Mikrotik-Total-Limit"] == [5_000_000_000 - 2**32]
    assert reply["Mikrotik-Total-Limit-Gigawords"] == [1]
    # 500 MB used: what remains is offered at the next login
    account(radius, "dan", "d1")
    account(radius, "dan", "d1", "Stop", octets=500_000_000, session_time=60)
    assert login(radius, "dan", "dan-pw")["Mikrotik-Total-Limit"] == [1_500_000_000]
    # used up: refused with the reason, and an open session is disconnected
    account(radius, "dan", "d2")
    account(radius, "dan", "d2", "Interim-Update", octets=1_600_000_000, session_time=60)
    assert rejected(login(radius, "dan", "dan-pw"), "data is used up")
    assert hotspot.enforce_limits(store, time.time()) == 1
    job = store.one("SELECT action, acct_session_id, reason FROM enforce_jobs WHERE username = 'dan'")
    assert job == {"action": "disconnect", "acct_session_id": "d2", "reason": "package data used up"}


def test_second_device_on_a_one_device_package_is_refused(env) -> None:
    cfg, store, radius = env
    (code,) = vouchers.generate(store, "1h", 1, "t")
    assert login(radius, code, code, MAC_A).code == AccessAccept
    account(radius, code, "s1", mac=MAC_A)
    other = login(radius, code, code, MAC_B)
    assert rejected(other, "Already online on 1 device(s)")
    # the same device reconnecting (its Stop lost) is let in again
    assert login(radius, code, code, MAC_A.lower().replace(":", "-")).code == AccessAccept
    # a session gone stale does not count (seen within the backend's refresh interval)
    store.conn.execute("UPDATE radius_sessions SET last_update_at = last_update_at - 86400")
    assert eventually(lambda: login(radius, code, code, MAC_B).code == AccessAccept)


def test_prepaid_subscriber_session_timeout_ends_at_paid_until(env) -> None:
    cfg, store, radius = env
    subs.add(store, subs.NewSubscriber.build("pat", password="pat-pw", plan="home"), "t")
    until = time.time() + 5000
    with store.transaction():
        billing._set_paid_until(store, store.one("SELECT * FROM subscribers WHERE username = 'pat'"), until)
    t = timeout_of(login(radius, "pat", "pat-pw"))
    assert until - time.time() - 5 <= t <= until - time.time() + 1


def test_mac_binding_refuses_another_calling_station_id(env) -> None:
    cfg, store, radius = env
    subs.add(
        store, subs.NewSubscriber.build("mo", password="mo-pw", plan="home", mac="aa:bb:cc:00:00:0a"), "t"
    )
    assert rejected(login(radius, "mo", "mo-pw", MAC_B), "tied to another device")
    assert rejected(login(radius, "mo", "mo-pw", None), "tied to another device")
    assert login(radius, "mo", "mo-pw", "AA-BB-CC-00-00-0A").code == AccessAccept
    # a wrong password says nothing about the binding
    assert rejected(login(radius, "mo", "nope", MAC_B), "Authentication failed")


def test_portal_purchase_waits_for_payment_then_starts_at_first_login(env) -> None:
    from jasiyo.agent import payments

    cfg, store, radius = env
    access = hotspot.pending_purchase(store, cfg, plan="1h", phone="0712345678", mac=MAC_A)
    assert rejected(login(radius, access.username, access.password), "Waiting for your payment")
    paid_at = time.time() - 600  # paid ten minutes before the first login
    payments.record(store, cfg, access.username, "10", "QAZ1WSX2ED", method="mpesa", actor="t", at=paid_at)
    assert abs(subs.get(store, access.username).paid_until - (paid_at + 3600)) < 1
    wait_for_cache(radius)
    assert rejected(login(radius, access.username, access.password, MAC_B), "another device")
    assert timeout_of(login(radius, access.username, access.password)) == 3600
    account(radius, access.username, "p1", ago=120)  # the login, two minutes ago
    sub = subs.get(store, access.username)
    assert not sub.clock_pending
    assert sub.paid_until is not None and abs(sub.paid_until - (time.time() - 120 + 3600)) < 5
    wait_for_cache(radius)
    assert 3470 <= timeout_of(login(radius, access.username, access.password)) <= 3480


def test_a_device_guessing_codes_is_locked_out(env) -> None:
    cfg, store, radius = env
    (code,) = vouchers.generate(store, "1h", 1, "t")
    guesses = [vouchers.display(vouchers.new_code()) for _ in range(25)]
    for g in guesses:
        assert rejected(login(radius, g, g, MAC_B), "Authentication failed")
    # locked out now: even the right code from that device gets the generic reject
    assert rejected(login(radius, code, code, MAC_B), "Authentication failed")
    assert login(radius, code, code, MAC_A).code == AccessAccept  # other devices are not


def test_the_billing_tick_disconnects_a_voucher_past_its_time(env) -> None:
    cfg, store, radius = env
    (code,) = vouchers.generate(store, "1h", 1, "t")
    account(radius, code, "late", ago=3700)  # its NAS ignored Session-Timeout
    billing.tick(store, cfg, time.time())
    jobs = store.all("SELECT action, acct_session_id, reason FROM enforce_jobs WHERE username = ?", (code,))
    assert jobs == [{"action": "disconnect", "acct_session_id": "late", "reason": "voucher used"}]


def test_radclient_sees_the_voucher_reply(env) -> None:
    """FreeRADIUS's radclient, a client we did not write, reads the same attributes."""
    from tests.radius.conftest import radclient

    cfg, store, radius = env
    plans.add(store, plans.build("3h-5g", rate="4M/4M", price="30", period="3h", data="5G"), "t")
    (code,) = vouchers.generate(store, "3h-5g", 1, "t")
    res = radclient(
        radius.server.auth_port,
        "auth",
        f'User-Name = "{code}"\nUser-Password = "{code}"\n'
        f'Calling-Station-Id = "{MAC_A}"\nNAS-IP-Address = 127.0.0.1\n'
        "Message-Authenticator = 0x00\n",
        secret=SECRET,
    )
    assert res.code == "Access-Accept", res.output
    assert res.attrs["Session-Timeout"] == ["10800"]
    assert res.attrs["Mikrotik-Total-Limit"] == [str(5_000_000_000 - 2**32)]
    assert res.attrs["Mikrotik-Total-Limit-Gigawords"] == ["1"]
    account(radius, code, "rc1", ago=4 * 3600)  # first used four hours ago: over
    wait_for_cache(radius)
    res = radclient(
        radius.server.auth_port,
        "auth",
        f'User-Name = "{code}"\nUser-Password = "{code}"\n'
        f'Calling-Station-Id = "{MAC_A}"\nNAS-IP-Address = 127.0.0.1\n'
        "Message-Authenticator = 0x00\n",
        secret=SECRET,
    )
    assert res.code == "Access-Reject"
    assert res.attrs["Reply-Message"] == ["Your package time is used up"]
