"""Fixtures shared by every test folder: an initialised agent config and store, the CLI
run in process, and a cloud registry on a real socket. Helpers live in ``tests/support``
(and ``tests/<area>/*_support.py``, ``tests/sync/harness.py``); the names imported here
are re-exported so that ``from tests.support.config import make_config`` keeps working."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from jasiyo.agent.store import Store
from jasiyo.config import Config
from tests.support import props
from tests.support.cli import Cli, CliResult, run_cli
from tests.support.config import free_tcp_port, free_udp_port, make_config

if TYPE_CHECKING:
    from tests.sync.harness import Cloud

__all__ = ["Cli", "CliResult", "free_tcp_port", "free_udp_port", "make_config", "run_cli"]

props.register()


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
def store(cfg: Config) -> Iterator[Store]:
    s = Store.open(cfg)
    yield s
    s.close()


@pytest.fixture
def cli(cfg: Config) -> Cli:
    """``cli("plan", "list")`` -> ``(code, out, err)``: `jasiyo --config <cfg> ...` in process."""
    return Cli(cfg)


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    """A cloud registry (SQLite storage) on a real socket; ``cloud.tenant()`` makes an ISP."""
    from tests.sync.harness import sqlite_cloud  # the cloud's imports only where used

    c = sqlite_cloud(tmp_path)
    yield c
    c.server.stop()
    c.storage.close()


@pytest.fixture
def in_ci() -> bool:
    return os.environ.get("CI") == "true"
