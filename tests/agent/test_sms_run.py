"""SMS with the real `jasiyo agent run` and the Africa's Talking simulator, no cloud: the
simulator posts delivery reports and replies to the agent's own web listener."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from jasiyo.agent import notify, payments
from jasiyo.agent.ledger import subscriber_row
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.sms.sim import AfricasTalkingSim
from tests.agent.agentproc import AgentProcess, jasiyo
from tests.agent.money_support import cli_json, until
from tests.agent.sms_support import sms_config
from tests.support.config import free_tcp_port

pytestmark = pytest.mark.slow
PHONE = "+254712345678"


@pytest.fixture
def sim() -> Iterator[AfricasTalkingSim]:
    s = AfricasTalkingSim(callback_delay=0.2)
    s.start()
    yield s
    s.stop()


def config(tmp_path: Path, sim: AfricasTalkingSim, extra: str = "") -> Config:
    port = free_tcp_port()
    web = f'[web]\nport = {port}\npublic_url = "http://127.0.0.1:{port}"\n'
    cfg = sms_config(
        tmp_path,
        sim,
        "quiet_start = '00:00'\nquiet_end = '00:00'\nretry_first = 1.0\nretry_max = 2.0\n" + extra,
        before=web,
    )
    urls = cli_json(cfg, "sms", "urls")["urls"]
    sim.dlr_url, sim.incoming_url = urls["sms-dlr"], urls["sms-in"]
    return cfg


def seed(cfg: Config) -> None:
    """alice on a 3-day plan, paid two days ago: the 1-day reminder is due at once."""
    jasiyo(cfg, "plan", "add", "short", "--rate", "5M/5M", "--price", "100", "--period", "3d")
    jasiyo(
        cfg,
        "subscriber",
        "add",
        "alice",
        "--plan",
        "short",
        "--password",
        "alice-pw",
        "--phone",
        "0712 345 678",
        "--name",
        "Amina",
        "--sms-consent",
    )
    paid_at = time.time() - 2 * 86400 - 60
    store = Store.open(cfg, now=lambda: paid_at)
    try:
        payments.record(store, cfg, "alice", "100", "CASH-1", actor="test")
    finally:
        store.close()


def messages(cfg: Config, status: str | None = None) -> list[dict]:
    return cli_json(cfg, "sms", "list", *(["--status", status] if status else []))


@pytest.fixture
def agent_with(tmp_path: Path) -> Iterator[list[AgentProcess]]:
    agents: list[AgentProcess] = []
    yield agents
    for a in agents:
        if a.proc.poll() is None:
            a.terminate()


def test_reminder_once_with_local_due_date_then_delivered_and_stale_dropped(
    tmp_path: Path, sim: AfricasTalkingSim, agent_with: list[AgentProcess]
) -> None:
    cfg = config(tmp_path, sim)
    seed(cfg)
    store = Store.open(cfg)
    try:
        sub = subscriber_row(store, "alice")
        with store.transaction():  # a reminder that went stale while the agent was down
            notify.queue(
                store,
                sub,
                "reminder",
                "reminder:alice:old",
                "old reminder",
                store.now() - 3600,
                not_after=store.now() - 60,
            )
        due = datetime.fromtimestamp(sub["paid_until"], ZoneInfo("Africa/Nairobi"))
    finally:
        store.close()
    agent_with.append(AgentProcess(cfg, tmp_path / "agent.log"))
    until(lambda: len(messages(cfg, "delivered")) == 2, timeout=30)
    reminders = [m for m in sim.sent_to(PHONE) if "expires" in m.text]
    assert len(reminders) == 1
    assert reminders[0].text == (
        f"Hi Amina, your short internet expires in 1 day(s), on {due:%Y-%m-%d %H:%M}. Pay "
        "KES 100.00 to paybill 174379, account alice, to stay connected."
    )
    rows = {m["key"]: m for m in messages(cfg)}
    assert rows["reminder:alice:old"]["status"] == "dropped"
    assert "stale" in rows["reminder:alice:old"]["detail"]
    assert "old reminder" not in [m.text for m in sim.accepted()]
    sent = [m for m in messages(cfg) if m["status"] == "delivered"]
    assert {m["kind"] for m in sent} == {"receipt", "reminder"}
    assert all(m["cost"] == "KES 0.80" and m["parts"] == 1 for m in sent)
    assert len(sim.accepted()) == 2  # nothing sent twice


def test_failed_send_retried_with_backoff_then_failed(
    tmp_path: Path, sim: AfricasTalkingSim, agent_with: list[AgentProcess]
) -> None:
    cfg = config(tmp_path, sim)
    jasiyo(cfg, "plan", "add", "home", "--rate", "5M/5M", "--price", "1000")
    jasiyo(
        cfg,
        "subscriber",
        "add",
        "alice",
        "--plan",
        "home",
        "--password",
        "alice-pw",
        "--phone",
        PHONE,
        "--sms-consent",
    )
    sim.faults.fail_next(100, status=500)
    agent_with.append(AgentProcess(cfg, tmp_path / "agent.log"))
    jasiyo(cfg, "sms", "send", "alice", "Tunafanya matengenezo leo usiku")
    (failed,) = until(lambda: messages(cfg, "failed"), timeout=30)
    assert failed["attempts"] == 3 and "gave up after 3 attempts" in failed["detail"]
    posts = sim.requests_to("/version1/messaging")
    assert len(posts) == 3
    gaps = [b.at - a.at for a, b in zip(posts, posts[1:], strict=False)]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9  # 1 s, then 2 s (lower bounds only)
    sim.faults.clear()
    jasiyo(cfg, "sms", "retry")
    until(lambda: messages(cfg, "delivered"), timeout=30)
    assert len(sim.accepted()) == 1


def test_stop_by_sms_withdraws_consent_and_start_restores_it(
    tmp_path: Path, sim: AfricasTalkingSim, agent_with: list[AgentProcess]
) -> None:
    cfg = config(tmp_path, sim)
    jasiyo(cfg, "plan", "add", "home", "--rate", "5M/5M", "--price", "1000")
    jasiyo(
        cfg,
        "subscriber",
        "add",
        "alice",
        "--plan",
        "home",
        "--password",
        "alice-pw",
        "--phone",
        PHONE,
        "--sms-consent",
    )
    agent_with.append(AgentProcess(cfg, tmp_path / "agent.log"))
    until(lambda: "web.start" in agent_with[0].log())
    assert sim.incoming(PHONE, "ACHA") == 200
    show = until(lambda: (s := cli_json(cfg, "subscriber", "show", "alice")) and not s["sms_consent"] and s)
    assert show["sms_consent_record"].startswith("withdrawn ")
    assert f"via keyword by sms:{PHONE}" in show["sms_consent_record"]
    refused = jasiyo(cfg, "sms", "send", "alice", "hello", check=False)
    assert refused.returncode != 0 and "not consented" in refused.stderr
    assert "Traceback" not in refused.stderr
    sim.incoming(PHONE, "START")
    until(lambda: cli_json(cfg, "subscriber", "show", "alice")["sms_consent"])
    jasiyo(cfg, "sms", "send", "alice", "Karibu tena")
    until(lambda: sim.sent_to(PHONE), timeout=30)
    assert [m.text for m in sim.accepted()] == ["Karibu tena"]
