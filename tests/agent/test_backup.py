"""`jasiyo backup` / `jasiyo restore`: everything comes back; bad input changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jasiyo.agent import backup as lib
from jasiyo.config import Config
from jasiyo.errors import ValidationError
from tests.agent.agentproc import jasiyo

PASS = "correct horse battery"


@pytest.fixture
def populated(cfg: Config, tmp_path: Path) -> Path:
    jasiyo(cfg, "plan", "add", "home", "--rate", "10M/10M", "--price", "1500")
    jasiyo(cfg, "subscriber", "add", "alice", "--plan", "home", "--password", "alice-pw")
    jasiyo(
        cfg,
        "router",
        "add",
        "r1",
        "--driver",
        "mikrotik",
        "--host",
        "10.0.0.1",
        "--radius-secret",
        "secret-123",
    )
    jasiyo(cfg, "radsec", "ca")
    (tmp_path / "pass").write_text(PASS + "\n")
    return tmp_path / "pass"


def _users(cfg: Config) -> list[str]:
    return [r["username"] for r in json.loads(jasiyo(cfg, "--json", "subscriber", "list").stdout)]


def test_backup_then_restore_brings_everything_back(cfg: Config, populated: Path, tmp_path: Path) -> None:
    out = tmp_path / "pop.jbk"
    jasiyo(cfg, "backup", str(out), "--passphrase-file", str(populated))
    assert out.stat().st_mode & 0o777 == 0o600
    assert b"alice" not in out.read_bytes()  # encrypted
    jasiyo(cfg, "subscriber", "remove", "alice")
    assert _users(cfg) == []
    refused = jasiyo(cfg, "restore", str(out), "--passphrase-file", str(populated), check=False)
    assert refused.returncode != 0 and "--force" in refused.stderr
    jasiyo(cfg, "restore", str(out), "--passphrase-file", str(populated), "--force")
    assert _users(cfg) == ["alice"]
    # the sealed secrets open with the restored key: the RADIUS password still works
    from jasiyo.agent.radius_backend import open_backend

    backend = open_backend(cfg)
    try:
        subject = backend.subject("alice")
        assert subject is not None and subject.password == "alice-pw"
    finally:
        backend.close()
    assert (cfg.data_dir / "radsec" / "ca.key").exists()


def test_restore_into_an_empty_data_dir(cfg: Config, populated: Path, tmp_path: Path) -> None:
    out = tmp_path / "pop.jbk"
    lib.backup(cfg, out, PASS)
    for p in cfg.data_dir.glob("jasiyo.db*"):
        p.unlink()
    cfg.key_path.unlink()
    assert "jasiyo.db" in lib.restore(cfg, out, PASS)
    assert _users(cfg) == ["alice"]


def test_wrong_passphrase_or_tampering_changes_nothing(cfg: Config, populated: Path, tmp_path: Path) -> None:
    out = tmp_path / "pop.jbk"
    lib.backup(cfg, out, PASS)
    before = cfg.db_path.read_bytes()
    with pytest.raises(ValidationError, match="wrong passphrase"):
        lib.restore(cfg, out, "not the passphrase", force=True)
    data = bytearray(out.read_bytes())
    data[-40] ^= 1
    (tmp_path / "bad.jbk").write_bytes(bytes(data))
    with pytest.raises(ValidationError, match="changed or damaged"):
        lib.restore(cfg, tmp_path / "bad.jbk", PASS, force=True)
    (tmp_path / "junk").write_bytes(b"hello")
    with pytest.raises(ValidationError, match="not a Jasiyo backup"):
        lib.restore(cfg, tmp_path / "junk", PASS, force=True)
    assert cfg.db_path.read_bytes() == before
    with pytest.raises(ValidationError, match="at least 12"):
        lib.backup(cfg, tmp_path / "x.jbk", "short")
    cli = jasiyo(cfg, "restore", str(out), "--passphrase-file", str(tmp_path / "nope"), check=False)
    assert cli.returncode != 0 and "Traceback" not in cli.stderr
