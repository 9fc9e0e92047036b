"""Retention: with the clock moved on, each class of data goes at its limit, money never."""

from __future__ import annotations

import time
from pathlib import Path

from jasiyo.agent import collect, notify, retention
from jasiyo.agent import subscribers as subs
from jasiyo.agent.fold import materialize
from jasiyo.agent.radius_backend import open_backend
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.radius.backend import AcctRecord
from tests.conftest import make_config
from tests.privacy.people import add_person

DAY = 86400.0
LIMITS = """[privacy]
audit_days = 30
sms_days = 40
webhook_days = 50
session_days = 70
event_days = 80
"""


def setup(tmp_path: Path) -> Config:
    cfg = make_config(tmp_path, LIMITS, accounting_retention_days=62)
    add_person(cfg)  # subscriber, payment, invoice, ledger, a session, queued messages
    backend = open_backend(cfg)
    sid = backend._store().scalar("SELECT acct_session_id FROM radius_sessions")
    backend.record_accounting([AcctRecord(
        "10.0.0.1", "Stop", time.time() + 120, acct_session_id=sid, username="wanjiku",
        session_time=120, input_octets=6000, output_octets=95000)])
    backend.close()
    s = Store.open(cfg)
    for n in s.all("SELECT key FROM notifications"):
        notify.mark_sent(s, n["key"])
    collect.receive(s, source="local:1", endpoint="nowhere", headers={}, body=b"{}",
                    received_at=s.now())  # an unknown endpoint: refused, so processed
    subs.suspend(s, "wanjiku", "noc", "late")  # status: superseded by the resume below
    subs.resume(s, "wanjiku", "noc")
    with s.transaction():
        s.execute("UPDATE events SET pushed_at = created_at")  # as if synced
    s.close()
    return cfg


def counts(cfg: Config) -> dict[str, int]:
    s = Store.open(cfg)
    try:
        q = {"audit": "audit", "sms": "notifications", "webhooks": "payment_inbox",
             "sessions": "radius_sessions", "accounting": "accounting", "events": "events",
             "payments": "payments", "ledger": "ledger", "invoices": "invoices"}
        return {k: s.scalar(f"SELECT count(*) FROM {t}") for k, t in q.items()}
    finally:
        s.close()


def folded(cfg: Config) -> dict:
    """The subscriber's row as its events fold to now (the password opened)."""
    s = Store.open(cfg)
    try:
        with s.transaction():
            materialize(s, "subscriber", "wanjiku")
        row = s.one("SELECT * FROM subscribers WHERE username = 'wanjiku'")
        row["password_enc"] = subs.password_of(s, "wanjiku")
        row.pop("updated_at")
        return row
    finally:
        s.close()


def prune_at(cfg: Config, days: float) -> dict[str, int]:
    s = Store.open(cfg, now=lambda: time.time() + days * DAY)
    try:
        return retention.prune(s, cfg)
    finally:
        s.close()


def test_each_class_goes_at_its_limit_and_money_never(tmp_path: Path) -> None:
    cfg = setup(tmp_path)
    start = counts(cfg)
    assert all(start.values()), start
    row_before = folded(cfg)
    money = {k: start[k] for k in ("payments", "ledger", "invoices")}

    assert not any(prune_at(cfg, 29).values())
    assert counts(cfg) == start
    steps = [(31, "audit"), (41, "sms"), (51, "webhooks"), (63, "accounting"),
             (71, "sessions"), (81, "events")]
    gone: set[str] = set()
    for day, kind in steps:
        removed = prune_at(cfg, day)
        gone.add(kind)
        now = counts(cfg)
        assert removed[kind] > 0, (day, kind, removed)
        for k in ("audit", "sms", "webhooks", "accounting", "sessions"):
            assert (now[k] == 0) == (k in gone), (day, k, now)
        assert {k: now[k] for k in money} == money

    # Events: the superseded ones went; every row still folds to what it was; money
    # events wait for money_retention_years.
    s = Store.open(cfg)
    try:
        ops = s.all("SELECT entity, op FROM events")
        assert {"payment", "ledger"} <= {o["entity"] for o in ops}
    finally:
        s.close()
    assert folded(cfg) == row_before
    prune_at(cfg, 8 * 365.25)
    now = counts(cfg)
    assert {k: now[k] for k in money} == money
    s = Store.open(cfg)
    kept = {r["entity"] for r in s.all("SELECT entity FROM events")}
    s.close()
    assert {"payment", "ledger", "invoice"} <= kept


def test_privacy_report_says_what_is_held(jasiyo, cfg: Config) -> None:
    import json

    add_person(cfg)
    code, out, err = jasiyo("--json", "privacy", "report")
    assert code == 0, err
    rows = {r["kind"]: r for r in json.loads(out)}
    assert rows["payments"]["rows"] == 1 and rows["payments"]["kept"] == "for ever"
    assert "never deleted" in rows["ledger"]["note"]
    assert rows["audit"]["kept"] == "730 days" and rows["sessions"]["rows"] == 1
    code, out, err = jasiyo("--json", "privacy", "prune")
    assert code == 0 and json.loads(out)["removed"]["audit"] == 0
