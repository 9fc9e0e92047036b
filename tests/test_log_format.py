"""`--log-format json`: one JSON object per line, secrets masked like the text format."""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
from pathlib import Path

import pytest

from jasiyo.config import Config
from jasiyo.log import event, get_logger, setup
from tests.support.cli import run_cli


@pytest.fixture
def restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield None
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_with_fields_and_secrets_masked(restore_logging: object) -> None:
    out = io.StringIO()
    setup("info", out, fmt="json")
    log = get_logger("jasiyo.test")
    event(log, "radius.bad_secret", logging.WARNING, nas="pop1", radius_secret="hunter2x", dropped=3)
    log.info("plain %s", "message")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["event"] == "radius.bad_secret" and first["level"] == "warning"
    assert first["nas"] == "pop1" and first["dropped"] == 3
    assert first["radius_secret"] == "***" and "hunter2x" not in out.getvalue()
    assert second["message"] == "plain message"


def test_text_format_unchanged(restore_logging: object) -> None:
    out = io.StringIO()
    setup("info", out)
    event(get_logger("jasiyo.test"), "a.b", x="y z", password="pw")
    assert out.getvalue().rstrip().endswith('jasiyo.test a.b x="y z" password=***')


def test_unknown_format_refused_in_one_line(cfg: Config) -> None:
    proc = run_cli(cfg, "agent", "run", "--log-format", "xml")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "--log-format" in proc.stderr and "text or json" in proc.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_unit_is_valid() -> None:
    unit = Path(__file__).parents[1] / "packaging" / "jasiyo-agent.service"
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    # the user and the binary do not exist here; anything else is a mistake in the unit
    errors = [
        ln
        for ln in proc.stderr.splitlines()
        if ln and "jasiyo" not in ln.split(":")[-1] and "Failed to" not in ln
    ]
    assert not [ln for ln in errors if "Unknown" in ln or "Invalid" in ln], proc.stderr
