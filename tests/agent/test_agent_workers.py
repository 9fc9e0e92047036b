"""`jasiyo agent run` with authentication workers: every process answers, a killed worker
comes back, SIGTERM stops them all."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from jasiyo.config import Config
from tests.agent.agentproc import AgentProcess, jasiyo
from tests.radius.support import radclient
from tests.support.config import make_config

pytestmark = [pytest.mark.slow, pytest.mark.radclient]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _worker_pids(log: str) -> list[int]:
    pids: list[int] = []
    for m in re.finditer(r"radius\.(?:workers_started .*?pids=([\d,]+)|worker_restarted .*?pid=(\d+))", log):
        pids = [int(p) for p in m.group(1).split(",")] if m.group(1) else [int(m.group(2))]
    return pids


def test_workers_answer_restart_and_stop(tmp_path: Path) -> None:
    cfg: Config = make_config(tmp_path, workers=3)
    jasiyo(cfg, "plan", "add", "home", "--rate", "10M/10M", "--price", "1500")
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
        "testing123",
    )
    agent = AgentProcess(cfg, tmp_path / "agent.log")
    try:
        deadline = time.monotonic() + 60
        while len(_worker_pids(agent.log())) != 3:
            assert time.monotonic() < deadline, agent.log()
            time.sleep(0.1)
        pids = _worker_pids(agent.log())
        body = 'User-Name = "alice"\nUser-Password = "alice-pw"\nMessage-Authenticator = 0x00\n'
        for _ in range(6):  # each radclient run has its own source port
            assert radclient(cfg.radius.auth_port, "auth", body).code == "Access-Accept"

        os.kill(pids[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while "radius.worker_restarted" not in agent.log():
            assert time.monotonic() < deadline, agent.log()
            time.sleep(0.1)
        for _ in range(6):
            assert radclient(cfg.radius.auth_port, "auth", body).code == "Access-Accept"
        pids = [p for p in pids[1:]] + _worker_pids(agent.log())
        assert agent.terminate() == 0
    finally:
        if agent.proc.poll() is None:
            agent.kill()
    log = agent.log()
    assert "radius.worker_died" in log and "Traceback" not in log
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids):
        assert time.monotonic() < deadline, f"workers left running: {pids}"
        time.sleep(0.05)


def test_workers_exit_when_the_agent_is_killed(tmp_path: Path) -> None:
    """No orphan keeps the auth port after the agent dies without stopping them."""
    cfg: Config = make_config(tmp_path, workers=2)
    agent = AgentProcess(cfg, tmp_path / "agent.log")
    deadline = time.monotonic() + 60
    while not _worker_pids(agent.log()):
        assert time.monotonic() < deadline, agent.log()
        time.sleep(0.1)
    pids = _worker_pids(agent.log())
    assert len(pids) == 2
    agent.kill()  # SIGKILL: no clean stop
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, "worker outlived the agent"
        time.sleep(0.05)
