"""The cloud, tenant, sync and agent enroll/restore commands, end to end over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from jasiyo.cli import main
from jasiyo.cloud.backend import open_storage
from jasiyo.cloud.server import ThreadedServer
from jasiyo.commands.common import STATE
from jasiyo.config import Config
from tests.support.cli import run_cli
from tests.support.config import make_config
from tests.sync.harness import FAST


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ThreadedServer, Path]]:
    db = tmp_path / "cloud.db"
    storage = open_storage(str(db))
    storage.migrate()
    srv = ThreadedServer(storage, FAST).start()
    yield srv, db
    srv.stop()
    storage.close()


def run(capsys: pytest.CaptureFixture[str], cfg: Config | None, *args: str) -> tuple[int, dict]:
    """`jasiyo [--config] --json ARGS` in process: (code, the JSON or {"stderr": ...})."""
    code, out, err = run_cli(cfg, "--json", *args)
    return code, (json.loads(out) if code == 0 and out.strip() else {"stderr": err})


def agent_cmd(cfg: Config, name: str, *args: str) -> None:
    """`jasiyo agent enroll|restore ...`, through the real command line."""
    STATE.config_path, STATE.json, STATE._config = None, False, None
    assert main(["--config", str(cfg.path), "--json", "agent", name, *args]) == 0


def test_operator_to_restore_through_the_cli(server, tmp_path: Path, capsys) -> None:
    srv, db = server
    code, out = run(capsys, None, "cloud", "create-operator", "--db", str(db))
    assert code == 0
    code, tenant = run(capsys, None, "cloud", "create-tenant", srv.url, "Acme ISP",
                       "--token", out["token"])
    assert code == 0 and tenant["admin_token"].startswith("jad_")
    code, bad = run(capsys, None, "cloud", "create-tenant", srv.url, "x", "--token", "jop_" + "x" * 40)
    assert code == 1 and "refused the token" in bad["stderr"]

    def token() -> str:
        code, out = run(capsys, None, "cloud", "enrolment-token", srv.url,
                        "--token", tenant["admin_token"])
        assert code == 0
        return out["token"]

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = make_config(tmp_path / "a")
    agent_cmd(a, "enroll", srv.url, token())
    assert "enrolled agent" in capsys.readouterr().out
    assert run(capsys, a, "tenant", "init")[0] == 0
    recovery = tmp_path / "recovery.json"
    assert run(capsys, a, "tenant", "export-recovery", str(recovery))[0] == 0
    assert recovery.stat().st_mode & 0o777 == 0o600
    assert run(capsys, a, "plan", "add", "home", "--rate", "5M/5M", "--price", "100")[0] == 0
    code, st = run(capsys, a, "sync", "status")
    assert code == 0 and st["backlog"] == 2  # the plan, and the POP announcing itself
    code, result = run(capsys, a, "sync", "now")
    assert code == 0 and result["pushed"] == 2
    assert run(capsys, a, "tenant", "rotate-key")[0] == 0
    capsys.readouterr()

    b = make_config(tmp_path / "b")
    agent_cmd(b, "enroll", srv.url, token())
    capsys.readouterr()
    agent_cmd(b, "restore", "--from-cloud", "--recovery", str(recovery))
    capsys.readouterr()
    code, out = run(capsys, b, "plan", "list")
    assert code == 0 and [p["name"] for p in out] == ["home"]
    code, st = run(capsys, b, "sync", "status")
    assert st["lag_events"] == 0 and st["last_error"] is None
