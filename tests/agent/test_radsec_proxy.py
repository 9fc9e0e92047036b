"""RadSec with a real peer: radsecproxy forwards FreeRADIUS radclient requests over TLS.

    radclient --UDP--> radsecproxy --TLS 1.2+, client certificate--> `jasiyo agent run`

The certificates are made with the CLI (`jasiyo radsec ca`, `jasiyo radsec issue`), as an
ISP without a PKI would. radsecproxy is Debian's (scripts/bootstrap --dev installs it).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jasiyo.config import Config
from tests.agent.agentproc import AgentProcess, jasiyo
from tests.radius.support import radclient
from tests.support.config import free_udp_port, make_config

RADSECPROXY = shutil.which("radsecproxy")
PROXY_SECRET = b"proxy-secret-1"

pytestmark = [
    pytest.mark.radclient,
    pytest.mark.slow,
    pytest.mark.skipif(RADSECPROXY is None, reason="radsecproxy is not installed"),
]


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return make_config(tmp_path, f"\n[radsec]\nenabled = true\nport = {free_tcp_port()}\n")


class Proxy:
    def __init__(self, tmp: Path, cfg: Config, cert: Path, key: Path, ca: Path) -> None:
        self.port = free_udp_port()
        self.log_path = tmp / "radsecproxy.log"
        conf = tmp / "radsecproxy.conf"
        conf.write_text(f"""
ListenUDP 127.0.0.1:{self.port}
LogLevel 5
client radclient {{
    host 127.0.0.1
    type udp
    secret {PROXY_SECRET.decode()}
}}
tls default {{
    CACertificateFile {ca}
    CertificateFile {cert}
    CertificateKeyFile {key}
}}
server agent {{
    host 127.0.0.1
    port {cfg.radsec.port}
    type tls
    secret radsec
    StatusServer on
}}
realm * {{
    server agent
    accountingServer agent
}}
""")
        self._log = self.log_path.open("w")
        # -f: in the foreground, logging to stderr
        self.proc = subprocess.Popen(
            [RADSECPROXY or "radsecproxy", "-f", "-d", "5", "-c", str(conf), "-i", str(tmp / "rsp.pid")],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def _setup(cfg: Config, tmp_path: Path, router_cert: str = "pop-tls") -> tuple[Path, Path]:
    jasiyo(cfg, "plan", "add", "home", "--rate", "10M/10M", "--price", "1500")
    jasiyo(cfg, "subscriber", "add", "alice", "--plan", "home", "--password", "alice-pw")
    jasiyo(cfg, "radsec", "ca", "--host", "127.0.0.1")
    # the RadSec router: its RADIUS never arrives over UDP, its NAS IP keys its sessions
    jasiyo(
        cfg,
        "router",
        "add",
        "pop-tls",
        "--driver",
        "mikrotik",
        "--host",
        "10.20.0.1",
        "--radius-secret",
        "udp-secret-unused",
    )
    out = json.loads(
        jasiyo(
            cfg, "--json", "radsec", "issue", router_cert, "--pin", "--out", str(tmp_path / "router")
        ).stdout
    )
    return Path(out["certificate"]), Path(out["private_key"])


def _wait(what: str, check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def running(cfg: Config, tmp_path: Path) -> Iterator[tuple[AgentProcess, Proxy]]:
    cert, key = _setup(cfg, tmp_path)
    agent = AgentProcess(cfg, tmp_path / "agent.log")
    proxy = Proxy(tmp_path, cfg, cert, key, Path(cfg.radsec.ca))
    try:
        yield agent, proxy
    finally:
        proxy.stop()
        if agent.proc.poll() is None:
            agent.kill()


def _auth(proxy: Proxy, password: str = "alice-pw") -> object:
    return radclient(
        proxy.port,
        "auth",
        f'User-Name = "alice"\nUser-Password = "{password}"\nMessage-Authenticator = 0x00\n',
        secret=PROXY_SECRET,
        timeout=3,
    )


def test_radclient_through_radsecproxy(running: tuple[AgentProcess, Proxy], cfg: Config) -> None:
    agent, proxy = running
    # radsecproxy connects on the first request; allow a retry while it does
    deadline = time.monotonic() + 30
    while (r := _auth(proxy)).code != "Access-Accept":  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, f"{r}\n{proxy.log()}\n{agent.log()}"
    assert r.attrs["Mikrotik-Rate-Limit"] == ["10M/10M"]  # type: ignore[attr-defined]
    assert _auth(proxy, "wrong").code == "Access-Reject"  # type: ignore[attr-defined]

    base = 'User-Name = "alice"\nAcct-Session-Id = "tls-0001"\nFramed-IP-Address = 100.64.0.7\n'
    for body in (
        "Acct-Status-Type = Start\n",
        "Acct-Status-Type = Stop\nAcct-Session-Time = 60\nAcct-Input-Octets = 1000\n"
        "Acct-Output-Octets = 2000\n",
    ):
        res = radclient(proxy.port, "acct", base + body, secret=PROXY_SECRET)
        assert res.code == "Accounting-Response", res.output
    (sess,) = json.loads(jasiyo(cfg, "--json", "session", "list").stdout)
    assert sess["nas_ip"] == "10.20.0.1" and sess["status"] == "closed"
    assert sess["input_octets"] == 1000 and sess["output_octets"] == 2000

    # StatusServer on: radsecproxy keeps the connection alive with Status-Server
    _wait("a Status-Server answer", lambda: "got status server response" in proxy.log(), 60)
    assert agent.terminate() == 0
    log = agent.log()
    assert re.search(r"status_server=[1-9]", log), log
    assert "Traceback" not in log and "alice-pw" not in log


def test_unpinned_certificate_refused(cfg: Config, tmp_path: Path) -> None:
    _setup(cfg, tmp_path)
    # signed by the CA, but not the pinned certificate of pop-tls and naming no router
    other = json.loads(
        jasiyo(cfg, "--json", "radsec", "issue", "pop-tls", "--out", str(tmp_path / "other")).stdout
    )
    agent = AgentProcess(cfg, tmp_path / "agent.log")
    proxy = Proxy(tmp_path, cfg, Path(other["certificate"]), Path(other["private_key"]), Path(cfg.radsec.ca))
    try:
        assert _auth(proxy).code is None  # type: ignore[attr-defined]
        _wait("the refusal", lambda: "radsec.unknown_certificate" in agent.log())
        assert other["fingerprint"] in agent.log()
    finally:
        proxy.stop()
        agent.terminate()
    assert not re.search(r"access_requests=[1-9]", agent.log())


def test_certificate_of_another_ca_refused_at_handshake(cfg: Config, tmp_path: Path) -> None:
    from jasiyo.radius import pki

    _setup(cfg, tmp_path)
    pki.make_ca(tmp_path / "foreign", "elsewhere", ["127.0.0.1"])
    bad = pki.issue(tmp_path / "foreign", "pop-tls", out=tmp_path / "foreign")
    agent = AgentProcess(cfg, tmp_path / "agent.log")
    proxy = Proxy(tmp_path, cfg, bad.certificate, bad.private_key, Path(cfg.radsec.ca))
    try:
        assert _auth(proxy).code is None  # type: ignore[attr-defined]
        _wait("the agent to refuse the handshake", lambda: "radsec.handshake_failed" in agent.log())
        assert "certificate verify failed" in agent.log()
    finally:
        proxy.stop()
        agent.terminate()
    assert "radsec.connected" not in agent.log()
    assert not re.search(r"access_requests=[1-9]", agent.log())
