"""FreeRADIUS's radclient, a client we did not write, against the server."""

from __future__ import annotations

import pytest

from jasiyo.radius.memory import MemoryBackend

from .conftest import RATE, ServerThread, radclient

pytestmark = pytest.mark.radclient

MA = "Message-Authenticator = 0x00\n"  # radclient signs the request only when asked this way


def test_pap_accept_with_rate_limit(radius: ServerThread) -> None:
    r = radclient(radius.server.auth_port, "auth",
                  f'User-Name = "alice"\nUser-Password = "alice-pw"\n{MA}')  # fmt: skip
    assert r.code == "Access-Accept", r.output
    assert r.attrs["Mikrotik-Rate-Limit"] == [RATE]
    assert r.attrs["Acct-Interim-Interval"] == ["300"]
    assert "Message-Authenticator" in r.attrs


def test_pap_reject(radius: ServerThread) -> None:
    r = radclient(radius.server.auth_port, "auth",
                  f'User-Name = "alice"\nUser-Password = "wrong"\n{MA}')  # fmt: skip
    assert r.code == "Access-Reject", r.output
    assert "Mikrotik-Rate-Limit" not in r.attrs


def test_chap_accept(radius: ServerThread) -> None:
    # given CHAP-Password as text, radclient computes the CHAP response itself
    r = radclient(radius.server.auth_port, "auth",
                  f'User-Name = "alice"\nCHAP-Password = "alice-pw"\n{MA}')  # fmt: skip
    assert r.code == "Access-Accept", r.output
    assert r.attrs["Mikrotik-Rate-Limit"] == [RATE]


def test_request_without_message_authenticator_is_dropped(radius: ServerThread) -> None:
    r = radclient(radius.server.auth_port, "auth",
                  'User-Name = "alice"\nUser-Password = "alice-pw"\n', timeout=2)  # fmt: skip
    assert r.code is None, r.output
    assert radius.wait_for(lambda: radius.stats.dropped_missing_message_authenticator == 1)


def test_status_server_answered(radius: ServerThread) -> None:
    r = radclient(radius.server.auth_port, "status", MA)
    assert r.code == "Access-Accept", r.output
    r = radclient(radius.server.acct_port, "status", MA)
    assert r.code == "Accounting-Response", r.output


def test_accounting_start_interim_stop_with_gigawords(radius: ServerThread, backend: MemoryBackend) -> None:
    common = 'User-Name = "alice"\nAcct-Session-Id = "81b00007"\nNAS-Port-Id = "ether2"\n'
    start = common + "Acct-Status-Type = Start\nFramed-IP-Address = 100.64.3.4\n"
    interim = common + (
        "Acct-Status-Type = Interim-Update\nAcct-Session-Time = 300\n"
        "Acct-Input-Octets = 1000\nAcct-Input-Gigawords = 1\n"
        "Acct-Output-Octets = 5000\nAcct-Output-Gigawords = 3\n"
    )
    stop = common + (
        "Acct-Status-Type = Stop\nAcct-Session-Time = 600\n"
        "Acct-Input-Octets = 2000\nAcct-Input-Gigawords = 1\n"
        "Acct-Output-Octets = 9000\nAcct-Output-Gigawords = 4\n"
        "Acct-Terminate-Cause = User-Request\n"
    )
    for text in (start, interim, stop):
        r = radclient(radius.server.acct_port, "acct", text)
        assert r.code == "Accounting-Response", r.output

    s, i, p = backend.records
    assert (s.status_type, i.status_type, p.status_type) == ("Start", "Interim-Update", "Stop")
    assert s.framed_ip == "100.64.3.4" and s.nas_port_id == "ether2"
    assert (i.input_octets, i.output_octets) == ((1 << 32) + 1000, (3 << 32) + 5000)
    assert (p.input_octets, p.output_octets) == ((1 << 32) + 2000, (4 << 32) + 9000)
    assert p.terminate_cause == "User-Request" and p.session_time == 600
    session = backend.sessions[("127.0.0.1", "81b00007")]
    assert not session.open and session.output_octets == (4 << 32) + 9000


def test_accounting_with_wrong_secret_is_dropped(radius: ServerThread) -> None:
    r = radclient(radius.server.acct_port, "acct",
                  'User-Name = "alice"\nAcct-Status-Type = Start\nAcct-Session-Id = "x"\n',
                  secret=b"not-the-secret", timeout=2)  # fmt: skip
    assert r.code is None, r.output
    assert radius.wait_for(lambda: radius.stats.dropped_bad_authenticator == 1)
