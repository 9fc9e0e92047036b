"""`jasiyo agent run` end to end: CLI changes reach RADIUS, accounting is durable, SIGTERM."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyrad.packet import AccessAccept, AccountingResponse, DisconnectACK, Packet

from jasiyo.config import Config
from jasiyo.radius.dictionaries import load_dictionary
from tests.agent.agentproc import AgentProcess, jasiyo
from tests.radius.support import acct_request, auth_request, decode_reply, radclient

SECRET = b"testing123"


@pytest.fixture
def agent(cfg: Config, tmp_path: Path) -> Iterator[AgentProcess]:
    jasiyo(
        cfg, "plan", "add", "home", "--rate", "10M/10M", "--price", "1500", "--burst", "20M/20M 8M/8M 16/16"
    )
    jasiyo(cfg, "subscriber", "add", "alice", "--plan", "home", "--password", "alice-pw")
    jasiyo(
        cfg,
        "router",
        "add",
        "local",
        "--driver",
        "mikrotik",
        "--host",
        "127.0.0.1",
        "--radius-secret",
        SECRET.decode(),
    )
    a = AgentProcess(cfg, tmp_path / "agent.log")
    yield a
    if a.proc.poll() is None:
        a.kill()


def exchange(port: int, pkt: Packet, timeout: float = 3.0) -> Packet | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(pkt.RequestPacket(), ("127.0.0.1", port))
        try:
            raw = s.recv(4096)
        except TimeoutError:
            return None
    return decode_reply(pkt, raw)


def login(cfg: Config, user: str, password: str) -> Packet | None:
    return exchange(
        cfg.radius.auth_port, auth_request(User_Name=user, User_Password=password, NAS_IP_Address="127.0.0.1")
    )


@pytest.mark.radclient
def test_cli_changes_reach_radius_within_a_second(agent: AgentProcess, cfg: Config) -> None:
    r = radclient(
        cfg.radius.auth_port,
        "auth",
        'User-Name = "alice"\nUser-Password = "alice-pw"\nMessage-Authenticator = 0x00\n',
    )
    assert r.code == "Access-Accept"
    assert r.attrs["Mikrotik-Rate-Limit"] == ["10M/10M 20M/20M 8M/8M 16/16"]

    jasiyo(cfg, "subscriber", "suspend", "alice", "--reason", "unpaid")
    # A fixed wait on purpose: the promise is "within a second" for every auth worker (each
    # refreshes its cache on its own; polling until one answers would not show that).
    time.sleep(1.0)
    r = radclient(
        cfg.radius.auth_port,
        "auth",
        'User-Name = "alice"\nUser-Password = "alice-pw"\nMessage-Authenticator = 0x00\n',
    )
    assert r.code == "Access-Accept"  # walled garden by default
    assert r.attrs["Mikrotik-Address-List"] == ["jasiyo-suspended"]
    assert r.attrs["Mikrotik-Rate-Limit"] == ["256k/256k"]

    jasiyo(cfg, "subscriber", "resume", "alice")
    jasiyo(cfg, "subscriber", "update", "alice", "--password", "new-pw")
    time.sleep(1.0)
    assert login(cfg, "alice", "alice-pw").code != AccessAccept
    reply = login(cfg, "alice", "new-pw")
    assert reply.code == AccessAccept and "Mikrotik-Address-List" not in reply


@pytest.mark.radclient
def test_accounting_recorded_with_gigawords(agent: AgentProcess, cfg: Config) -> None:
    base = (
        'User-Name = "alice"\nAcct-Session-Id = "81a00001"\nNAS-IP-Address = 127.0.0.1\n'
        "Framed-IP-Address = 100.64.0.7\n"
    )
    for body in (
        "Acct-Status-Type = Start\n",
        "Acct-Status-Type = Interim-Update\nAcct-Session-Time = 300\n"
        "Acct-Input-Octets = 5000\nAcct-Output-Octets = 7000\n",
        "Acct-Status-Type = Stop\nAcct-Session-Time = 600\nAcct-Input-Octets = 10\n"
        "Acct-Input-Gigawords = 2\nAcct-Output-Octets = 20\nAcct-Output-Gigawords = 1\n"
        "Acct-Terminate-Cause = User-Request\n",
    ):
        assert radclient(cfg.radius.acct_port, "acct", base + body).code == "Accounting-Response"
    out = jasiyo(cfg, "--json", "session", "list").stdout
    (sess,) = json.loads(out)
    assert sess["status"] == "closed" and sess["framed_ip"] == "100.64.0.7"
    assert sess["input_octets"] == 2 * 2**32 + 10 and sess["output_octets"] == 2**32 + 20
    assert sess["session_time"] == 600 and sess["terminate_cause"] == "User-Request"


def test_sigterm_stops_cleanly(agent: AgentProcess, cfg: Config) -> None:
    assert login(cfg, "alice", "alice-pw").code == AccessAccept
    assert agent.terminate() == 0
    log = agent.log()
    assert "agent.stop" in log and "Traceback" not in log
    assert "alice-pw" not in log and "testing123" not in log  # no secrets in logs


def test_session_disconnect_sends_disconnect_request(agent: AgentProcess, cfg: Config) -> None:
    nas = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    nas.bind(("127.0.0.1", 0))
    nas.settimeout(10)
    port = nas.getsockname()[1]
    # Point the router's CoA port at our listener: remove and re-add it.
    jasiyo(cfg, "router", "remove", "local")
    jasiyo(
        cfg,
        "router",
        "add",
        "local",
        "--driver",
        "mikrotik",
        "--host",
        "127.0.0.1",
        "--radius-secret",
        SECRET.decode(),
        "--coa-port",
        str(port),
    )
    time.sleep(0.5)
    start = acct_request(
        User_Name="alice",
        Acct_Status_Type="Start",
        Acct_Session_Id="81b00002",
        NAS_IP_Address="127.0.0.1",
        Framed_IP_Address="100.64.0.8",
    )
    assert exchange(cfg.radius.acct_port, start).code == AccountingResponse

    seen: list[Packet] = []

    def play_nas() -> None:
        raw, addr = nas.recvfrom(4096)
        req = Packet(packet=raw, secret=SECRET, dict=load_dictionary())
        seen.append(req)
        reply = req.CreateReply()
        reply.code = DisconnectACK
        nas.sendto(reply.ReplyPacket(), addr)

    t = threading.Thread(target=play_nas)
    t.start()
    out = jasiyo(cfg, "--json", "session", "disconnect", "alice").stdout
    t.join(10)
    nas.close()
    assert json.loads(out)["results"][0]["result"] == "ack"
    (req,) = seen
    assert req["User-Name"] == ["alice"] and req["Acct-Session-Id"] == ["81b00002"]
    active = json.loads(jasiyo(cfg, "--json", "session", "list", "--active").stdout)
    assert active == []


def test_sigkill_loses_no_acknowledged_accounting(agent: AgentProcess, cfg: Config) -> None:
    """Flood Accounting-Start; SIGKILL mid-flood; every acknowledged record is in the store."""
    acked: set[str] = set()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    pending: dict[int, str] = {}
    sent = 0
    killed = False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not killed and len(pending) < 64 and sent < 100_000:
            sid = f"flood{sent:06d}"
            pkt = acct_request(
                User_Name="alice", Acct_Status_Type="Start", Acct_Session_Id=sid, NAS_IP_Address="127.0.0.1"
            )
            pkt.id = sent % 256
            if pkt.id in pending:
                pass
            else:
                sock.sendto(pkt.RequestPacket(), ("127.0.0.1", cfg.radius.acct_port))
                pending[pkt.id] = sid
                sent += 1
        try:
            while True:
                raw = sock.recv(4096)
                sid = pending.pop(raw[1], None)
                if sid:
                    acked.add(sid)
        except BlockingIOError:
            pass
        if not killed and len(acked) >= 2000:
            agent.kill()
            killed = True
            deadline = time.monotonic() + 0.5  # drain replies already in our socket buffer
        time.sleep(0)
    sock.close()
    assert killed, f"only {len(acked)} acknowledged before the deadline"
    conn = sqlite3.connect(cfg.db_path)
    stored = {
        r[0] for r in conn.execute("SELECT acct_session_id FROM accounting WHERE status_type = 'Start'")
    }
    conn.close()
    assert acked <= stored, f"{len(acked - stored)} acknowledged records lost"
