"""SMS across POPs: exactly one POP sends, delivery reports and STOP come through the cloud
sealed like payment callbacks, and consent records reach every POP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from jasiyo.agent import billing, consent, notify, payments, paywork, plans, smsbox, smsops
from jasiyo.agent import subscribers as subs
from jasiyo.agent.cloudlink import open_client
from jasiyo.agent.smswork import SmsWorker, gateway
from jasiyo.agent.store import Store
from jasiyo.config import Config, SmsSection
from jasiyo.sms.sim import AfricasTalkingSim
from tests.agent.money_support import until
from tests.sync.harness import Cloud, Tenant, sync

PHONE = "+254712345678"


@pytest.fixture
def sim() -> Iterator[AfricasTalkingSim]:
    s = AfricasTalkingSim(callback_delay=0.1)
    s.start()
    yield s
    s.stop()


def with_sms(cfg: Config, sim: AfricasTalkingSim) -> Config:
    return replace(
        cfg,
        sms=SmsSection(
            provider="africastalking",
            base_url=sim.url,
            username=sim.username,
            api_key=sim.api_key,
            quiet_start="00:00",
            quiet_end="00:00",
        ),
    )


def two_pops(cloud: Cloud, tmp: Path, sim: AfricasTalkingSim) -> tuple[Config, Config]:
    """POPs a and b of one ISP holding alice (3-day plan, paid two days ago at a), SMS
    callback URLs registered by a."""
    isp = Tenant(cloud, tmp).setup(2)
    a, b = (with_sms(c, sim) for c in isp.agents)
    paid_at = time.time() - 2 * 86400 - 60
    s = Store.open(a, now=lambda: paid_at)
    try:
        plans.add(s, plans.build("short", rate="5M/5M", price="100", period="3d"), "t")
        subs.add(
            s,
            subs.NewSubscriber.build(
                "alice", password="pw-123456", plan="short", phone=PHONE, sms_consent=True
            ),
            "admin",
        )
        payments.record(s, a, "alice", "100", "CASH-1", actor="t")
    finally:
        s.close()
    s = Store.open(a)
    try:
        urls = smsops.callback_urls(s, a, register=paywork.cloud_register(a, s))
    finally:
        s.close()
    sim.dlr_url, sim.incoming_url = urls["sms-dlr"], urls["sms-in"]
    sync(a, b)
    return a, b


def tick(cfg: Config) -> None:
    s = Store.open(cfg)
    try:
        billing.tick(s, cfg)
    finally:
        s.close()


def outbox(cfg: Config) -> list[notify.Notification]:
    s = Store.open(cfg)
    try:
        return notify.list_(s)
    finally:
        s.close()


def pull_and_apply(cfg: Config) -> None:
    """What the puller and the SMS worker of `agent run` do, once."""
    s = Store.open(cfg)
    gw = gateway(cfg)
    assert gw is not None
    try:
        with open_client(cfg, s) as client:
            paywork.pull_cloud(s, client)
        smsbox.process_new(s, gw)
    finally:
        gw.close()
        s.close()


def test_two_pops_holding_the_subscriber_send_the_reminder_once(
    cloud: Cloud, tmp_path: Path, sim: AfricasTalkingSim
) -> None:
    a, b = two_pops(cloud, tmp_path, sim)
    tick(a)
    tick(b)
    assert {n.kind for n in outbox(b)} == {"reminder"}  # both POPs queue it...
    assert sorted(n.kind for n in outbox(a)) == ["receipt", "reminder"]
    workers = [SmsWorker(a, poll=0.1), SmsWorker(b, poll=0.1)]
    for w in workers:
        w.start()
    try:
        until(lambda: {n.status for n in outbox(a)} == {"sent"})
    finally:
        for w in workers:
            w.stop()
    reminders = [m for m in sim.accepted() if "expires" in m.text]
    assert len(reminders) == 1  # ...and only a, which registered the SMS URLs, sends it
    assert {n.status for n in outbox(b)} == {"queued"}
    # The delivery report comes back through the cloud, sealed, to a.
    until(lambda: len(sim.callbacks) >= 2)
    pull_and_apply(a)
    assert {n.status for n in outbox(a)} == {"delivered"}


def test_stop_through_the_cloud_withdraws_consent_at_every_pop(
    cloud: Cloud, tmp_path: Path, sim: AfricasTalkingSim
) -> None:
    a, b = two_pops(cloud, tmp_path, sim)
    assert sim.incoming(PHONE, "ACHA") == 200  # the cloud took it
    pull_and_apply(a)
    sync(a, b)
    for cfg in (a, b):
        s = Store.open(cfg)
        try:
            assert subs.get(s, "alice").sms_consent is False
            assert [(r.given, r.how, r.actor) for r in consent.history(s, "alice")] == [
                (False, "keyword", f"sms:{PHONE}"),
                (True, "cli", "admin"),
            ]
        finally:
            s.close()
    tick(b)
    assert outbox(b) == []  # the next reminder is not queued
    s = Store.open(a)
    try:
        assert notify.list_(s, status="queued") == []  # the receipt waiting at a dropped
    finally:
        s.close()


def test_a_reply_pulled_by_another_pop_is_left_to_its_owner(
    cloud: Cloud, tmp_path: Path, sim: AfricasTalkingSim
) -> None:
    a, b = two_pops(cloud, tmp_path, sim)
    sim.incoming(PHONE, "STOP")
    pull_and_apply(b)  # b sees the tenant's hooks too, but the endpoint is a's
    s = Store.open(b)
    try:
        assert subs.get(s, "alice").sms_consent is True
        assert s.scalar("SELECT status FROM sms_inbox") == "other_pop"
        assert s.scalar("SELECT count(*) FROM payment_inbox") == 0  # never near the money
    finally:
        s.close()


def test_a_homed_subscriber_is_reminded_by_its_home_pop_which_sends_it(
    cloud: Cloud, tmp_path: Path, sim: AfricasTalkingSim
) -> None:
    """Issue 17: b did not register the SMS URLs, but alice is homed at b: b alone queues
    her reminder, and b sends it."""
    from jasiyo.agent import pops, routers

    a, b = two_pops(cloud, tmp_path, sim)
    s = Store.open(b)
    routers.add(s, "rtr-b", driver="mikrotik", host="127.0.0.12", radius_secret="radius-secret-b", actor="t")
    pops.set_home(s, "alice", "rtr-b", "t")
    s.close()
    sync(a, b)
    tick(a)
    tick(b)
    assert [n.kind for n in outbox(a)] == ["receipt"]  # a no longer bills alice
    queued = outbox(b)
    assert {n.kind for n in queued} == {"reminder"}
    workers = [SmsWorker(a, poll=0.1), SmsWorker(b, poll=0.1)]
    for w in workers:
        w.start()
    try:
        until(lambda: {n.status for n in outbox(b)} == {"sent"} and {n.status for n in outbox(a)} == {"sent"})
    finally:
        for w in workers:
            w.stop()
    # Each reminder once, from b; a sent only its receipt.
    assert len([m for m in sim.accepted() if "expires" in m.text]) == len(queued)
    # The delivery reports come to a's URLs (a registered them), sealed, through the cloud;
    # b marks its own messages delivered, a its own: each POP applies what names its messages.
    until(lambda: len(sim.callbacks) >= len(sim.accepted()))
    pull_and_apply(b)
    pull_and_apply(a)
    assert {n.status for n in outbox(b)} == {"delivered"}
    assert {n.status for n in outbox(a)} == {"delivered"}
