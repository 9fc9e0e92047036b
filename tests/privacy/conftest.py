"""Fixtures for the privacy tests: `jasiyo` run in process over one agent."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jasiyo.cli import main
from jasiyo.cloud.backend import open_storage
from jasiyo.commands.common import STATE
from jasiyo.config import Config
from tests.cloud.pgutil import reachable_or_skip, scratch_database
from tests.sync.harness import FAST, Cloud, start_cloud


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_cloud(request: pytest.FixtureRequest,
              tmp_path: Path) -> Iterator[tuple[Cloud, Path | str, str]]:
    """A cloud on SQLite, then on PostgreSQL: (the cloud, where its tables are (the SQLite
    file, or the owner's DSN), the owner's --db)."""
    if request.param == "sqlite":
        path = tmp_path / "cloud.db"
        c = start_cloud(open_storage(str(path)), FAST)
        yield c, path, str(path)
        c.server.stop()
        c.storage.close()
        return
    with scratch_database(reachable_or_skip()) as scratch:
        owner = open_storage(scratch.owner_dsn, owner=True)
        c = start_cloud(open_storage(scratch.app_dsn), FAST, owner)
        owner.close()
        yield c, scratch.owner_dsn, scratch.owner_dsn
        c.server.stop()
        c.storage.close()


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
