"""The CLI contract: commands, one-line errors, an unchanged store on bad input, help text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

from jasiyo.cli import app
from jasiyo.config import Config
from tests.support.cli import Cli, run_cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def jasiyo(cli: Cli) -> Cli:
    """The root conftest's ``cli`` under this module's old name."""
    return cli


def dump(cfg: Config) -> list[str]:
    import sqlite3

    conn = sqlite3.connect(cfg.db_path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_plan_subscriber_router_lifecycle(jasiyo) -> None:
    assert (
        jasiyo(
            "plan", "add", "home", "--rate", "10M/10M", "--price", "1500.00", "--burst", "20M/20M 8M/8M 16/16"
        )[0]
        == 0
    )
    code, out, _ = jasiyo("plan", "show", "home", "--json")
    assert code == 0
    plan = json.loads(out)
    assert plan["price_minor"] == 150000 and plan["rate_limit"] == "10M/10M 20M/20M 8M/8M 16/16"
    code, out, _ = jasiyo(
        "--json",
        "subscriber",
        "add",
        "bob",
        "--plan",
        "home",
        "--generate-password",
        "--service",
        "static",
        "--ip",
        "10.0.0.5",
    )
    assert code == 0 and len(json.loads(out)["password"]) == 12
    assert jasiyo("subscriber", "suspend", "bob", "--reason", "unpaid")[0] == 0
    code, out, _ = jasiyo("subscriber", "list", "--status", "suspended", "--json")
    assert [s["username"] for s in json.loads(out)] == ["bob"]
    assert jasiyo("subscriber", "resume", "bob")[0] == 0
    assert jasiyo("subscriber", "update", "bob", "--phone", "+254700000001")[0] == 0
    assert (
        jasiyo(
            "router",
            "add",
            "r1",
            "--driver",
            "mikrotik",
            "--host",
            "10.1.1.1",
            "--radius-secret",
            "testing123",
        )[0]
        == 0
    )
    code, out, _ = jasiyo("router", "list", "--json")
    assert json.loads(out)[0]["nas_ip"] == "10.1.1.1"
    code, out, _ = jasiyo("plan", "list")
    assert "home" in out and "10M/10M" in out
    assert jasiyo("plan", "remove", "home")[0] == 1  # still has a subscriber
    assert jasiyo("subscriber", "remove", "bob")[0] == 0
    assert jasiyo("plan", "remove", "home")[0] == 0
    assert jasiyo("router", "remove", "r1")[0] == 0


BAD = [
    (("subscriber", "add", "x", "--plan", "nope", "--password", "p"), "no plan named 'nope'"),
    (("subscriber", "add", "alice", "--plan", "home", "--password", "p"), "already exists"),
    (("plan", "add", "p2", "--rate", "10Q/1M", "--price", "10"), "bad rate '10Q'"),
    (("plan", "add", "p2", "--rate", "10M", "--price", "-1"), "cannot be negative"),
    (("plan", "add", "p2", "--rate", "10M", "--price", "1.234"), "KES has 2 decimal places"),
    (("subscriber", "add", "y", "--plan", "home", "--password", "p", "--ip", "10.0.0.999"), "bad IP address"),
    (("subscriber", "add", "y", "--plan", "home"), "exactly one of --password"),
    (("subscriber", "add", "bad name", "--plan", "home", "--password", "p"), "bad username"),
    (("subscriber", "add", "alice\n", "--plan", "home", "--password", "p"), "bad username"),
    (("subscriber", "update", "alice", "--name", "Alice\u202eecilA"), "text-direction"),
    (("subscriber", "update", "alice", "--phone", "+254700000001\n"), "bad phone"),
    (
        ("router", "add", "r", "--driver", "cisco", "--host", "1.2.3.4", "--radius-secret", "testing123"),
        "unknown driver 'cisco'",
    ),
    (
        ("router", "add", "r", "--driver", "mikrotik", "--host", "1.2.3.4", "--radius-secret", "short"),
        "at least 8 characters",
    ),
    (("subscriber", "suspend", "ghost"), "no subscriber named 'ghost'"),
    (("subscriber", "list", "--status", "sleeping"), "bad status"),
    (("plan", "update", "home", "--billing", "postpaid"), "cannot change under them"),
    (("payment", "record", "ghost", "100", "--ref", "R1"), "no subscriber named 'ghost'"),
    (("payment", "record", "alice", "0", "--ref", "R1"), "above zero"),
    # SQLite cannot hold it: the store says so (jasiyo.agent.store.store_error), not the CLI
    (("subscriber", "list", "--limit", "9" * 30), "a number given is too large"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_input_one_line_error_and_store_unchanged(jasiyo, cfg: Config, args, message) -> None:
    assert jasiyo("plan", "add", "home", "--rate", "10M/10M", "--price", "1500")[0] == 0
    assert jasiyo("subscriber", "add", "alice", "--plan", "home", "--password", "pw")[0] == 0
    before = dump(cfg)
    code, out, err = jasiyo(*args)
    assert code == 1
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err + out
    assert dump(cfg) == before


def test_unreadable_config_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[radius]\nauth_port = 'x'\n")
    for path in (bad, tmp_path / "missing.toml"):
        proc = run_cli(path, "plan", "list")
        assert proc.returncode == 1
        assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
        assert "Traceback" not in proc.stderr


def test_csv_import_validates_everything_then_is_idempotent(jasiyo, cfg: Config, tmp_path: Path) -> None:
    jasiyo("plan", "add", "home", "--rate", "10M/10M", "--price", "1500")
    good = tmp_path / "subs.csv"
    good.write_text(
        "username,password,plan,service,ip,phone,name\n"
        + "".join(f"u{i},pw{i},home,pppoe,,,User {i}\n" for i in range(50))
        + "s1,pws,home,static,10.0.0.9,+254711111111,Static One\n"
    )
    code, out, _ = jasiyo("--json", "subscriber", "import", str(good))
    assert code == 0 and json.loads(out)["created"] == 51
    events = len(dump(cfg))
    code, out, _ = jasiyo("--json", "subscriber", "import", str(good))
    assert json.loads(out) | {"message": ""} == {
        "ok": True,
        "message": "",
        "created": 0,
        "updated": 0,
        "unchanged": 51,
        "changes": [],
        "dry_run": False,
    }
    assert len(dump(cfg)) == events  # nothing written, not even an event

    bad = tmp_path / "bad.csv"
    bad.write_text("username,password,plan\nnew1,pw,home\nnew2,,home\nnew3,pw,nosuch\n")
    before = dump(cfg)
    code, _, err = jasiyo("subscriber", "import", str(bad))
    assert code == 1 and "line 3" in err and "line 4: no plan named 'nosuch'" in err
    assert dump(cfg) == before  # the good first row was not written either


def _commands() -> list[tuple[str, Any]]:
    root = typer.main.get_command(app)
    out: list[tuple[str, Any]] = []

    def walk(prefix: str, cmd: Any) -> None:
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(f"{prefix} {name}".strip(), sub)
        else:
            out.append((prefix, cmd))

    walk("", root)
    return out


def test_every_command_has_help_and_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    docs = readme + "".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))
    commands = _commands()
    assert len(commands) > 15
    for name, cmd in commands:
        assert (cmd.help or "").strip(), f"`jasiyo {name}` has no help text"
        for param in cmd.params:
            if param.param_type_name == "option":
                assert (param.help or "").strip(), f"`jasiyo {name} {param.opts[0]}` has no help"
        assert f"jasiyo {name}" in docs, f"`jasiyo {name}` is not documented in README/docs"


def test_csv_import_changes_only_the_columns_it_has(jasiyo, tmp_path: Path) -> None:
    jasiyo("plan", "add", "home", "--rate", "10M/10M", "--price", "1500")
    jasiyo("plan", "add", "fast", "--rate", "50M/50M", "--price", "3000")
    jasiyo(
        "subscriber",
        "add",
        "ann",
        "--plan",
        "home",
        "--password",
        "pw",
        "--phone",
        "+254700000009",
        "--name",
        "Ann",
    )
    f = tmp_path / "move.csv"
    f.write_text("\ufeffusername,password,plan\n\nann,pw,fast\n\n")  # BOM and blank lines
    code, out, _ = jasiyo("--json", "subscriber", "import", str(f))
    assert code == 0 and json.loads(out)["updated"] == 1
    shown = json.loads(jasiyo("--json", "subscriber", "show", "ann")[1])
    assert shown["plan"] == "fast" and shown["phone"] == "+254700000009" and shown["name"] == "Ann"
    bad = tmp_path / "bad.csv"
    bad.write_text("username,password,plan\n\nann,pw,fast\nbob,,fast\n")
    code, _, err = jasiyo("subscriber", "import", str(bad))
    assert code == 1 and "line 4" in err  # real line numbers, blank lines counted


def test_update_is_all_or_nothing(jasiyo, cfg: Config) -> None:
    jasiyo("plan", "add", "home", "--rate", "10M/10M", "--price", "1500")
    jasiyo("plan", "add", "fast", "--rate", "50M/50M", "--price", "3000")
    jasiyo("subscriber", "add", "ann", "--plan", "home", "--password", "pw")
    before = dump(cfg)
    code, _, err = jasiyo("subscriber", "update", "ann", "--plan", "fast", "--phone", "bad")
    assert code == 1 and "bad phone" in err
    assert dump(cfg) == before


def test_subscriber_list_pages_and_filters(jasiyo, cfg: Config) -> None:
    jasiyo("plan", "add", "home", "--rate", "10M/10M", "--price", "1500")
    jasiyo("plan", "add", "fast", "--rate", "50M/50M", "--price", "3000")
    for i in range(7):
        jasiyo(
            "subscriber",
            "add",
            f"u{i}",
            "--plan",
            "fast" if i % 2 else "home",
            "--password",
            "pw",
            "--name",
            "Wanjiru Kamau" if i == 3 else f"Person {i}",
            "--phone",
            f"+25471234567{i}",
        )
    code, out, _ = jasiyo("--json", "subscriber", "list", "--limit", "3", "--offset", "2")
    assert code == 0 and [r["username"] for r in json.loads(out)] == ["u2", "u3", "u4"]
    code, out, _ = jasiyo("subscriber", "list", "--limit", "3")
    assert "1-3 of 7; next page: --offset 3" in out
    by = lambda *a: [r["username"] for r in json.loads(jasiyo("--json", "subscriber", "list", *a)[1])]  # noqa: E731
    assert by("--search", "wanjiru") == ["u3"]
    assert by("--search", "0712345675") == ["u5"]  # a local phone number finds +254...
    assert by("--plan", "fast") == ["u1", "u3", "u5"]
    assert by("--search", "%") == []  # LIKE wildcards are literal
    code, _, err = jasiyo("subscriber", "list", "--plan", "nope")
    assert code == 1 and "no plan named 'nope'" in err


def test_subscriber_list_by_home_router_and_by_router_seen_on(jasiyo, cfg: Config) -> None:
    from jasiyo.agent.radius_backend import open_backend
    from jasiyo.radius.backend import AcctRecord

    jasiyo("plan", "add", "home", "--rate", "10M/10M", "--price", "1500")
    for name, ip in (("west", "10.9.0.1"), ("east", "10.9.0.2")):
        code, _, err = jasiyo(
            "router", "add", name, "--driver", "generic", "--host", ip, "--radius-secret", "testing123"
        )
        assert code == 0, err
    jasiyo("subscriber", "add", "amina", "--plan", "home", "--password", "pw", "--router", "west")
    jasiyo("subscriber", "add", "brian", "--plan", "home", "--password", "pw", "--router", "east")
    backend = open_backend(cfg)
    try:  # amina roams: a session from east's address
        backend.record_accounting(
            [AcctRecord("10.9.0.2", "Start", 1.0e9, acct_session_id="a1", username="amina")]
        )
    finally:
        backend.close()
    by = lambda *a: [r["username"] for r in json.loads(jasiyo("--json", "subscriber", "list", *a)[1])]  # noqa: E731
    assert by("--router", "west") == ["amina"] and by("--router", "east") == ["brian"]
    assert by("--seen-on", "east") == ["amina"] and by("--seen-on", "west") == []
    code, _, err = jasiyo("subscriber", "list", "--router", "north")
    assert code == 1 and "north" in err and "Traceback" not in err


def test_subscriber_show_has_money_and_sessions(jasiyo, cfg: Config) -> None:
    jasiyo(
        "plan",
        "add",
        "home",
        "--rate",
        "10M/10M",
        "--price",
        "1500",
        "--quota",
        "100G",
        "--fup-rate",
        "1M/1M",
    )
    jasiyo("subscriber", "add", "ann", "--plan", "home", "--password", "pw")
    jasiyo("payment", "record", "ann", "2000", "--ref", "QAA1")
    code, out, _ = jasiyo("subscriber", "show", "ann")
    assert code == 0
    for text in (
        "balance",
        "KES 500.00",
        "usage",
        "0 B of 100.0 GB",
        "fair_usage",
        "not reached",
        "sessions",
        "none",
    ):
        assert text in out, text


def test_the_root_help_lists_each_group_with_its_own_help() -> None:
    """`jasiyo --help` shows GROUPS' help without importing the groups: it must be theirs."""
    import importlib

    from jasiyo.cli import GROUPS

    for name, (module, attr, text) in GROUPS.items():
        assert getattr(importlib.import_module(module), attr).info.help == text, name


