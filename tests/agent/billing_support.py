"""Helpers for the billing tests: a controllable clock, stores on it, a NAS listener."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyrad.packet import (
    CoAACK,
    CoANAK,
    CoAPacket,
    CoARequest,
    DisconnectACK,
    DisconnectNAK,
    DisconnectRequest,
)

from jasiyo.agent import plans, routers
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.radius.dictionaries import load_dictionary
from tests.support.config import make_config

DAY = 86400.0
#: 2026-01-05 00:00:00 UTC, a Monday; far from month ends so day arithmetic reads easily.
T0 = 1767571200.0
NAS_SECRET = "nas-secret-123"


class Clock:
    """A clock the test moves by hand (the store's ``now``)."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def set(self, t: float) -> None:
        self.t = t

    def days(self, n: float) -> float:
        self.t = T0 + n * DAY
        return self.t


def billing_config(tmp_path: Path, billing: str = "", **radius: Any) -> Config:
    tmp_path.mkdir(parents=True, exist_ok=True)
    extra = "[billing]\n" + billing + "\n" if billing else ""
    return make_config(tmp_path, extra, **radius)


def open_store(cfg: Config, clock: Clock) -> Store:
    return Store.open(cfg, now=clock)


def seed_plans(store: Store) -> None:
    plans.add(store, plans.build("home", rate="10M/10M", price="1000"), "test")
    plans.add(store, plans.build("fast", rate="20M/20M", price="2000"), "test")
    plans.add(
        store, plans.build("biz", rate="50M/50M", price="3000", billing="postpaid", tax_rate="16"), "test"
    )
    plans.add(
        store, plans.build("biz2", rate="80M/80M", price="4500", billing="postpaid", tax_rate="16"), "test"
    )


def add_sub(store: Store, username: str, plan: str = "home", *, consent: bool = True, **kw: Any) -> None:
    subs.add(
        store,
        subs.NewSubscriber.build(
            username,
            password=f"{username}-pw",
            plan=plan,
            phone="+254712345678" if consent else None,
            sms_consent=consent,
            **kw,
        ),
        "test",
    )


def add_nas_router(store: Store, coa_port: int, name: str = "core-1") -> None:
    routers.add(
        store,
        name,
        driver="mikrotik",
        host="127.0.0.1",
        radius_secret=NAS_SECRET,
        coa_port=coa_port,
        actor="test",
    )


def start_session(
    store: Store,
    username: str,
    sid: str,
    framed_ip: str = "100.64.0.7",
    nas_ip: str = "127.0.0.1",
    octets: int = 0,
) -> None:
    """An active RADIUS session as accounting records it (for tests without a RADIUS server)."""
    now = store.now()
    with store.transaction():
        store.conn.execute(
            "INSERT INTO radius_sessions (nas_ip, acct_session_id, username, framed_ip, "
            "started_at, last_update_at, input_octets, status) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'active')",
            (nas_ip, sid, username, framed_ip, now, now, octets),
        )


@dataclass
class NasListener:
    """A UDP listener on 127.0.0.1 playing a MikroTik NAS for Disconnect / CoA.

    ``mode``: "ack" answers ACK, "nak503" NAKs with Session-Context-Not-Found, "nak" NAKs
    with Unsupported-Attribute, "silent" never answers. Every verified request is kept.
    """

    secret: bytes = NAS_SECRET.encode()
    mode: str = "ack"
    received: list[CoAPacket] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self.got = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        dictionary = load_dictionary()
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            pkt = CoAPacket(secret=self.secret, dict=dictionary, packet=data)
            if not pkt.VerifyCoARequest():
                continue
            self.received.append(pkt)
            self.got.set()
            if self.mode == "silent":
                continue
            reply = pkt.CreateReply()
            reply.message_authenticator = True
            disconnect = pkt.code == DisconnectRequest
            if self.mode == "ack":
                reply.code = DisconnectACK if disconnect else CoAACK
            else:
                reply.code = DisconnectNAK if disconnect else CoANAK
                reply["Error-Cause"] = (
                    "Session-Context-Not-Found" if self.mode == "nak503" else "Unsupported-Attribute"
                )
            self.sock.sendto(reply.ReplyPacket(), addr)

    def kinds(self) -> list[str]:
        return [
            "disconnect" if p.code == DisconnectRequest else "coa" if p.code == CoARequest else str(p.code)
            for p in self.received
        ]

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.sock.close()
