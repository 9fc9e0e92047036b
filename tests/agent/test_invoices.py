"""Invoices an accountant accepts (numbers, VAT, PINs, void, credit notes,
PDF)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from jasiyo.agent import billing, credit_notes, invoice_pdf, invoices, ledger, payments, plans
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import ValidationError
from tests.agent.billing_support import DAY, T0, Clock, add_sub, billing_config, open_store


@pytest.fixture
def bcfg(tmp_path: Path) -> Config:
    base = billing_config(tmp_path, "invoice_due_days = 3\ngrace_days = 0")
    return replace(base, agent=replace(base.agent, name="nairobi-1", pop="NRB1",
                                       business_name="Kamau Net Ltd", tax_pin="P051234567X"))


@pytest.fixture
def db(bcfg: Config, clock: Clock) -> Iterator[Store]:
    s = open_store(bcfg, clock)
    plans.add(s, plans.build("home", rate="10M/10M", price="1000"), "t")
    plans.add(s, plans.build("biz", rate="50M/50M", price="3000", billing="postpaid",
                             tax_rate="16"), "t")
    plans.add(s, plans.build("incl", rate="10M/10M", price="1160", tax_rate="16",
                             tax_inclusive=True), "t")
    yield s
    s.close()


def test_numbers_are_sequential_per_pop_and_year_and_never_the_username(
    db: Store, bcfg: Config, clock: Clock,
) -> None:
    for user in ("alice", "bob"):
        add_sub(db, user)
        payments.record(db, bcfg, user, "1000", f"P-{user}", actor="t")
    numbers = [i.number for i in invoices.list_(db)]
    assert sorted(numbers) == ["INV-NRB1-2026-000001", "INV-NRB1-2026-000002"]
    clock.set(T0 + 365 * DAY)  # 2027: a new series
    add_sub(db, "carl")
    payments.record(db, bcfg, "carl", "1000", "P-2027", actor="t")
    assert invoices.list_(db, username="carl")[0].number == "INV-NRB1-2027-000001"


def test_a_rolled_back_issue_gives_its_number_back(db: Store, bcfg: Config) -> None:
    add_sub(db, "alice")
    sub = ledger.subscriber_row(db, "alice")
    with pytest.raises(RuntimeError), db.transaction():
        invoices.issue(db, bcfg, sub, T0, T0 + DAY, at=T0, due_at=T0)
        raise RuntimeError("the caller failed after issuing")
    payments.record(db, bcfg, "alice", "1000", "P1", actor="t")
    assert [i.number for i in invoices.list_(db)] == ["INV-NRB1-2026-000001"]


def test_pop_code_defaults_from_the_agent_name(bcfg: Config) -> None:
    assert invoices.pop_code(replace(bcfg, agent=replace(bcfg.agent, pop=""))) == "NAIROBI1"


def test_vat_inclusive_splits_the_price_and_exclusive_adds_to_it(
    db: Store, bcfg: Config,
) -> None:
    add_sub(db, "inc", "incl", tax_pin="A123456789B")
    payments.record(db, bcfg, "inc", "1160", "P1", actor="t")
    (inv,) = invoices.list_(db, username="inc")
    assert (inv.amount_minor, inv.tax_minor, inv.total_minor, inv.tax_inclusive) == (
        100000, 16000, 116000, True)
    assert (inv.seller_tax_pin, inv.customer_tax_pin) == ("P051234567X", "A123456789B")
    add_sub(db, "carol", "biz")
    billing.tick(db, bcfg)
    (inv,) = invoices.list_(db, username="carol")
    assert (inv.amount_minor, inv.tax_minor, inv.total_minor) == (300000, 48000, 348000)


def test_void_cancels_an_open_invoice_and_restores_the_subscriber(
    db: Store, bcfg: Config, clock: Clock,
) -> None:
    add_sub(db, "carol", "biz")
    billing.tick(db, bcfg)
    clock.set(T0 + 4 * DAY)
    billing.tick(db, bcfg)
    assert subs.get(db, "carol").status == "suspended"
    (inv,) = invoices.list_(db, username="carol")
    note = credit_notes.void(db, bcfg, inv.number, "issued in error", "noc")
    assert note is not None and note.number == "CN-NRB1-2026-000001"
    assert (note.amount_minor, note.tax_minor) == (348000, 48000)
    assert invoices.get(db, inv.number).status == "void"
    assert ledger.balance(db, subs.get(db, "carol").id) == 0
    assert subs.get(db, "carol").status == "active"
    with pytest.raises(ValidationError, match="already void"):
        credit_notes.void(db, bcfg, inv.number, "again", "noc")


def test_a_paid_invoice_is_credited_not_voided(db: Store, bcfg: Config) -> None:
    add_sub(db, "alice")
    payments.record(db, bcfg, "alice", "1000", "P1", actor="t")
    (inv,) = invoices.list_(db)
    with pytest.raises(ValidationError, match="only an open invoice"):
        credit_notes.void(db, bcfg, inv.number, "x", "noc")
    before = db.scalar("SELECT count(*) FROM ledger")
    with pytest.raises(ValidationError, match="more than is left"):
        credit_notes.credit(db, bcfg, inv.number, 100001, "outage", "noc")
    assert db.scalar("SELECT count(*) FROM ledger") == before
    note = credit_notes.credit(db, bcfg, inv.number, 25000, "two days of outage", "noc")
    assert ledger.balance(db, subs.get(db, "alice").id) == 25000
    assert invoices.get(db, inv.number).credited_minor == 25000
    assert ledger.statement(db, "alice")[-1].reference == note.number


def test_pdf_of_invoice_credit_note_and_receipt(db: Store, bcfg: Config) -> None:
    add_sub(db, "alice", name="Alice Wanjiru", tax_pin="A123456789B")
    payments.record(db, bcfg, "alice", "1000", "QWK0000001", method="mpesa", actor="t")
    (inv,) = invoices.list_(db)
    kind, data = invoice_pdf.render(db, bcfg, inv.number)
    assert kind == "invoice" and data.startswith(b"%PDF-")
    for text in (inv.number.encode(), b"P051234567X", b"A123456789B", b"Kamau Net Ltd",
                 b"RECEIPT", b"1,000.00"):
        assert text in data, text
    note = credit_notes.credit(db, bcfg, inv.number, 5000, "outage", "noc")
    kind, data = invoice_pdf.render(db, bcfg, note.number)
    assert kind == "credit note" and note.number.encode() in data
    kind, data = invoice_pdf.render(db, bcfg, "qwk0000001")
    assert kind == "receipt" and b"QWK0000001" in data


def test_long_pop_names_sharing_a_beginning_get_different_invoice_codes() -> None:
    # Cut to eight characters, both were NAIROBIW...: two POPs issuing the same numbers,
    # and one invoice overwriting the other when they sync.
    west, east = invoices.code_of("nairobi-west"), invoices.code_of("nairobi-west-2")
    assert west != east and len(west) == len(east) == 8
    assert west.startswith("NAIRO") and west == invoices.code_of("Nairobi West")
    assert invoices.code_of("pop-a1b2c3-0") != invoices.code_of("pop-a1b2c3-1")
    assert invoices.code_of("nrb1") == "NRB1"  # short names stay as they are
