"""The server over real UDP, driven by pyrad's client-side packets."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
from pyrad.packet import AccessAccept, AccessReject, AccountingResponse, AcctPacket, AuthPacket

from jasiyo.radius import mschap
from jasiyo.radius.backend import AcctRecord, NasClient
from jasiyo.radius.dictionaries import load_dictionary
from jasiyo.radius.memory import MemoryBackend

from .conftest import RATE, SECRET, ServerThread, acct_request, auth_request, decode_reply


def pap(radius: ServerThread, udp: Any, user: str, password: str) -> Any:
    req = auth_request(User_Name=user, User_Password=password, NAS_Identifier="core-1")
    raw = udp(radius.server.auth_port).exchange(req.RequestPacket())
    assert raw is not None, "no reply"
    return decode_reply(req, raw)


def test_pap_accept_carries_plan_attributes(radius: ServerThread, udp: Any) -> None:
    reply = pap(radius, udp, "alice", "alice-pw")
    assert reply.code == AccessAccept
    assert reply["Mikrotik-Rate-Limit"] == [RATE]
    assert reply["Acct-Interim-Interval"] == [300]
    assert reply["Session-Timeout"] == [86400]
    assert "Framed-IP-Address" not in reply
    assert radius.stats.access_accepts == 1


def test_pap_wrong_password_and_unknown_user_get_the_same_generic_reject(
    radius: ServerThread, udp: Any
) -> None:
    wrong = pap(radius, udp, "alice", "nope")
    unknown = pap(radius, udp, "mallory", "alice-pw")
    for reply in (wrong, unknown):
        assert reply.code == AccessReject
        assert reply["Reply-Message"] == ["Authentication failed"]
        assert "Mikrotik-Rate-Limit" not in reply
    assert radius.stats.access_rejects == 2


def test_billing_states_shape_the_reply(radius: ServerThread, udp: Any) -> None:
    assert pap(radius, udp, "bob", "bob-pw").code == AccessReject
    garden = pap(radius, udp, "carol", "carol-pw")
    assert garden.code == AccessAccept
    assert garden["Mikrotik-Rate-Limit"] == ["256k/256k"]
    assert garden["Mikrotik-Address-List"] == ["suspended"]
    static = pap(radius, udp, "dave", "dave-pw")
    assert static["Framed-IP-Address"] == ["100.64.0.9"]


def test_chap_accept_and_reject(radius: ServerThread, udp: Any) -> None:
    for password, code in (("alice-pw", AccessAccept), ("wrong", AccessReject)):
        challenge = os.urandom(16)
        req = auth_request(User_Name="alice", CHAP_Challenge=challenge)
        chap = b"\x07" + hashlib.md5(b"\x07" + password.encode() + challenge).digest()
        req["CHAP-Password"] = chap
        reply = decode_reply(req, udp(radius.server.auth_port).exchange(req.RequestPacket()))
        assert reply.code == code


def mschap2_request(user: bytes, password: str) -> tuple[AuthPacket, bytes, bytes]:
    auth_challenge, peer_challenge = os.urandom(16), os.urandom(16)
    nt = mschap.generate_nt_response(auth_challenge, peer_challenge, user, password)
    req = auth_request(User_Name=user.decode())
    req["MS-CHAP-Challenge"] = auth_challenge
    req["MS-CHAP2-Response"] = b"\x2a\x00" + peer_challenge + b"\x00" * 8 + nt
    return req, auth_challenge, peer_challenge


def test_mschapv2_end_to_end(radius: ServerThread, udp: Any) -> None:
    req, auth_challenge, peer_challenge = mschap2_request(b"alice", "alice-pw")
    raw = udp(radius.server.auth_port).exchange(req.RequestPacket())
    assert raw is not None
    reply = decode_reply(req, raw)
    assert reply.code == AccessAccept
    assert reply["Mikrotik-Rate-Limit"] == [RATE]

    # the peer checks the server knew the password: S= matches its own computation
    nt = req["MS-CHAP2-Response"][0][26:]
    pw_hash = mschap.nt_password_hash("alice-pw")
    expected = mschap.generate_authenticator_response(pw_hash, nt, peer_challenge, auth_challenge, b"alice")
    assert reply["MS-CHAP2-Success"] == [b"\x2a" + expected]

    # the NAS decrypts the MPPE keys with the secret and its Request Authenticator
    master = mschap.get_master_key(mschap.hash_nt_password_hash(pw_hash), nt)
    send = mschap.decrypt_mppe_key(dict.get(reply, (311, 16))[0], SECRET, req.authenticator)
    recv = mschap.decrypt_mppe_key(dict.get(reply, (311, 17))[0], SECRET, req.authenticator)
    assert send == mschap.get_asymmetric_start_key(master, 16, True, True)
    assert recv == mschap.get_asymmetric_start_key(master, 16, False, True)
    assert reply["MS-MPPE-Encryption-Policy"] == ["Encryption-Allowed"]
    assert reply["MS-MPPE-Encryption-Types"] == ["RC4-40or128-bit-Allowed"]


def test_mschapv2_wrong_password_gets_ms_chap_error(radius: ServerThread, udp: Any) -> None:
    req, _, _ = mschap2_request(b"alice", "not-it")
    reply = decode_reply(req, udp(radius.server.auth_port).exchange(req.RequestPacket()))
    assert reply.code == AccessReject
    error = dict.get(reply, (311, 2))[0]  # raw bytes: ident + text
    assert error[:1] == b"\x2a" and error[1:].startswith(b"E=691 R=0 C=")
    assert b" V=3" in error
    assert "MS-CHAP2-Success" not in reply


def test_status_server_answered_on_both_ports(radius: ServerThread, udp: Any) -> None:
    auth = AuthPacket(code=12, secret=SECRET, dict=load_dictionary(), message_authenticator=True)
    auth.authenticator = auth.CreateAuthenticator()
    reply = decode_reply(auth, udp(radius.server.auth_port).exchange(auth.RequestPacket()))
    assert reply.code == AccessAccept
    acct = AcctPacket(code=12, secret=SECRET, dict=load_dictionary())
    raw = udp(radius.server.acct_port).exchange(acct.RequestPacket())
    assert raw is not None and decode_reply(acct, raw).code == AccountingResponse
    # RFC 5997: a Status-Server without Message-Authenticator is dropped
    bare = AcctPacket(code=12, secret=SECRET, dict=load_dictionary(), message_authenticator=False)
    assert udp(radius.server.acct_port).exchange(bare.RequestPacket(), timeout=0.5) is None
    assert radius.wait_for(lambda: radius.stats.status_server == 2), radius.stats


def test_missing_message_authenticator_dropped_unless_nas_opts_out(
    radius: ServerThread, udp: Any, backend: MemoryBackend, caplog: pytest.LogCaptureFixture
) -> None:
    req = auth_request(ma=False, User_Name="alice", User_Password="alice-pw")
    assert udp(radius.server.auth_port).exchange(req.RequestPacket(), timeout=0.5) is None
    assert radius.wait_for(lambda: radius.stats.dropped_missing_message_authenticator == 1)

    backend.add_nas(NasClient("old-rb", "127.0.0.1", SECRET, require_message_authenticator=False))
    for _ in range(2):
        req = auth_request(ma=False, User_Name="alice", User_Password="alice-pw")
        reply = decode_reply(req, udp(radius.server.auth_port).exchange(req.RequestPacket()))
        assert reply.code == AccessAccept
        assert "Message-Authenticator" in reply  # replies always carry it
    warnings = [r for r in caplog.records if "radius.no_message_authenticator" in r.getMessage()]
    assert len(warnings) == 1 and "old-rb" in warnings[0].getMessage()


def interim(session: str, in_octets: int, in_giga: int, out_octets: int, out_giga: int) -> Any:
    return acct_request(
        User_Name="alice", Acct_Status_Type="Interim-Update", Acct_Session_Id=session,
        Acct_Input_Octets=in_octets, Acct_Input_Gigawords=in_giga,
        Acct_Output_Octets=out_octets, Acct_Output_Gigawords=out_giga,
        Acct_Session_Time=600, Framed_IP_Address="100.64.1.2",
    )  # fmt: skip


def test_accounting_stored_with_gigawords_before_the_reply(
    radius: ServerThread, udp: Any, backend: MemoryBackend
) -> None:
    req = interim("81a00001", 5, 2, 7, 1)
    raw = udp(radius.server.acct_port).exchange(req.RequestPacket())
    assert raw is not None and decode_reply(req, raw).code == AccountingResponse
    # the reply came after the commit, so the record is already there
    [rec] = backend.records
    assert rec.status_type == "Interim-Update"
    assert rec.input_octets == (2 << 32) + 5
    assert rec.output_octets == (1 << 32) + 7
    assert rec.framed_ip == "100.64.1.2" and rec.session_time == 600


def test_accounting_retransmission_stored_once_answered_twice(
    radius: ServerThread, udp: Any, backend: MemoryBackend
) -> None:
    client = udp(radius.server.acct_port)
    data = interim("81a00002", 1000, 0, 2000, 0).RequestPacket()
    first = client.exchange(data)
    second = client.exchange(data)
    assert first is not None and second == first
    assert len(backend.records) == 1
    assert radius.stats.duplicates_resent == 1


def test_access_request_retransmission_gets_identical_reply(radius: ServerThread, udp: Any) -> None:
    client = udp(radius.server.auth_port)
    req, _, _ = mschap2_request(b"alice", "alice-pw")
    data = req.RequestPacket()
    first, second = client.exchange(data), client.exchange(data)
    assert first is not None and first == second  # same MPPE salts: it is the cached reply
    assert radius.stats.access_requests == 1 and radius.stats.duplicates_resent == 1


class FailingOnce(MemoryBackend):
    """A backend whose first write fails, like a full disk that recovers."""

    failures = 1

    def record_accounting(self, records: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        super().record_accounting(records)


def test_failed_write_is_not_acknowledged_and_retransmission_succeeds(udp: Any) -> None:
    from .conftest import make_backend

    backend = FailingOnce()
    for nas in make_backend().nases.values():
        backend.add_nas(nas)
    st = ServerThread(backend)
    try:
        client = udp(st.server.acct_port)
        data = interim("81a00003", 1, 0, 1, 0).RequestPacket()
        assert client.exchange(data, timeout=1.0) is None
        assert st.wait_for(lambda: st.stats.acct_write_failures == 1), st.stats
        assert backend.records == []
        assert client.exchange(data) is not None
        assert len(backend.records) == 1
    finally:
        st.close()


def test_accounting_on_closes_open_sessions(radius: ServerThread, udp: Any, backend: MemoryBackend) -> None:
    client = udp(radius.server.acct_port)
    start = acct_request(User_Name="alice", Acct_Status_Type="Start", Acct_Session_Id="s1")
    assert client.exchange(start.RequestPacket()) is not None
    assert [s.acct_session_id for s in backend.open_sessions()] == ["s1"]
    on = acct_request(Acct_Status_Type="Accounting-On", NAS_Identifier="core-1")
    assert client.exchange(on.RequestPacket()) is not None
    assert backend.open_sessions() == []
    assert [r.status_type for r in backend.records] == ["Start", "Accounting-On"]


def test_group_commit_batches_concurrent_requests(
    radius: ServerThread, udp: Any, backend: MemoryBackend
) -> None:
    client = udp(radius.server.acct_port)
    n = 200
    for i in range(n):
        client.sock.sendto(interim(f"g{i}", i, 0, i, 0).RequestPacket(), ("127.0.0.1", client.port))
    answers = [client.receive() for _ in range(n)]
    assert all(a is not None for a in answers)
    assert len(backend.records) == n
    assert all(isinstance(r, AcctRecord) for r in backend.records)
    assert backend.batches <= n  # equal only if every request found the writer idle


@pytest.mark.slow
def test_sigkill_during_accounting_flood_loses_nothing_acknowledged(tmp_path: Any, udp: Any) -> None:
    """Every Accounting-Response the NAS saw is for a record already on disk."""
    import json
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    journal = tmp_path / "acct.jsonl"
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.radius.durable_server", str(journal)],
        cwd=root, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        acct_port = int(line.split()[2])
        client = udp(acct_port)
        sent: dict[int, str] = {}  # packet id -> session id, a window of up to 200
        acked: set[str] = set()
        n = 0
        deadline = time.monotonic() + 20
        while len(acked) < 1500 and time.monotonic() < deadline:
            while len(sent) < 200:
                sid = f"flood-{n}"
                pkt = acct_request(Acct_Status_Type="Start", Acct_Session_Id=sid, User_Name="u")
                pkt.id = n % 256
                if pkt.id in sent:
                    break
                client.sock.sendto(pkt.RequestPacket(), ("127.0.0.1", acct_port))
                sent[pkt.id] = sid
                n += 1
            raw = client.receive(2.0)
            if raw is None:
                break
            acked.add(sent.pop(raw[1]))
        proc.send_signal(signal.SIGKILL)  # mid-flood: up to 200 requests still in flight
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
    stored = {json.loads(x)["acct_session_id"] for x in journal.read_text().splitlines()}
    assert len(acked) >= 1000
    assert acked <= stored, f"acknowledged but lost: {sorted(acked - stored)[:5]}"


def test_port_in_use_is_a_clear_error(backend: MemoryBackend) -> None:
    import asyncio
    import socket

    from jasiyo.errors import RadiusError
    from jasiyo.radius.server import RadiusServer

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]

        async def go() -> None:
            server = RadiusServer(backend, "127.0.0.1", port, 0)
            with pytest.raises(RadiusError, match=f"cannot listen for RADIUS on udp 127.0.0.1:{port}"):
                await server.start()
            await server.stop()  # harmless after a failed start

        asyncio.run(go())


def test_start_twice_refused(radius: ServerThread) -> None:
    from jasiyo.errors import RadiusError

    with pytest.raises(RadiusError, match="already running"):
        radius.call(radius.server.start())


def test_proxy_state_echoed_in_order(radius: ServerThread, udp: Any) -> None:
    req = auth_request(User_Name="alice", User_Password="alice-pw")
    req.AddAttribute("Proxy-State", b"hop-1")
    req.AddAttribute("Proxy-State", b"hop-2")
    reply = decode_reply(req, udp(radius.server.auth_port).exchange(req.RequestPacket()))
    assert reply["Proxy-State"] == [b"hop-1", b"hop-2"]
