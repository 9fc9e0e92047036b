"""The `jasiyo` command run in this process, as the console script runs it.

Starting a Python per call costs about 0.5 s (0.2 s of CPU) on the 2-core VM; running
``jasiyo.cli.main`` in process (15 ms) gives the same exit code, stdout and stderr. A bug that
escapes ``main`` is reported as the interpreter would: a traceback on stderr and status 1.
Tests that are about the process itself (start-up imports, signals, `agent run`) still
start one (``tests/agent/agentproc.py``).
"""

from __future__ import annotations

import io
import logging
import sys
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from jasiyo.cli import main
from jasiyo.commands.common import STATE
from jasiyo.config import Config


class CliResult(NamedTuple):
    """What a run printed and returned; unpacks as ``(code, out, err)`` and has the
    attribute names of ``subprocess.CompletedProcess``."""

    returncode: int
    stdout: str
    stderr: str


class _Capture(io.TextIOWrapper):
    """A text stream with a ``.buffer`` (commands that write bytes, e.g. a PDF, use it)."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", newline="", write_through=True)

    def text(self) -> str:
        self.flush()
        buf = self.buffer
        assert isinstance(buf, io.BytesIO)
        return buf.getvalue().decode("utf-8", errors="replace")


def _reset_state() -> None:
    STATE.config_path, STATE.json, STATE._config = None, False, None


def run_cli(
    config: Config | Path | str | None, *args: str, check: bool = False, input: str = ""
) -> CliResult:
    """``jasiyo [--config PATH] ARGS...``; ``check`` raises unless it exits 0.

    ``input`` is what the command reads on stdin (nothing: a prompt sees end of file).
    """
    path = config.path if isinstance(config, Config) else config
    argv = [*(["--config", str(path)] if path is not None else []), *args]
    out, err = _Capture(), _Capture()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stdin = sys.stdin
    sys.stdin = io.StringIO(input)
    _reset_state()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except Exception:  # noqa: BLE001 - as the interpreter reports an uncaught bug
                traceback.print_exc()
                code = 1
    finally:
        sys.stdin = stdin
        _reset_state()
        root.handlers[:] = handlers  # main adds a handler each run; `agent run` configures
        root.setLevel(level)
    result = CliResult(code, out.text(), err.text())
    if check and code != 0:
        raise AssertionError(f"jasiyo {' '.join(args)} exited {code}: {result.stderr}")
    return result


@dataclass
class Cli:
    """``cli("plan", "list")``: run against one config (the ``cli`` fixture's)."""

    config: Config | Path | str | None

    def __call__(self, *args: str, check: bool = False, input: str = "") -> CliResult:
        return run_cli(self.config, *args, check=check, input=input)
