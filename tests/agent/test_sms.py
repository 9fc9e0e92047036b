"""The SMS sender and consent, on a store with a hand-moved clock and the real simulator.

(The same with the real `agent run` is in tests/agent/test_sms_run.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jasiyo.agent import billing, consent, imports, notify, payments, smsbox, smsops
from jasiyo.agent import subscribers as subs
from jasiyo.agent.smswork import Sender, gateway
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import ValidationError
from jasiyo.network import Status
from jasiyo.sms.base import SmsGateway
from jasiyo.sms.sim import AfricasTalkingSim
from tests.agent.billing_support import DAY, T0, Clock, open_store, seed_plans
from tests.agent.sms_support import add, sms_config
from tests.payments.receiver import Receiver

ALICE, BOB = "+254712345678", "+254722000111"
NOON = 0.5  # T0 + n days + NOON: 12:00 UTC, 15:00 in Nairobi (outside quiet hours)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def sim(receiver: Receiver) -> Iterator[AfricasTalkingSim]:
    s = AfricasTalkingSim(callback_delay=0.05)
    s.dlr_url, s.incoming_url = receiver.url + "/dlr", receiver.url + "/in"
    s.start()
    yield s
    s.stop()


@pytest.fixture
def cfg(tmp_path: Path, sim: AfricasTalkingSim) -> Config:
    return sms_config(tmp_path, sim)


@pytest.fixture
def db(cfg: Config, clock: Clock) -> Iterator[Store]:
    s = open_store(cfg, clock)
    seed_plans(s)
    yield s
    s.close()


@pytest.fixture
def gw(cfg: Config) -> Iterator[SmsGateway]:
    g = gateway(cfg)
    assert g is not None
    yield g
    g.close()


@pytest.fixture
def sender(cfg: Config, db: Store, gw: SmsGateway) -> Sender:
    return Sender(cfg, db, gw)


def pay(db: Store, cfg: Config, user: str, ref: str, amount: str = "1000") -> None:
    payments.record(db, cfg, user, amount, ref, actor="test")


def feed(db: Store, receiver: Receiver, path: str, n: int, gw: SmsGateway, endpoint: str) -> None:
    """What the web listener does with the simulator's callbacks, then the worker's pass."""
    for r in receiver.wait(path, n):
        smsbox.receive_local(db, endpoint, r.headers, r.body, "127.0.0.1")
    smsbox.process_new(db, gw)


def by_kind(db: Store, user: str, kind: str) -> notify.Notification:
    (n,) = [n for n in notify.list_(db, user) if n.kind == kind]
    return n


def test_a_reminder_reaches_the_gateway_once_with_local_due_date(
    db: Store, cfg: Config, clock: Clock, sim: AfricasTalkingSim, sender: Sender
) -> None:
    add(db, "alice", ALICE, True, name="Amina")
    pay(db, cfg, "alice", "A-1")
    clock.days(27 + NOON)
    billing.tick(db, cfg)
    assert sender.step().sent == 2  # the receipt, then the reminder
    assert sender.step().sent == 0
    texts = [m.text for m in sim.sent_to(ALICE)]
    # Paid until T0 + 30 days = 2026-02-04 00:00 UTC, 03:00 in Nairobi.
    assert texts[1] == (
        "Hi Amina, your home internet expires in 3 day(s), on 2026-02-04 "
        "03:00. Pay KES 1,000.00 to paybill 174379, account alice, to stay "
        "connected."
    )
    assert texts[0].startswith("Received KES 1,000.00, ref A-1")
    assert all(m.sender == "JASIYO" for m in sim.sent_to(ALICE))
    reminder = by_kind(db, "alice", "reminder")
    assert (reminder.status, reminder.parts, reminder.encoding) == ("sent", 1, "GSM-7")
    assert (reminder.cost_minor, reminder.cost_currency) == (80, "KES")
    assert reminder.message_id == sim.sent_to(ALICE)[1].message_id


def test_swahili_templates_from_config(tmp_path: Path, sim: AfricasTalkingSim, clock: Clock) -> None:
    cfg = sms_config(
        tmp_path, sim, "language = 'sw'\n[sms.templates]\nreceipt_sw = 'Asante {name}, tumepokea {amount}.'\n"
    )
    db = open_store(cfg, clock)
    seed_plans(db)
    gw = gateway(cfg)
    assert gw is not None
    try:
        add(db, "alice", ALICE, True, name="Amina")
        clock.days(NOON)
        pay(db, cfg, "alice", "A-1")
        billing.tick(db, cfg)
        Sender(cfg, db, gw).step()
        assert [m.text for m in sim.sent_to(ALICE)] == ["Asante Amina, tumepokea KES 1,000.00."]
    finally:
        gw.close()
        db.close()


def test_delivery_reports_mark_delivered_or_failed(
    db: Store,
    cfg: Config,
    clock: Clock,
    sim: AfricasTalkingSim,
    sender: Sender,
    receiver: Receiver,
    gw: SmsGateway,
) -> None:
    add(db, "alice", ALICE, True)
    add(db, "bob", BOB, True)
    sim.script(BOB, "absent")
    clock.days(NOON)
    pay(db, cfg, "alice", "A-1")
    pay(db, cfg, "bob", "B-1")
    assert sender.step().sent == 2
    feed(db, receiver, "/dlr", 2, gw, "sms-dlr")
    assert by_kind(db, "alice", "receipt").status == "delivered"
    bob = by_kind(db, "bob", "receipt")
    assert (bob.status, bob.detail) == ("failed", "not delivered: AbsentSubscriber")
    # A report naming no message of ours changes nothing; a repeat is harmless.
    smsbox.receive_local(db, "sms-dlr", {}, b"id=ATXid_nobody&status=Failed", None)
    for r in receiver.at("/dlr"):
        smsbox.receive_local(db, "sms-dlr", r.headers, r.body, None)
    smsbox.process_new(db, gw)
    assert by_kind(db, "alice", "receipt").status == "delivered"


def test_a_failing_gateway_is_retried_with_backoff_then_failed(
    db: Store, cfg: Config, clock: Clock, sim: AfricasTalkingSim, sender: Sender
) -> None:
    add(db, "alice", ALICE, True)
    clock.days(NOON)
    pay(db, cfg, "alice", "A-1")
    sim.faults.fail_next(10, status=500)
    start = clock.t
    sender.step()
    n = by_kind(db, "alice", "receipt")
    assert (n.status, n.attempts) == ("queued", 1)
    assert db.scalar("SELECT next_attempt_at FROM notifications") == start + 60
    clock.set(start + 59)
    sender.step()  # not due yet: no request
    assert len(sim.requests_to("/version1/messaging")) == 1
    clock.set(start + 60)
    sender.step()
    assert db.scalar("SELECT next_attempt_at FROM notifications") == start + 60 + 120
    clock.set(start + 180)
    sender.step()
    n = by_kind(db, "alice", "receipt")
    assert (n.status, n.attempts) == ("failed", 3)
    assert "gave up after 3 attempts" in (n.detail or "")
    assert len(sim.requests_to("/version1/messaging")) == 3
    sim.faults.clear()
    assert smsops.retry(db) == 1  # `jasiyo sms retry`
    sender.step()
    assert by_kind(db, "alice", "receipt").status == "sent"
    assert len(sim.sent_to(ALICE)) == 1


def test_a_final_refusal_fails_at_once(
    db: Store, cfg: Config, clock: Clock, sim: AfricasTalkingSim, sender: Sender
) -> None:
    add(db, "alice", ALICE, True)
    sim.blacklist.add(ALICE)
    clock.days(NOON)
    pay(db, cfg, "alice", "A-1")
    sender.step()
    n = by_kind(db, "alice", "receipt")
    assert (n.status, n.attempts, n.detail) == ("failed", 1, "refused: 406 UserInBlacklist")


def test_a_stale_reminder_is_dropped_not_sent(
    db: Store, cfg: Config, clock: Clock, sim: AfricasTalkingSim, sender: Sender
) -> None:
    add(db, "alice", ALICE, True)
    pay(db, cfg, "alice", "A-1")
    db.conn.execute("UPDATE notifications SET status = 'sent'")  # the receipt went long ago
    clock.days(27 + NOON)
    billing.tick(db, cfg)  # reminder queued; the sender does not run until after expiry
    clock.days(30 + NOON)
    sender.step()
    r = [n for n in notify.list_(db, "alice") if n.kind == "reminder"][0]
    assert (r.status, r.detail) == ("dropped", "stale: past the time it was useful")
    assert sim.accepted() == []


def test_a_reminder_for_an_expiry_already_paid_is_dropped(
    db: Store, cfg: Config, clock: Clock, sim: AfricasTalkingSim, sender: Sender
) -> None:
    add(db, "alice", ALICE, True)
    pay(db, cfg, "alice", "A-1")
    clock.days(27 + NOON)
    billing.tick(db, cfg)
    pay(db, cfg, "alice", "A-2")  # paid before the reminder went out
    sender.step()
    assert by_kind(db, "alice", "reminder").detail == ("stale: already paid past the expiry it warned of")
    assert [m.text[:12] for m in sim.accepted()] == ["Received KES"] * 2


def test_without_consent_nothing_reaches_the_gateway_by_any_path(
    db: Store, cfg: Config, clock: Clock, sim: AfricasTalkingSim, sender: Sender
) -> None:
    add(db, "bob", BOB, False)
    add(db, "carol", "+254733000222", True)
    clock.days(NOON)
    pay(db, cfg, "bob", "B-1")  # receipt path
    for day in (27, 29, 30, 31):  # reminder and suspension paths
        clock.days(day + NOON)
        billing.tick(db, cfg)
    subs.suspend(db, "bob", "test", "by hand")
    with pytest.raises(ValidationError, match="not consented"):
        smsops.send_one(db, "bob", "hello", "test")
    cast = smsops.broadcast(db, "Maintenance tonight", "test", plan="home")
    assert (cast.recipients, cast.skipped_no_consent) == (1, 1)
    smsops.broadcast(db, "Maintenance tonight", "test", status="suspended")
    assert notify.list_(db, "bob") == []
    sender.step()
    assert [m.to for m in sim.accepted()] == ["+254733000222"]
    assert subs.get(db, "bob").status == Status.SUSPENDED


def test_consent_withdrawn_after_queueing_drops_what_waits(
    db: Store, cfg: Config, clock: Clock, sim: AfricasTalkingSim, sender: Sender
) -> None:
    add(db, "alice", ALICE, True)
    clock.days(NOON)
    pay(db, cfg, "alice", "A-1")
    subs.update(db, "alice", "admin", sms_consent=False)
    sender.step()
    n = by_kind(db, "alice", "receipt")
    assert (n.status, n.detail) == ("dropped", "consent withdrawn")
    assert sim.accepted() == []


@pytest.mark.parametrize(
    ("stop", "start"), [("STOP", "START"), ("acha", "anza"), ("Sitisha tafadhali", "ENDELEA")]
)
def test_stop_withdraws_consent_and_start_gives_it_back(
    db: Store,
    cfg: Config,
    clock: Clock,
    sim: AfricasTalkingSim,
    sender: Sender,
    receiver: Receiver,
    gw: SmsGateway,
    stop: str,
    start: str,
) -> None:
    add(db, "alice", ALICE, True)
    pay(db, cfg, "alice", "A-1")
    clock.days(20 + NOON)
    sim.incoming(ALICE, stop)
    feed(db, receiver, "/in", 1, gw, "sms-in")
    assert subs.get(db, "alice").sms_consent is False
    rec = consent.latest(db, "alice")
    assert rec is not None
    assert (rec.given, rec.how, rec.actor, rec.at) == (False, "keyword", f"sms:{ALICE}", clock.t)
    assert stop.split()[0].upper() in rec.source
    clock.days(27 + NOON)
    billing.tick(db, cfg)
    assert [n.kind for n in notify.list_(db, "alice")] == ["receipt"]  # no reminder queued
    sender.step()
    assert sim.accepted() == []  # the receipt was dropped at STOP
    sim.incoming(ALICE, start)
    feed(db, receiver, "/in", 2, gw, "sms-in")
    assert subs.get(db, "alice").sms_consent is True
    assert [(r.given, r.how) for r in consent.history(db, "alice")] == [
        (True, "keyword"),
        (False, "keyword"),
        (True, "cli"),
    ]


def test_an_ordinary_reply_changes_no_consent(
    db: Store, cfg: Config, receiver: Receiver, sim: AfricasTalkingSim, gw: SmsGateway
) -> None:
    add(db, "alice", ALICE, True)
    sim.incoming(ALICE, "Please stop by tomorrow")  # "stop" is not the first word
    feed(db, receiver, "/in", 1, gw, "sms-in")
    assert subs.get(db, "alice").sms_consent is True


def test_quiet_hours_hold_reminders_not_receipts(
    db: Store, cfg: Config, clock: Clock, sim: AfricasTalkingSim, sender: Sender
) -> None:
    add(db, "alice", ALICE, True)
    pay(db, cfg, "alice", "A-1")
    db.conn.execute("UPDATE notifications SET status = 'sent'")
    clock.set(T0 + 27 * DAY + 19 * 3600)  # 19:00 UTC = 22:00 in Nairobi
    billing.tick(db, cfg)
    pay(db, cfg, "alice", "A-2", "1")  # a receipt at night (1 shilling changes no period)
    sender.step()
    assert [m.text[:8] for m in sim.accepted()] == ["Received"]
    morning = T0 + 28 * DAY + 4 * 3600  # 07:00 in Nairobi
    assert by_kind(db, "alice", "reminder").status == "queued"
    assert db.scalar("SELECT next_attempt_at FROM notifications WHERE kind = 'reminder'") == (morning)
    clock.set(morning - 60)
    sender.step()
    assert len(sim.accepted()) == 1
    clock.set(morning)
    sender.step()
    assert by_kind(db, "alice", "reminder").status == "sent"


def test_gateway_down_for_an_hour_loses_nothing_and_sends_nothing_twice(
    db: Store, cfg: Config, clock: Clock, sim: AfricasTalkingSim, sender: Sender
) -> None:
    for i in range(5):
        add(db, f"u{i}", f"+25471200000{i}", True)
    clock.days(NOON)
    sim.stop()
    for i in range(5):
        pay(db, cfg, f"u{i}", f"R-{i}")
    smsops.broadcast(db, "Network maintenance on Sunday", "test", plan="home")
    for minute in range(0, 61, 5):  # an hour of passes against a dead gateway
        clock.set(T0 + NOON * DAY + minute * 60)
        assert sender.step().outage
    assert {n.status for n in notify.list_(db)} == {"queued"}
    assert {n.attempts for n in notify.list_(db)} == {0}  # an outage uses up no attempt
    sim.start()
    clock.set(T0 + 3600 * 20)  # it is back at 20:00 UTC, 23:00 in Nairobi: quiet hours
    billing.tick(db, cfg)
    sender.step()
    sender.step()
    phones = sorted(f"+25471200000{i}" for i in range(5))
    assert sorted(m.to for m in sim.accepted()) == phones  # the receipts, once each
    assert {n.status for n in notify.list_(db) if n.kind == "receipt"} == {"sent"}
    assert {n.status for n in notify.list_(db) if n.kind == "broadcast"} == {"queued"}
    clock.set(T0 + DAY + 4 * 3600)  # 07:00 in Nairobi
    sender.step()
    sender.step()
    assert sorted(m.to for m in sim.accepted() if m.text.startswith("Network")) == phones
    assert len(sim.accepted()) == 10
    assert {n.status for n in notify.list_(db)} == {"sent"}


def test_the_per_minute_cap_spaces_sends(tmp_path: Path, sim: AfricasTalkingSim, clock: Clock) -> None:
    # 120 a minute: two a second, a burst of at most one second's worth.
    cfg = sms_config(tmp_path, sim, "rate_per_minute = 120\nquiet_start = '00:00'\nquiet_end = '00:00'\n")
    db = open_store(cfg, clock)
    seed_plans(db)
    gw = gateway(cfg)
    assert gw is not None
    try:
        for i in range(4):
            add(db, f"u{i}", f"+25471200000{i}", True)
        assert smsops.broadcast(db, "x" * 200, "test", plan="home").recipients == 4
        sender = Sender(cfg, db, gw)
        first = sender.step()
        assert (first.sent, first.limited) == (2, True)
        assert len(sim.accepted()) == 2
        assert [m.parts for m in sim.accepted()] == [2, 2]
        assert 0 < sender.next_slot_in() <= 0.5
    finally:
        gw.close()
        db.close()


def test_a_message_left_sending_by_a_crash_is_not_resent(
    db: Store, cfg: Config, clock: Clock, sim: AfricasTalkingSim, sender: Sender
) -> None:
    add(db, "alice", ALICE, True)
    clock.days(NOON)
    pay(db, cfg, "alice", "A-1")
    db.conn.execute("UPDATE notifications SET status = 'sending', attempts = 1")  # the crash
    assert sender.recover() == 1
    sender.step()
    n = by_kind(db, "alice", "receipt")
    assert n.status == "failed" and "not resent" in (n.detail or "")
    assert sim.accepted() == []


def test_consent_records_say_when_how_and_by_whom(
    db: Store, cfg: Config, clock: Clock, tmp_path: Path
) -> None:
    clock.days(1)
    add(db, "alice", ALICE, True)
    clock.days(2)
    subs.update(db, "alice", "admin", sms_consent=False)
    subs.update(db, "alice", "admin", name="Alice")  # no consent change, no record
    csv = tmp_path / "subs.csv"
    csv.write_text(
        "username,password,plan,phone,sms_consent\n"
        "alice,alice-pw,home,+254712345678,yes\nbob,bob-pw,home,,no\n"
    )
    data = imports.read_csv(csv, db)
    clock.days(3)
    imports.import_rows(db, data.rows, "importer", cfg=cfg, columns=data.columns)
    assert [(r.given, r.how, r.actor, r.at) for r in consent.history(db, "alice")] == [
        (True, "csv", "importer", T0 + 3 * DAY),
        (False, "cli", "admin", T0 + 2 * DAY),
        (True, "cli", "test", T0 + 1 * DAY),
    ]
    assert consent.history(db, "bob") == []
    kinds = db.all("SELECT entity, op FROM events WHERE entity = 'sms_consent'")
    assert len(kinds) == 3 and {k["op"] for k in kinds} == {"append"}
    bad = tmp_path / "bad.csv"
    bad.write_text("username,password,plan,sms_consent\ncarol,carol-pw,home,maybe\n")
    with pytest.raises(ValidationError, match="bad sms_consent 'maybe'"):
        imports.read_csv(bad, db)
