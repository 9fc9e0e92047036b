"""The README's run command: `./scripts/agent` answers RADIUS at config.example.toml's ports."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from pyrad.packet import AccessAccept

from jasiyo import config
from tests.radius.support import auth_request, decode_reply

ROOT = Path(__file__).resolve().parents[1]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.slow
def test_scripts_agent_answers_radius_at_the_example_ports(tmp_path: Path) -> None:
    example = config.load(config.EXAMPLE)
    ports = (example.radius.auth_port, example.radius.acct_port)
    if not all(_port_free(p) for p in ports):
        pytest.skip(f"UDP ports {ports} are taken on this machine by another program")
    # The example as shipped, with only the data directory moved out of the checkout.
    text = re.sub(r"(?m)^data_dir = .*$", f'data_dir = "{tmp_path / "data"}"', config.EXAMPLE.read_text())
    cfg_path = tmp_path / "jasiyo.toml"
    cfg_path.write_text(text)
    log = (tmp_path / "agent.log").open("w")
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "agent")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "JASIYO_CONFIG": str(cfg_path)},
    )
    try:
        deadline = time.monotonic() + 120
        while "agent.start" not in (tmp_path / "agent.log").read_text():
            assert proc.poll() is None, (tmp_path / "agent.log").read_text()
            assert time.monotonic() < deadline, "the agent did not start in 2 minutes"
            time.sleep(0.1)
        pkt = auth_request(User_Name="user00042", User_Password="pw-42", NAS_IP_Address="127.0.0.1")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(pkt.RequestPacket(), ("127.0.0.1", example.radius.auth_port))
            reply = decode_reply(pkt, s.recv(4096))
        assert reply.code == AccessAccept
        assert reply["Mikrotik-Rate-Limit"] == ["10M/10M"]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        log.close()
    assert code == 0
    assert "agent.stop" in (tmp_path / "agent.log").read_text()
