"""POPs through the CLI on one agent without a cloud (issue 17): homes by --router, by the
CSV ``router`` column and by `subscriber move`; `pop list`; and a stand-alone agent bills
everyone, as before POPs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jasiyo.agent import billing, payments, plans
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.cli import main
from jasiyo.commands.common import STATE
from jasiyo.config import Config


@pytest.fixture
def jasiyo(cfg: Config, capsys: pytest.CaptureFixture[str]):
    def run(*args: str) -> tuple[int, str]:
        STATE.config_path, STATE.json, STATE._config = None, False, None
        code = main(["--config", str(cfg.path), *args])
        out, err = capsys.readouterr()
        return code, out + err

    return run


@pytest.fixture
def ready(jasiyo, cfg: Config):
    assert jasiyo("plan", "add", "home", "--rate", "10M/10M", "--price", "1500")[0] == 0
    for name, ip in (("r1", "10.1.1.1"), ("r2", "10.1.1.2")):
        assert jasiyo("router", "add", name, "--driver", "mikrotik", "--host", ip,
                      "--radius-secret", "testing123")[0] == 0
    return jasiyo


def test_homes_from_router_option_csv_and_move(ready, cfg: Config, tmp_path: Path) -> None:
    jasiyo = ready
    code, out = jasiyo("--json", "subscriber", "add", "amina", "--plan", "home",
                       "--password", "pw-amina-1", "--router", "r1")
    assert code == 0 and json.loads(out)["subscriber"]["home_router"] == "r1"
    code, out = jasiyo("subscriber", "add", "baraka", "--plan", "home", "--password", "pw-b-12",
                       "--router", "nope")
    assert code != 0 and "no router named 'nope'" in out
    assert jasiyo("--json", "subscriber", "show", "baraka")[0] != 0  # nothing half-added

    csv = tmp_path / "subs.csv"
    csv.write_text("username,password,plan,router\nbaraka,pw-baraka-1,home,r2\n"
                   "chebet,pw-chebet-1,home,\ndawit,pw-dawit-1,home,r9\n")
    code, out = jasiyo("subscriber", "import", str(csv))
    assert code != 0 and "line 4: no router named 'r9'" in out
    csv.write_text("username,password,plan,router\nbaraka,pw-baraka-1,home,r2\n"
                   "chebet,pw-chebet-1,home,\n")
    code, out = jasiyo("subscriber", "import", str(csv))
    assert code == 0 and "baraka: home router - -> r2" in out, out
    s = Store.open(cfg)
    assert [(x.username, x.home_router) for x in subs.list_(s)] == [
        ("amina", "r1"), ("baraka", "r2"), ("chebet", None)]
    pop = s.meta("pop.name")
    s.close()

    code, out = jasiyo("subscriber", "move", "amina", "--router", "r2")
    assert code == 0 and "amina moved to router r2" in out and "from r1" in out
    code, out = jasiyo("subscriber", "move", "amina", "--router", "r2")
    assert code == 0 and "already homed on r2" in out
    assert jasiyo("subscriber", "update", "amina", "--router", "")[0] == 0
    code, out = jasiyo("--json", "subscriber", "show", "amina")
    assert json.loads(out)["home_router"] is None

    code, out = jasiyo("--json", "pop", "list")
    (row,) = json.loads(out)
    assert row["name"] == pop and row["this"] and row["routers"] == 2
    assert row["subscribers"] == 1  # baraka (amina has no home now)
    code, out = jasiyo("router", "list")
    assert pop in out

    # A home on a router that is removed counts as none: every router configures baraka.
    from jasiyo.agent import pops

    s = Store.open(cfg)
    assert "baraka" in pops.homed_elsewhere(s, "r1")
    s.close()
    assert jasiyo("router", "remove", "r2")[0] == 0
    s = Store.open(cfg)
    assert "baraka" not in pops.homed_elsewhere(s, "r1")
    s.close()


def test_a_stand_alone_agent_bills_every_subscriber(cfg: Config) -> None:
    """No cloud: the only POP there is, whatever a subscriber's home says."""
    s = Store.open(cfg)
    plans.add(s, plans.build("home", rate="10M/10M", price="1500", period="1d"), "t")
    subs.add(s, subs.NewSubscriber.build("esther", password="pw-esther-1", plan="home"), "t")
    with s.transaction():  # homed at a POP this agent is not (e.g. from a restored backup)
        s.conn.execute("UPDATE subscribers SET home_pop = 'ELSEWHERE'")
    payments.record(s, cfg, "esther", "1500", "QSTAND0001", method="mpesa", actor="t")
    until = s.scalar("SELECT paid_until FROM subscribers")
    s.close()
    s = Store.open(cfg, now=lambda: until + 60)
    report = billing.tick(s, cfg)
    assert report.transitions == {"suspended": 1}
    assert s.scalar("SELECT count(*) FROM events WHERE entity IN ('pop', 'usage')") == 0
    s.close()
