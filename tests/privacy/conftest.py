"""Fixtures for the privacy tests: `jasiyo` run in process over one agent."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from jasiyo.cli import main
from jasiyo.commands.common import STATE
from jasiyo.config import Config


@pytest.fixture
def jasiyo(cfg: Config, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run `jasiyo --config <cfg> ...` in process; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        STATE.config_path, STATE.json, STATE._config = None, False, None
        code = main(["--config", str(cfg.path), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def as_json(out: str) -> object:
    return json.loads(out)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str, expect: int = 0) -> object:
    """`jasiyo ARGS` without a config (cloud commands); the JSON it printed, or the code."""
    STATE.config_path, STATE.json, STATE._config = None, False, None
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == expect, err
    if code:
        return code
    return json.loads(out) if "--json" in args else out
