"""Routers of every vendor through the real CLI and store: `router add --driver generic`,
`--suspended-pool`, the vendor each router's RADIUS replies follow, generic-NAS accounting,
and an EdgeRouter shaping and fencing dynamic-IP PPPoE customers by their session's address.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyrad.packet import AccessAccept, AccessReject

from jasiyo.agent import enforce
from jasiyo.agent.keys import SecretBox, load_key
from jasiyo.agent.radius_backend import StoreBackend
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.drivers.edgeos.sim import EdgeOSSim
from jasiyo.radius import coa
from jasiyo.radius.backend import AcctRecord
from tests.agent.agentproc import AgentProcess, jasiyo
from tests.drivers.test_edgeos import EdgeOSInspector
from tests.radius.conftest import acct_request, auth_request, decode_reply

SECRET = "testing123"


def _backend(cfg: Config) -> StoreBackend:
    return StoreBackend(cfg, SecretBox(load_key(cfg.key_path)), refresh_interval=0)


def _home(cfg: Config) -> None:
    jasiyo(cfg, "plan", "add", "home", "--rate", "2M/10M", "--price", "1500")


# ------------------------------------------------------------------ the CLI


def test_generic_router_is_radius_only(cfg: Config) -> None:
    _home(cfg)
    out = json.loads(
        jasiyo(
            cfg,
            "--json",
            "router",
            "add",
            "pppd1",
            "--driver",
            "generic",
            "--host",
            "127.0.0.1",
            "--radius-secret",
            SECRET,
        ).stdout
    )
    assert out["router"]["driver"] == "generic"
    # no management API: giving a login is a mistake, said plainly
    proc = jasiyo(
        cfg,
        "router",
        "add",
        "pppd2",
        "--driver",
        "generic",
        "--host",
        "127.0.0.2",
        "--radius-secret",
        SECRET,
        "--username",
        "admin",
        "--password",
        "x",
        check=False,
    )
    assert proc.returncode == 1 and "RADIUS-only" in proc.stderr and "Traceback" not in proc.stderr
    # sync and check work, and touch no network: there is nothing to manage
    sync = json.loads(jasiyo(cfg, "--json", "router", "sync", "pppd1").stdout)
    assert sync["applied"] == [] and sync["failed"] == []
    info = json.loads(jasiyo(cfg, "--json", "router", "check", "pppd1").stdout)
    assert info["vendor"] == "generic" and info["managed"] == {}
    proc = jasiyo(cfg, "router", "import", "pppd1", check=False)
    assert proc.returncode != 0 and "RADIUS-only" in proc.stderr


def test_suspended_pool_is_set_validated_and_cleared(cfg: Config) -> None:
    jasiyo(
        cfg,
        "router",
        "add",
        "accel",
        "--driver",
        "generic",
        "--host",
        "127.0.0.1",
        "--radius-secret",
        SECRET,
        "--suspended-pool",
        "jail",
    )
    shown = json.loads(jasiyo(cfg, "--json", "router", "show", "accel").stdout)
    assert shown["options"]["suspended_pool"] == "jail"
    proc = jasiyo(cfg, "router", "update", "accel", "--suspended-pool", "two words", check=False)
    assert proc.returncode == 1 and "bad pool name" in proc.stderr
    assert "Traceback" not in proc.stderr
    jasiyo(cfg, "router", "update", "accel", "--suspended-pool", "")
    shown = json.loads(jasiyo(cfg, "--json", "router", "show", "accel").stdout)
    assert "suspended_pool" not in shown["options"]


def test_each_router_gets_its_vendor(cfg: Config, store: Store) -> None:
    for name, driver, host, extra in [
        ("ccr", "mikrotik", "127.0.0.1", ()),
        ("er-plain", "ubiquiti", "127.0.0.2", ()),
        ("er-driven", "ubiquiti", "127.0.0.3", ("--username", "ubnt", "--password", "pw")),
        ("pppd", "generic", "127.0.0.4", ("--suspended-pool", "jail")),
    ]:
        jasiyo(
            cfg, "router", "add", name, "--driver", driver, "--host", host, "--radius-secret", SECRET, *extra
        )
    b = _backend(cfg)
    got = {
        a: (n.vendor, n.walled_garden, n.suspended_pool)
        for a in ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
        if (n := b.nas(a))
    }
    b.close()
    assert got == {
        "127.0.0.1": ("mikrotik", True, ""),
        "127.0.0.2": ("edgeos", False, ""),
        "127.0.0.3": ("edgeos", True, ""),
        "127.0.0.4": ("generic", False, "jail"),
    }


# ------------------------------------------------------------------ the running agent


@pytest.fixture
def agent(cfg: Config, tmp_path: Path) -> Iterator[AgentProcess]:
    _home(cfg)
    jasiyo(cfg, "subscriber", "add", "alice", "--plan", "home", "--password", "alice-pw")
    jasiyo(cfg, "subscriber", "add", "sue", "--plan", "home", "--password", "sue-pw")
    jasiyo(cfg, "subscriber", "suspend", "sue", "--reason", "unpaid")
    jasiyo(
        cfg, "router", "add", "pppd", "--driver", "generic", "--host", "127.0.0.1", "--radius-secret", SECRET
    )
    a = AgentProcess(cfg, tmp_path / "agent.log")
    yield a
    if a.proc.poll() is None:
        a.terminate()


def _login(cfg: Config, user: str) -> object:
    req = auth_request(SECRET.encode(), User_Name=user, User_Password=f"{user}-pw")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(req.RequestPacket(), ("127.0.0.1", cfg.radius.auth_port))
        return decode_reply(req, s.recv(4096))


def _until(fn: object, want: object, timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        got = fn()  # type: ignore[operator]
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_suspended_on_generic_nas_rejected_then_pooled(cfg: Config, agent: AgentProcess) -> None:
    ok = _login(cfg, "alice")
    assert ok.code == AccessAccept  # type: ignore[attr-defined]
    assert not [k for k in dict.keys(ok) if isinstance(k, tuple)]  # type: ignore[call-overload]
    assert _login(cfg, "sue").code == AccessReject  # type: ignore[attr-defined]
    assert _until(lambda: "cannot hold a walled garden" in agent.log(), True)  # logged why
    jasiyo(cfg, "router", "update", "pppd", "--suspended-pool", "jail")

    # One poll for the whole answer: each auth worker refreshes its cache on its own, so an
    # Accept from one and a second login from another could disagree for a moment.
    def pooled() -> object:
        r = _login(cfg, "sue")
        try:
            return (r.code, r["Framed-Pool"])  # type: ignore[attr-defined, index]
        except KeyError:
            return (r.code, None)  # type: ignore[attr-defined]

    assert _until(pooled, (AccessAccept, ["jail"])) == (AccessAccept, ["jail"])


def test_generic_nas_sessions_sharing_an_id_are_both_kept(cfg: Config, agent: AgentProcess) -> None:
    """pppd 2.4.9 makes Acct-Session-Id from the start second: the NAS-Port tells apart."""
    for port, user in ((0, "alice"), (1, "sue")):
        req = acct_request(
            SECRET.encode(),
            Acct_Status_Type="Start",
            User_Name=user,
            Acct_Session_Id="%lX6b0ecc06%hX",
            NAS_Port=port,
            Framed_IP_Address=f"10.67.0.{100 + port}",
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(req.RequestPacket(), ("127.0.0.1", cfg.radius.acct_port))
            assert s.recv(4096)
    rows = json.loads(jasiyo(cfg, "--json", "session", "list", "--active").stdout)
    assert sorted((r["username"], r["framed_ip"]) for r in rows) == [
        ("alice", "10.67.0.100"),
        ("sue", "10.67.0.101"),
    ]
    # a Disconnect-Request names the session as the NAS does
    attrs = coa.session_attributes("alice", rows[0]["acct_session_id"])
    assert attrs["Acct-Session-Id"] == "%lX6b0ecc06%hX"


# ------------------------------------------------------------------ EdgeOS, dynamic IPs


@pytest.fixture
def sim() -> Iterator[EdgeOSSim]:
    with EdgeOSSim(users={"ubnt": "ssh-pass-1"}) as s:
        yield s


def test_edgeos_shapes_and_fences_a_dynamic_pppoe_customer(cfg: Config, store: Store, sim: EdgeOSSim) -> None:
    jasiyo(
        cfg,
        "router",
        "add",
        "er1",
        "--driver",
        "ubiquiti",
        "--host",
        "127.0.0.1",
        "--port",
        str(sim.port),
        "--username",
        "ubnt",
        "--password",
        "ssh-pass-1",
        "--radius-secret",
        SECRET,
        "--fingerprint",
        sim.host_key_fingerprint,
    )
    _home(cfg)
    jasiyo(cfg, "subscriber", "add", "dyn1", "--plan", "home", "--password", "pw")
    insp = EdgeOSInspector(sim.state.show_commands, sim.state.hand_edit)
    jasiyo(cfg, "router", "sync", "er1")
    assert insp.subscriber("dyn1") is None  # offline: no address to shape yet

    b = _backend(cfg)
    start = AcctRecord(
        nas_address="127.0.0.1",
        status_type="Start",
        received_at=time.time(),
        acct_session_id="s1",
        username="dyn1",
        framed_ip="100.64.9.7",
    )
    b.record_accounting([start])
    queued = [j for j in enforce.list_jobs(store, pending_only=True) if j.action == "reconcile"]
    assert [j.router for j in queued] == ["er1"]  # the session's address asks for a reconcile
    jasiyo(cfg, "router", "sync", "er1")
    got = insp.subscriber("dyn1")
    assert got is not None and got.rate is not None and not got.suspended
    assert (got.rate.rx, got.rate.tx) == (2_000_000, 10_000_000)

    jasiyo(cfg, "subscriber", "suspend", "dyn1", "--reason", "unpaid")
    jasiyo(cfg, "router", "sync", "er1")
    assert insp.subscriber("dyn1").suspended  # type: ignore[union-attr]

    b.record_accounting(
        [
            AcctRecord(
                nas_address="127.0.0.1",
                status_type="Stop",
                received_at=time.time() + 5,
                acct_session_id="s1",
                username="dyn1",
                framed_ip="100.64.9.7",
                session_time=5,
            )
        ]
    )
    b.close()
    jasiyo(cfg, "router", "sync", "er1")
    assert insp.subscriber("dyn1") is None  # the address went with the session


def test_an_address_reused_by_the_nas_goes_to_the_newer_session(cfg: Config, store: Store) -> None:
    from jasiyo.agent import desired
    from jasiyo.agent.session_ips import with_session_addresses

    _home(cfg)
    for user in ("old", "new", "fixed"):
        extra = ["--service", "static", "--ip", "100.64.9.9"] if user == "fixed" else []
        jasiyo(cfg, "subscriber", "add", user, "--plan", "home", "--password", "pw", *extra)
    b = _backend(cfg)
    now = time.time()
    b.record_accounting(
        [  # "old" never sent its Stop; the NAS gave its address to "new"
            AcctRecord(
                nas_address="127.0.0.1",
                status_type="Start",
                received_at=now - 60,
                acct_session_id="a",
                username="old",
                framed_ip="100.64.9.7",
            ),
            AcctRecord(
                nas_address="127.0.0.1",
                status_type="Start",
                received_at=now,
                acct_session_id="b",
                username="new",
                framed_ip="100.64.9.7",
            ),
            AcctRecord(
                nas_address="127.0.0.1",
                status_type="Start",
                received_at=now,
                acct_session_id="c",
                username="fixed",
                framed_ip="100.64.9.9",
            ),
        ]
    )
    b.close()
    states = with_session_addresses(store, desired.all_states(store, cfg.radius), "127.0.0.1")
    assert {s.username: s.ip for s in states} == {"fixed": "100.64.9.9", "new": "100.64.9.7", "old": None}
