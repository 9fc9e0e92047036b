"""A real NAS nobody here wrote: Debian's pppoe-server spawning pppd 2.4.9 with radius.so.

The NAS runs in a QEMU guest (this machine's kernel has no PPP; see :mod:`.qemu_guest`)
and talks RADIUS to the real ``jasiyo agent run`` on the host. PPPoE customers in another
network namespace of the guest log in by PAP, CHAP, MS-CHAPv2 and MS-CHAPv2 with MPPE-128;
a static customer gets its address as Framed-IP-Address; a suspended customer on this
generic NAS (which cannot walled-garden) is refused; every session's accounting Start and
Stop, octets included, shows in ``jasiyo session list``, even for sessions whose pppd sent
the same Acct-Session-Id (it is made of the start second).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.radius.accounting import nas_session_id
from tests.agent.agentproc import AgentProcess, jasiyo
from tests.conftest import make_config
from tests.nas.pppd_nas import Client, prepare
from tests.nas.qemu_guest import Guest, missing_tools

SECRET = "nas-secret-123"
STATIC_IP = "10.67.0.50"
CLIENTS = [
    Client("pap-user", "pap-pw-1", "pap", 0),
    Client("chap-user", "chap-pw-2", "chap", 1),
    Client("ms-user", "ms-pw-3", "mschapv2", 2),
    Client("mppe-user", "mppe-pw-4", "mppe", 3),
    Client("static-user", "static-pw-5", "pap", 4),
    Client("sue", "sue-pw-6", "chap", 5),  # suspended
    Client("twin-a", "twin-pw-7", "pap", 6),
    Client("twin-b", "twin-pw-8", "pap", 7),
]
UP = [c for c in CLIENTS if c.user != "sue"]

pytestmark = pytest.mark.slow


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
def agent(cfg: Config, tmp_path: Path) -> Iterator[AgentProcess]:
    jasiyo(cfg, "plan", "add", "home", "--rate", "10M/10M", "--price", "1500")
    for c in CLIENTS:
        extra = ["--service", "static", "--ip", STATIC_IP] if c.user == "static-user" else []
        jasiyo(cfg, "subscriber", "add", c.user, "--plan", "home", "--password", c.password, *extra)
    jasiyo(cfg, "subscriber", "suspend", "sue", "--reason", "unpaid")
    # pppd's radius.so sends no Message-Authenticator: this router needs the opt-out.
    jasiyo(
        cfg,
        "router",
        "add",
        "guest-nas",
        "--driver",
        "generic",
        "--host",
        "127.0.0.1",
        "--radius-secret",
        SECRET,
        "--no-require-message-authenticator",
    )
    a = AgentProcess(cfg, tmp_path / "agent.log")
    yield a
    if a.proc.poll() is None:
        a.terminate()


def test_pppoe_server_with_radius_plugin_against_the_agent(
    agent: AgentProcess, cfg: Config, tmp_path: Path
) -> None:
    missing = missing_tools()
    if missing:
        pytest.fail(f"the real-NAS test needs: {', '.join(missing)} (scripts/bootstrap --dev)")
    work = tmp_path / "guest"
    prepare(
        work, auth_port=cfg.radius.auth_port, acct_port=cfg.radius.acct_port, secret=SECRET, clients=CLIENTS
    )
    started = time.monotonic()
    with Guest(work) as guest:
        guest.wait(timeout=600)
    seconds = time.monotonic() - started
    print(f"guest boot + scenario: {seconds:.1f} s")
    context = (
        f"\n--- guest.log\n{guest.guest_log()}\n--- pppd-server.log\n"
        f"{_read(work / 'pppd-server.log')}\n--- agent log (tail)\n{agent.log()[-4000:]}"
    )
    assert "scenario: done" in guest.guest_log(), context

    sessions = json.loads(jasiyo(cfg, "--json", "session", "list").stdout)
    by_user: dict[str, list[dict]] = {}
    for s in sessions:
        by_user.setdefault(s["username"], []).append(s)

    # Every method came up, each a session of its own, Start and Stop with octets.
    for c in UP:
        assert len(by_user.get(c.user, [])) == 1, f"{c.user} ({c.method}): {by_user}{context}"
        s = by_user[c.user][0]
        assert s["status"] == "closed", s
        assert s["input_octets"] > 0 and s["output_octets"] > 0, s
        assert f"ppp{c.unit} ({c.user}) ping ok" in guest.guest_log(), context
    # ... and each one's Start and Stop were both heard
    store = Store.open(cfg)
    try:
        heard = store.all("SELECT username, status_type FROM accounting ORDER BY id")
    finally:
        store.close()
    for c in UP:
        kinds = [r["status_type"] for r in heard if r["username"] == c.user]
        assert kinds == ["Start", "Stop"], (c.user, kinds)
    # MPPE-128 was negotiated with the keys from the agent's MS-CHAPv2 accept.
    assert "MPPE 128-bit" in _read(work / "client-3.log"), _read(work / "client-3.log")
    # The static customer's address is the agent's Framed-IP-Address.
    assert by_user["static-user"][0]["framed_ip"] == STATIC_IP
    assert f"inet {STATIC_IP}" in _read(work / "addr-4.txt")
    # The suspended customer never got a session on this generic NAS, and the log says why.
    assert "sue" not in by_user
    assert "cannot hold a walled garden" in agent.log()
    assert "local  IP address" not in _read(work / "client-5.log")
    # pppd's Acct-Session-Id is the start second: sessions sharing one are all kept.
    raw_ids = [nas_session_id(s["acct_session_id"]) for s in sessions]
    shared = len(raw_ids) - len(set(raw_ids))
    print(f"sessions sharing an Acct-Session-Id with another: {shared}")
    assert len(sessions) == len(UP)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
