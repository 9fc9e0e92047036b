"""Issue 11 items 9-12: a failed disconnect says so; the enforcement queue keeps only the last
wanted state, per NAS, and can be listed, retried and cancelled."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from jasiyo.agent.store import Store
from jasiyo.cli import main
from jasiyo.commands.common import STATE
from jasiyo.config import Config
from tests.agent.billing_support import NasListener

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def jasiyo(bcfg: Config, db: Store, capsys: pytest.CaptureFixture[str]) -> Run:
    def run(*args: str) -> tuple[int, str, str]:
        STATE.config_path, STATE.json, STATE._config = None, False, None
        code = main(["--config", str(bcfg.path), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_disconnect_that_times_out_fails_and_says_why(jasiyo: Run, nas: NasListener) -> None:
    nas.mode = "silent"
    code, _, err = jasiyo("session", "disconnect", "alice")
    assert code == 1
    assert "0 of 1 session(s) disconnected" in err and "no answer from core-1" in err
    code, out, _ = jasiyo("--json", "session", "disconnect", "alice")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False and data["results"][0]["result"] == "timeout"


def test_disconnect_refused_names_the_error_cause(jasiyo: Run, nas: NasListener) -> None:
    nas.mode = "nak"
    code, _, err = jasiyo("session", "disconnect", "alice")
    assert code == 1 and "NAK, Error-Cause Unsupported-Attribute" in err


def test_disconnect_of_a_session_the_router_no_longer_has_succeeds(
    jasiyo: Run, nas: NasListener,
) -> None:
    nas.mode = "nak503"
    code, out, _ = jasiyo("session", "disconnect", "alice")
    assert code == 0 and "1 of 1 session(s) disconnected" in out
    assert jasiyo("--json", "session", "list", "--active")[1].strip() == "[]"


def test_disconnect_acked(jasiyo: Run, nas: NasListener) -> None:
    code, out, _ = jasiyo("--json", "session", "disconnect", "alice")
    assert code == 0 and json.loads(out)["ok"] is True
