"""Helpers for the money-in tests: an agent wired to the Daraja and Paystack simulators."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import httpx
from pyrad.packet import AccessAccept, Packet

from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.payments.mpesa.sim import DarajaSim
from jasiyo.payments.paystack.sim import PaystackSim
from tests.agent.agentproc import jasiyo
from tests.agent.billing_support import NAS_SECRET
from tests.radius.support import acct_request, auth_request, decode_reply
from tests.support.config import free_tcp_port, make_config
from tests.support.wait import until as until  # re-exported: the money tests import it here

PHONE = "254712345678"


def payments_toml(daraja: DarajaSim | None, paystack: PaystackSim | None) -> str:
    out = "[payments]\nquery_after = 2.0\nrequest_expiry = 60.0\n"
    if daraja is not None:
        out += (
            f'[payments.mpesa]\nbase_url = "{daraja.url}"\n'
            f'consumer_key = "{daraja.consumer_key}"\n'
            f'consumer_secret = "{daraja.consumer_secret}"\n'
            f'shortcode = "{daraja.shortcode}"\npasskey = "{daraja.passkey}"\n'
        )
    if paystack is not None:
        out += f'[payments.paystack]\nbase_url = "{paystack.url}"\nsecret_key = "{paystack.secret_key}"\n'
    return out


def standalone_config(
    tmp_path: Path, daraja: DarajaSim | None = None, paystack: PaystackSim | None = None
) -> Config:
    """An agent with no cloud: providers call its own web listener."""
    port = free_tcp_port()
    extra = f'[web]\nport = {port}\npublic_url = "http://127.0.0.1:{port}"\n' + payments_toml(
        daraja, paystack
    )
    return make_config(tmp_path, extra)


def seed(cfg: Config, nas_port: int, *, suspended: bool = True) -> None:
    """Plan home (KES 1,500 / 30 days, prepaid), subscriber alice with a phone, the local NAS;
    alice suspended by billing (not by hand: a payment restores her)."""
    jasiyo(cfg, "plan", "add", "home", "--rate", "10M/10M", "--price", "1500")
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
        "0712 345 678",
    )
    jasiyo(
        cfg,
        "router",
        "add",
        "local",
        "--driver",
        "mikrotik",
        "--host",
        "127.0.0.1",
        "--radius-secret",
        NAS_SECRET,
        "--coa-port",
        str(nas_port),
    )
    if suspended:
        store = Store.open(cfg)
        try:
            subs.set_status(store, "alice", subs.Status.SUSPENDED, "billing", "expired")
        finally:
            store.close()


def exchange(port: int, pkt: Packet, timeout: float = 3.0) -> Packet | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(pkt.RequestPacket(), ("127.0.0.1", port))
        try:
            raw = s.recv(4096)
        except TimeoutError:
            return None
    return decode_reply(pkt, raw)


def start_session(cfg: Config, user: str = "alice", session: str = "81c00001") -> None:
    start = acct_request(
        User_Name=user,
        Acct_Status_Type="Start",
        Acct_Session_Id=session,
        NAS_IP_Address="127.0.0.1",
        Framed_IP_Address="100.64.0.9",
        secret=NAS_SECRET.encode(),
    )
    assert exchange(cfg.radius.acct_port, start) is not None


def login(cfg: Config, user: str = "alice", password: str = "alice-pw") -> Packet | None:
    return exchange(
        cfg.radius.auth_port,
        auth_request(
            User_Name=user, User_Password=password, NAS_IP_Address="127.0.0.1", secret=NAS_SECRET.encode()
        ),
    )


def full_service(reply: Packet | None) -> bool:
    return reply is not None and reply.code == AccessAccept and "Mikrotik-Address-List" not in reply


def cli_json(cfg: Config, *args: str) -> Any:
    return json.loads(jasiyo(cfg, "--json", *args).stdout)


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        url, content=body, headers={"content-type": "application/json", **(headers or {})}, timeout=10
    )
