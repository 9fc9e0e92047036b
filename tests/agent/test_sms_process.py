"""Issue 13: the SMS sender runs in a process of its own at a lower CPU priority (so a fast
drain cannot slow authentication), is started again if it dies, and stops with the agent."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jasiyo.sms.sim import AfricasTalkingSim
from tests.agent.agentproc import AgentProcess, jasiyo
from tests.agent.money_support import until
from tests.agent.test_sms_run import PHONE, config, messages, seed

pytestmark = pytest.mark.slow


@pytest.fixture
def sim() -> Iterator[AfricasTalkingSim]:
    s = AfricasTalkingSim(callback_delay=0.2)
    s.start()
    yield s
    s.stop()


def _sender_pid(agent: AgentProcess, after: int = 0) -> int:
    found: list[int] = []

    def started() -> bool:
        found[:] = [int(p) for p in re.findall(r"sms\.start .*process=(\d+)", agent.log())]
        return len(found) > after

    until(started, timeout=30)
    return found[after]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_sender_process_at_lower_priority_restarted_and_stopped(
    tmp_path: Path, sim: AfricasTalkingSim
) -> None:
    cfg = config(tmp_path, sim)
    seed(cfg)
    agent = AgentProcess(cfg, tmp_path / "agent.log")
    try:
        pid = _sender_pid(agent)
        assert pid != agent.proc.pid
        nice = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
        assert nice >= 10  # the kernel serves RADIUS first
        until(lambda: len(messages(cfg, "delivered")) == 2, timeout=30)  # receipt, reminder

        os.kill(pid, signal.SIGKILL)  # the sender dies: it is started again, and sends
        again = _sender_pid(agent, after=1)
        assert again != pid
        jasiyo(cfg, "sms", "send", "alice", "still here")
        until(lambda: any(m.text == "still here" for m in sim.sent_to(PHONE)), timeout=30)
    finally:
        assert agent.terminate() == 0
    deadline = time.monotonic() + 10
    while _alive(again):  # SIGTERM to the agent stops its sender too
        assert time.monotonic() < deadline, "the SMS sender outlived the agent"
        time.sleep(0.05)
