"""The portal tests' world: a real `agent run` with the Daraja and Paystack simulators, a
NAS for Disconnects, a hotspot emulator, and customers in the store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.drivers.mikrotik.hotspot_sim import HotspotSim
from jasiyo.payments.mpesa.sim import DarajaSim
from jasiyo.payments.paystack.sim import PaystackSim
from jasiyo.portal.hotspot import hotspot_files
from tests.agent.agentproc import AgentProcess, jasiyo
from tests.agent.billing_support import NAS_SECRET, NasListener
from tests.agent.money_support import exchange, payments_toml, seed, until
from tests.conftest import free_tcp_port, make_config
from tests.radius.conftest import acct_request

HOTSPOT_MAC = "AA:BB:CC:00:00:01"
#: The browser and httpx reach the listener from 127.0.0.1: the pay page sees that address.
CLIENT_IP = "127.0.0.1"


@dataclass
class World:
    cfg: Config
    agent: AgentProcess
    daraja: DarajaSim
    paystack: PaystackSim
    nas: NasListener
    url: str

    def hotspot(self) -> HotspotSim:
        return HotspotSim(
            radius_port=self.cfg.radius.auth_port,
            acct_port=self.cfg.radius.acct_port,
            secret=NAS_SECRET,
            files=hotspot_files(self.url),
            mac=HOTSPOT_MAC,
        )

    def store(self) -> Store:
        return Store.open(self.cfg)

    def count(self, sql: str) -> int:
        s = self.store()
        try:
            return int(s.scalar(sql) or 0)
        finally:
            s.close()


def world_config(tmp_path: Path, daraja: DarajaSim, paystack: PaystackSim, portal: str = "") -> Config:
    port = free_tcp_port()
    extra = (
        f'[web]\nport = {port}\npublic_url = "http://127.0.0.1:{port}"\n'
        f'[portal]\nurl = "http://127.0.0.1:{port}"\n{portal}\n' + payments_toml(daraja, paystack)
    )
    return make_config(tmp_path, extra)


@contextmanager
def running_world(
    tmp_path: Path, daraja: DarajaSim, paystack: PaystackSim, nas: NasListener, portal: str = ""
) -> Iterator[World]:
    cfg = world_config(tmp_path, daraja, paystack, portal)
    seed(cfg, nas.port)  # plan home, alice (PPPoE, suspended by billing), router "local"
    jasiyo(
        cfg,
        "subscriber",
        "add",
        "hs1",
        "--plan",
        "home",
        "--service",
        "hotspot",
        "--password",
        "hs1-secret-pw",
    )
    agent = AgentProcess(cfg, tmp_path / "agent.log")
    try:
        until(lambda: "web.start" in agent.log())
        yield World(cfg, agent, daraja, paystack, nas, cfg.web.public_url)
    finally:
        if agent.proc.poll() is None:
            agent.terminate()


def open_session(cfg: Config, user: str, framed_ip: str, session: str = "81c00001") -> None:
    """Accounting Start from the NAS: ``user`` is online at ``framed_ip``."""
    start = acct_request(
        User_Name=user,
        Acct_Status_Type="Start",
        Acct_Session_Id=session,
        NAS_IP_Address="127.0.0.1",
        Framed_IP_Address=framed_ip,
        secret=NAS_SECRET.encode(),
    )
    assert exchange(cfg.radius.acct_port, start) is not None


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, "no CSRF field on the page"
    return m.group(1)


def client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=10, follow_redirects=False)
