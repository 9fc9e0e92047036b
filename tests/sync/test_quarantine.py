"""An event that will not open is quarantined; the rest of the log flows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jasiyo.agent import cloudlink, plans, syncrun
from jasiyo.agent.store import Store
from jasiyo.cloud import admin
from jasiyo.config import Config
from jasiyo.sync.ids import uuid7
from jasiyo.sync.keyring import Keyring
from tests.support.cli import run_cli
from tests.sync.harness import Cloud, Tenant, snap


def _push_poison(cfg: Config, plain: bytes) -> str:
    """As an enrolled agent of the tenant: an envelope that opens, over something not an event."""
    s = Store.open(cfg)
    try:
        with cloudlink.open_client(cfg, s) as client:
            ev = uuid7()
            ring: Keyring = client.keyring
            env = ring.seal(plain, ev, s.agent_id)
            client._request(
                "POST",
                f"/v1/tenants/{ring.tenant_id}/events",
                body={"events": [{"id": ev, "origin": s.agent_id, "envelope": env}]},
            )
            return ev
    finally:
        s.close()


def _add_plan(cfg: Config, name: str) -> None:
    s = Store.open(cfg)
    plans.add(s, plans.build(name, rate="5M/5M", price="100"), "t")
    s.close()


def _cli(cfg: Config, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    path = cfg.data_dir.parent / f"{cfg.data_dir.name}.toml"
    path.write_text(f'[agent]\ndata_dir = "{cfg.data_dir}"\noperator = "engineer-1"\n[sync]\ninterval = 2\n')
    return run_cli(path, *args)


@pytest.mark.parametrize("plain", [b"not json", b"[]", b'{"hlc": 1}', b"\xff\xfe"])
def test_a_poisoned_event_does_not_halt_any_pop(
    cloud: Cloud, tmp_path: Path, capsys: pytest.CaptureFixture[str], plain: bytes
) -> None:
    isp = Tenant(cloud, tmp_path).setup(3)
    a, b, mallory = isp.agents
    _add_plan(a, "before")
    syncrun.sync_once(a)
    poison = _push_poison(mallory, plain)
    s = Store.open(mallory)
    admin.revoke_agent(cloud.url, isp.admin, s.agent_id)
    s.close()
    _add_plan(a, "after")
    syncrun.sync_once(a)  # the sender's fellow POP and the sender's own pull flow on
    syncrun.sync_once(b)
    for cfg in (a, b):
        assert [p["name"] for p in snap(cfg)["plans"]] == ["after", "before"]
        assert syncrun.sync_status(cfg).quarantined == 1
    code, out, _ = _cli(b, capsys, "--json", "sync", "status")
    assert code == 0 and json.loads(out)["quarantined"] == 1
    code, out, _ = _cli(b, capsys, "--json", "sync", "quarantine", "list")
    held = json.loads(out)
    assert code == 0 and [q["id"] for q in held] == [poison]
    assert _cli(b, capsys, "sync", "quarantine", "retry")[0] == 0
    assert syncrun.sync_status(b).quarantined == 1  # it still does not open
    code, _, err = _cli(b, capsys, "sync", "quarantine", "skip", uuid7())
    assert code == 1 and "no quarantined event" in err
    code, out, _ = _cli(b, capsys, "sync", "quarantine", "skip", poison)
    assert code == 0 and poison in out
    assert syncrun.sync_status(b).quarantined == 0
    s = Store.open(b)
    row = s.one("SELECT actor, action FROM audit WHERE target = ?", (f"event:{poison}",))
    s.close()
    assert row is not None and row["actor"] == "engineer-1"
    syncrun.sync_once(b)  # and it does not come back
    assert syncrun.sync_status(b).quarantined == 0
