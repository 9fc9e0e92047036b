"""Local time everywhere a person reads it (issue 17): a subscriber added at 00:30 Nairobi
time on the 1st (21:30 UTC on the 30th) is invoiced for a cycle starting the 1st, and the
tables, the statement, the invoice and the SMS all say so; JSON carries ISO 8601 with the
offset; ``--at`` without an offset is local time."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from jasiyo.agent import payments, plans, smswork
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.cli import main
from jasiyo.commands.common import STATE
from tests.conftest import make_config

NAIROBI = ZoneInfo("Africa/Nairobi")
#: 2026-05-01 00:30 in Nairobi: 2026-04-30 21:30 UTC.
ADDED = datetime(2026, 5, 1, 0, 30, tzinfo=NAIROBI).timestamp()


@pytest.fixture
def nairobi(tmp_path: Path):
    cfg = make_config(tmp_path, '[billing]\ntimezone = "Africa/Nairobi"\nreminder_days = [3]\n')
    s = Store.open(cfg, now=lambda: ADDED)
    plans.add(s, plans.build("biz", rate="10M/10M", price="3000", period="1mo",
                             billing="postpaid"), "t")
    plans.add(s, plans.build("pre", rate="5M/5M", price="1500", period="1mo"), "t")
    subs.add(s, subs.NewSubscriber.build("wanjiru", password="pw-wanjiru", plan="biz"), "t")
    subs.add(s, subs.NewSubscriber.build("otieno", password="pw-otieno", plan="pre",
                                         phone="+254712000002", sms_consent=True), "t")
    payments.record(s, cfg, "otieno", "1500", "QTZ0000001", method="mpesa", actor="t")
    s.close()
    return cfg


def run(capsys: pytest.CaptureFixture[str], cfg, *args: str) -> tuple[int, str]:
    STATE.config_path, STATE.json, STATE._config = None, False, None
    code = main(["--config", str(cfg.path), *args])
    out, err = capsys.readouterr()
    return code, out + err


def test_a_subscriber_added_at_half_past_midnight_on_the_first_is_billed_from_the_first(
        nairobi, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = nairobi
    # --at without an offset is Nairobi time: 00:29 there is before wanjiru was added ...
    code, out = run(capsys, cfg, "billing", "run", "--at", "2026-05-01T00:29")
    assert code == 0 and "2026-05-01 00:29:00 EAT" in out
    assert run(capsys, cfg, "--json", "invoice", "list", "--subscriber", "wanjiru")[1].strip() \
        == "[]"
    # ... and 00:31 is after: the first invoice, for the cycle that starts on the 1st.
    assert run(capsys, cfg, "billing", "run", "--at", "2026-05-01T00:31")[0] == 0
    code, out = run(capsys, cfg, "invoice", "list", "--subscriber", "wanjiru")
    assert code == 0 and "2026-05-01 .. 2026-06-01" in out, out
    assert "2026-04-30" not in out

    code, out = run(capsys, cfg, "--json", "invoice", "list", "--subscriber", "wanjiru")
    (inv,) = json.loads(out)
    assert inv["due"].endswith("+03:00") and inv["cycle"] == "2026-05-01 .. 2026-06-01"
    assert datetime.fromtimestamp(inv["cycle_start"], NAIROBI).day == 1

    code, out = run(capsys, cfg, "invoice", "show", inv["number"])
    assert code == 0 and "2026-05-01 00:30:00 EAT" in out and "2026-04-30" not in out

    code, out = run(capsys, cfg, "subscriber", "statement", "wanjiru")
    assert code == 0 and "biz 2026-05-01..2026-06-01" in out and "2026-05-01 00:30:00 EAT" in out
    assert "2026-04-30" not in out

    code, out = run(capsys, cfg, "subscriber", "show", "wanjiru")
    assert "created_at" in out and "2026-05-01 00:30:00 EAT" in out and "2026-04-30" not in out
    code, out = run(capsys, cfg, "--json", "subscriber", "show", "wanjiru")
    assert json.loads(out)["created_at"] == "2026-05-01T00:30:00+03:00"


def test_the_reminder_sms_names_the_local_expiry(
        nairobi, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = nairobi
    # Paid at 00:30 on 1 May: paid until 00:30 on 1 June, local; reminded 3 days before.
    assert run(capsys, cfg, "billing", "run", "--at", "2026-05-29T01:00")[0] == 0
    s = Store.open(cfg)
    try:
        (row,) = s.all("SELECT * FROM notifications WHERE kind = 'reminder'")
        text = smswork.text_of(cfg, row)
    finally:
        s.close()
    assert "2026-06-01" in text and "2026-05-31" not in text, text
    code, out = run(capsys, cfg, "subscriber", "list")
    assert "2026-06-01 00:30:00 EAT" in out
