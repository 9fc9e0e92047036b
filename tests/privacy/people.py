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


def add_person(cfg: Config, username: str = "wanjiku", *, ref: str = "QK7PAY001",
               session: bool = True) -> None:
    """The subscriber, their consent, a payment, a RADIUS session and an SMS."""
    with_plan(cfg)
    s = Store.open(cfg)
    try:
        subs.add(s, subs.NewSubscriber.build(
            username, password=PASSWORD, plan="home", phone=PHONE, name=NAME,
            sms_consent=True), "noc:ann")
        payments.record(s, cfg, username, "1500", ref, method="mpesa", actor="noc:ann")
        row = s.one("SELECT * FROM subscribers WHERE username = ?", (username,))
        with s.transaction():
            notify.queue(s, row, "reminder", f"reminder:{username}:1", MESSAGE, s.now())
    finally:
        s.close()
    if session:
        backend = open_backend(cfg)
        now = time.time()
        backend.record_accounting([
            AcctRecord("10.0.0.1", "Start", now, acct_session_id=f"{username}-s1",
                       username=username, framed_ip=FRAMED_IP, calling_station_id=MAC),
            AcctRecord("10.0.0.1", "Interim-Update", now + 60, acct_session_id=f"{username}-s1",
                       username=username, framed_ip=FRAMED_IP, calling_station_id=MAC,
                       session_time=60, input_octets=5000, output_octets=90000),
        ])
        backend.close()
