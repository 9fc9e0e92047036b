"""Money in through the cloud, with real processes: `cloud serve`, an enrolled `agent run`,
the Daraja and Paystack simulators calling the tenant's webhook URLs on the cloud, a NAS
that receives the Disconnect. Also: a cloud restart mid-delivery, and an agent that was
down while callbacks queued in the cloud."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pyrad.packet import DisconnectRequest

from jasiyo.cloud import admin
from jasiyo.config import Config
from jasiyo.payments.mpesa.sim import DarajaSim
from jasiyo.payments.paystack.sim import PaystackSim
from tests.agent.agentproc import AgentProcess, jasiyo
from tests.agent.billing_support import NasListener
from tests.agent.money_support import (
    PHONE,
    cli_json,
    full_service,
    login,
    payments_toml,
    seed,
    start_session,
    until,
)
from tests.support.config import free_tcp_port, make_config

pytestmark = pytest.mark.slow
OPERATOR = "jop_" + "c" * 40


class CloudProcess:
    """`jasiyo cloud serve` on SQLite, as an operator starts it."""

    def __init__(self, tmp: Path, port: int | None = None) -> None:
        self.tmp, self.port = tmp, port or free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        self._err = (self.tmp / "cloud.log").open("ab")
        env = {**os.environ, "JASIYO_OPERATOR_TOKEN": OPERATOR}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jasiyo.cli",
                "cloud",
                "serve",
                "--db",
                str(self.tmp / "cloud.db"),
                "--port",
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._err,
            env=env,
        )
        until(self._up, timeout=30)

    def _up(self) -> bool:
        assert self.proc.poll() is None, (self.tmp / "cloud.log").read_text()
        try:
            return httpx.get(self.url + "/v1/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self._err.close()

    def log(self) -> str:
        return (self.tmp / "cloud.log").read_text()


@dataclass
class World:
    cfg: Config
    cloud: CloudProcess
    agent: AgentProcess
    daraja: DarajaSim
    paystack: PaystackSim
    nas: NasListener

    def restart_agent(self) -> None:
        self.agent = AgentProcess(self.cfg, self.cfg.data_dir.parent / "agent2.log")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    daraja = DarajaSim(callback_delay=0.3).start()
    paystack = PaystackSim(callback_delay=0.3).start()
    nas = NasListener()
    cloud = CloudProcess(tmp_path)
    tenant = admin.create_tenant(cloud.url, OPERATOR, "isp")
    token = admin.issue_enrolment(cloud.url, tenant["admin_token"])["token"]
    (tmp_path / "pop").mkdir()
    cfg = make_config(tmp_path / "pop", "[sync]\ninterval = 1\n" + payments_toml(daraja, paystack))  # type: ignore[arg-type]
    jasiyo(cfg, "agent", "enroll", cloud.url, token)
    jasiyo(cfg, "tenant", "init")
    seed(cfg, nas.port)
    urls = cli_json(cfg, "payment", "register-urls")["urls"]
    assert all(u.startswith(cloud.url + "/v1/hooks/") for u in urls.values())
    paystack.webhook_url = urls["paystack"]
    agent = AgentProcess(cfg, tmp_path / "agent.log")
    w = World(cfg, cloud, agent, daraja, paystack, nas)
    try:
        start_session(cfg)
        yield w
    finally:
        if w.agent.proc.poll() is None:
            w.agent.terminate()
        if cloud.proc.poll() is None:
            cloud.stop()
        daraja.stop()
        paystack.stop()
        nas.close()


def payments_of(cfg: Config) -> list[dict]:
    return cli_json(cfg, "payment", "list")


def kicked(w: World) -> bool:
    return any(p.code == DisconnectRequest and p["User-Name"] == ["alice"] for p in w.nas.received)


def test_stk_through_the_cloud_restores_and_disconnects(world: World) -> None:
    w = world
    assert not full_service(login(w.cfg))
    out = cli_json(w.cfg, "payment", "request", "alice")
    (push,) = w.daraja.pushes.values()
    assert push.callback_url.startswith(w.cloud.url + "/v1/hooks/")
    until(lambda: payments_of(w.cfg), timeout=30)
    (paid,) = payments_of(w.cfg)
    assert paid["reference"] == push.receipt and paid["amount_minor"] == 150000
    until(lambda: kicked(w))
    assert full_service(login(w.cfg))
    (item,) = cli_json(w.cfg, "payment", "inbox")
    assert item["source"].startswith("cloud:") and item["status"] == "applied"
    assert out["request"]["request_id"] == push.checkout_request_id
    # The cloud never saw the money in the clear, and logged no hook token.
    db = (w.cloud.tmp / "cloud.db").read_bytes()
    assert push.receipt.encode() not in db and b"alice" not in db
    token = push.callback_url.rsplit("/", 1)[1]
    assert token not in w.cloud.log() and token not in w.agent.log()


def test_c2b_and_paystack_through_the_cloud(world: World) -> None:
    w = world
    w.daraja.c2b_pay(PHONE, 1500, "Alice")  # the cloud accepts validation; confirmation follows
    until(lambda: payments_of(w.cfg), timeout=30)
    assert payments_of(w.cfg)[0]["method"] == "mpesa"
    link = cli_json(w.cfg, "payment", "link", "alice", "--email", "a@example.com", "--amount", "500")[
        "request"
    ]
    w.paystack.paystack_complete(link["request_id"])
    until(lambda: len(payments_of(w.cfg)) == 2, timeout=30)
    assert {p["method"] for p in payments_of(w.cfg)} == {"mpesa", "paystack"}
    until(lambda: kicked(w))


def test_cloud_restart_mid_delivery_and_agent_down_for_a_while(world: World) -> None:
    w = world
    # The agent goes away; customers keep paying; the callbacks queue in the cloud.
    assert w.agent.terminate() == 0
    for n in range(5):
        w.daraja.c2b_pay(PHONE, 100 + n * 100, "alice")
    w.daraja.faults.duplicate_callbacks = 3
    w.daraja.c2b_pay(PHONE, 900, "alice")
    until(lambda: len(w.daraja.callbacks) >= 5 + 3 + 6, timeout=30)  # validations count too
    # The cloud restarts (a deploy) while nothing has been delivered yet.
    w.cloud.stop()
    w.cloud.start()
    w.restart_agent()
    until(lambda: len(payments_of(w.cfg)) == 6, timeout=40)
    time.sleep(2)  # duplicates, had they been applied, would show up by now
    paid = payments_of(w.cfg)
    assert sorted(p["amount_minor"] for p in paid) == [10000, 20000, 30000, 40000, 50000, 90000]
    statuses = [i["status"] for i in cli_json(w.cfg, "payment", "inbox", "--limit", "100")]
    assert statuses.count("applied") == 6 and statuses.count("duplicate") == 2


def test_a_c2b_payment_for_another_shortcode_is_refused(world: World) -> None:
    w = world
    other = DarajaSim(shortcode="600999", callback_delay=0.1).start()
    try:
        reg = w.daraja.registrations[w.daraja.shortcode]
        other.registrations["600999"] = dict(reg)  # someone points their shortcode at us
        other.external_validation = False
        other.c2b_pay(PHONE, 1500, "alice")
        until(lambda: cli_json(w.cfg, "payment", "unmatched", "--refused"), timeout=30)
        (refused,) = cli_json(w.cfg, "payment", "unmatched", "--refused")
        assert "600999" in refused["detail"]
        assert payments_of(w.cfg) == []
    finally:
        other.stop()
