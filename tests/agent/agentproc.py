"""Run the real `jasiyo agent run` as a subprocess, the way an engineer starts it (and
short CLI commands beside it, in process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from jasiyo.config import Config
from tests.support.cli import CliResult, run_cli


def jasiyo(cfg: Config, *args: str, check: bool = True) -> CliResult:
    """`jasiyo --config <cfg> ARGS...`, in this process (``.returncode``, ``.stdout``,
    ``.stderr`` as from a subprocess); ``check`` raises unless it exits 0."""
    return run_cli(cfg, *args, check=check)


class AgentProcess:
    def __init__(self, cfg: Config, log_path: Path) -> None:
        self.cfg = cfg
        self.log_path = log_path
        self._log = log_path.open("w")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jasiyo.cli", "--config", str(cfg.path), "agent", "run"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 60
        while "agent.start" not in self.log():
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited early:\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"agent did not start:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text()

    def terminate(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)
        self._log.close()