def test_a_short_command_builds_only_its_group() -> None:
    code = (
        "import sys, jasiyo.cli as c; c.main(['--help']); "
        "print(sorted(m for m in sys.modules if m.startswith(('jasiyo.commands.', "
        "'sqlite_utils', 'jasiyo.agent.billing')))); c.main(['plan', '--help'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "['jasiyo.commands.backup', 'jasiyo.commands.common', 'jasiyo.commands.sync']" in out
    assert "Plans: rate, price" in out and "plan list" not in out.split("]")[0]


def test_csv_import_reports_every_problem_with_its_line_in_one_run(
    jasiyo,
    cfg: Config,
    tmp_path: Path,
) -> None:
    jasiyo("plan", "add", "home", "--rate", "10M/10M", "--price", "1500")
    jasiyo(
        "subscriber",
        "add",
        "taken",
        "--plan",
        "home",
        "--password",
        "pw",
        "--service",
        "static",
        "--ip",
        "10.0.0.5",
    )
    bad = tmp_path / "seven.csv"
    bad.write_text(
        "username,password,plan,service,ip,phone,sms_consent\n"
        "ok1,pw,home,,,,yes\n"  # 2: fine
        "bad user,pw,home,,,,\n"  # 3: bad username
        "b2,,home,,,,\n"  # 4: no password
        "b3,pw,gold,,,,\n"  # 5: unknown plan
        "b4,pw,home,static,10.0.0.5,,\n"  # 6: IP of 'taken'
        "b5,pw,home,,,0712,\n"  # 7: bad phone
        "b6,pw,home,,,,maybe\n"  # 8: bad consent
        "ok1,pw,home,,,,\n"  # 9: repeats line 2
        "b8,pw,home,static,,,\n"
    )  # 10: static without ip
    before = dump(cfg)
    code, _, err = jasiyo("subscriber", "import", str(bad))
    assert code == 1 and "8 problem(s)" in err
    for line in range(3, 11):
        assert f"line {line}:" in err, line
    assert err.index("line 3:") < err.index("line 5:") < err.index("line 10:")
    assert dump(cfg) == before


def test_csv_reimport_names_changes_and_keeps_passwords(jasiyo, cfg: Config, tmp_path: Path) -> None:
    jasiyo("plan", "add", "home", "--rate", "10M/10M", "--price", "1500")
    jasiyo("plan", "add", "fast", "--rate", "50M/50M", "--price", "3000")
    jasiyo("subscriber", "add", "ann", "--plan", "home", "--password", "old-pw")
    f = tmp_path / "ann.csv"
    f.write_text("username,password,plan,sms_consent\nann,new-pw,fast,yes\nbo,pw,home,no\n")
    before = dump(cfg)
    code, out, _ = jasiyo("subscriber", "import", str(f), "--dry-run")
    assert code == 0 and "would import" in out and "dry run" in out
    assert "ann: plan home -> fast" in out and "bo: created on plan home" in out
    assert "ann: password differs, kept (--update-passwords replaces it)" in out
    assert dump(cfg) == before
    code, out, _ = jasiyo("--json", "subscriber", "import", str(f))
    data = json.loads(out)
    assert (data["created"], data["updated"]) == (1, 1)
    from jasiyo.agent import subscribers as subs_mod
    from jasiyo.agent.store import Store

    s = Store.open(cfg)
    try:
        assert subs_mod.password_of(s, "ann") == "old-pw"
        assert subs_mod.get(s, "ann").sms_consent is True
    finally:
        s.close()
    code, out, _ = jasiyo("subscriber", "import", str(f), "--update-passwords")
    assert "ann: password replaced" in out


def test_help_is_plain_and_whole() -> None:
    """No option name cut short, no markup shown raw, no <bool> on flags."""

    def helptext(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "jasiyo.cli", *args, "--help"], capture_output=True, text=True, check=True
        ).stdout

    text = helptext("router", "add")
    assert "--require-message-authenticator / --no-require-message-authenticator" in text
    assert "(default: [radius]" in text and "<bool>" not in text and "…" not in text
    assert "``" not in helptext("billing", "run")
