"""A subscriber with a life: a plan, consent, a payment, a session, a message."""

from __future__ import annotations

import time

from jasiyo.agent import notify, payments, plans
from jasiyo.agent import subscribers as subs
from jasiyo.agent.radius_backend import open_backend
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.radius.backend import AcctRecord

NAME = "Wanjiku Kamau-Otieno"
PHONE = "+254711223344"
PASSWORD = "Zq7-secret-pass"
MAC = "AA:BB:CC:11:22:33"
FRAMED_IP = "100.64.7.9"
MESSAGE = "Habari Wanjiku, your plan ends tomorrow"


def with_plan(cfg: Config) -> None:
    s = Store.open(cfg)
    try:
        if not s.scalar("SELECT 1 FROM plans WHERE name = 'home'"):
            plans.add(s, plans.build("home", rate="10M/10M", price="1500"), "noc")
    finally:
        s.close()


#: Someone else, who must come through an erasure of the first untouched.
OTHER = {"name": "Baraka Mwangi", "phone": "+254722000111", "password": "other-pass-99",
         "mac": "DE:AD:BE:EF:00:01", "framed_ip": "100.64.8.8"}


def add_person(cfg: Config, username: str = "wanjiku", *, ref: str = "QK7PAY001",
               session: bool = True, name: str = NAME, phone: str = PHONE,
               password: str = PASSWORD, mac: str = MAC, framed_ip: str = FRAMED_IP) -> None:
    """The subscriber, their consent, a payment, a RADIUS session and an SMS."""
    with_plan(cfg)
    s = Store.open(cfg)
    try:
        subs.add(s, subs.NewSubscriber.build(
            username, password=password, plan="home", phone=phone, name=name,
            sms_consent=True, mac=mac), "noc:ann")
        payments.record(s, cfg, username, "1500", ref, method="mpesa", actor="noc:ann")
        row = s.one("SELECT * FROM subscribers WHERE username = ?", (username,))
        with s.transaction():
            text = MESSAGE.replace("Wanjiku", name.split()[0])
            notify.queue(s, row, "reminder", f"reminder:{username}:1", text, s.now())
    finally:
        s.close()
    if session:
        backend = open_backend(cfg)
        now = time.time()
        sid = f"8100{abs(hash(username)) % 10**6:06x}"  # NAS session ids are opaque hex
        backend.record_accounting([
            AcctRecord("10.0.0.1", "Start", now, acct_session_id=sid,
                       username=username, framed_ip=framed_ip, calling_station_id=mac),
            AcctRecord("10.0.0.1", "Interim-Update", now + 60, acct_session_id=sid,
                       username=username, framed_ip=framed_ip, calling_station_id=mac,
                       session_time=60, input_octets=5000, output_octets=90000),
        ])
        backend.close()


def voucher_used_by(cfg: Config, mac: str) -> str:
    """A voucher of the plan 'home', first used from the device ``mac``; its code."""
    from jasiyo.agent import vouchers

    with_plan(cfg)
    s = Store.open(cfg)
    try:
        (code,) = vouchers.generate(s, "home", 1, "noc")
        with s.transaction():
            vouchers.note_use(s, code, mac, s.now())
        return code
    finally:
        s.close()
