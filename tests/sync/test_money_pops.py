"""Money across POPs (issue: exactly once across POPs): references in one normal form on
every path, and one receipt claimed for two subscribers converging the same way at both."""

from __future__ import annotations

from pathlib import Path

import pytest

from jasiyo.agent import collect, payments, plans
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import ValidationError
from tests.sync.harness import Cloud, Tenant, snap, sync


def two_pops(cloud: Cloud, tmp: Path, *users: str) -> tuple[Config, Config]:
    isp = Tenant(cloud, tmp).setup(2)
    a, b = isp.agents
    s = Store.open(a)
    plans.add(s, plans.build("home", rate="10M/10M", price="1500"), "t")
    for u in users:
        subs.add(s, subs.NewSubscriber.build(u, password="pw-123456", plan="home"), "t")
    s.close()
    sync(a, b)
    return a, b


def record(cfg: Config, user: str, ref: str, amount: str = "1500") -> payments.Recorded:
    s = Store.open(cfg)
    try:
        return payments.record(s, cfg, user, amount, ref, method="mpesa", actor="t")
    finally:
        s.close()


def money(cfg: Config) -> tuple[list, int]:
    s = Store.open(cfg)
    try:
        rows = s.all(
            "SELECT p.reference, s.username, p.amount_minor FROM payments p JOIN "
            "subscribers s ON s.id = p.subscriber_id ORDER BY p.reference"
        )
        credited = s.scalar("SELECT COALESCE(SUM(amount_minor), 0) FROM ledger WHERE kind = 'payment'")
        return rows, credited
    finally:
        s.close()


def test_another_letter_case_at_another_pop_credits_once(cloud: Cloud, tmp_path: Path) -> None:
    a, b = two_pops(cloud, tmp_path, "bob")
    record(a, "bob", "QM2BBB")
    record(b, "bob", "qm2bbb")  # before sync: B has not heard of A's
    sync(a, b)
    for cfg in (a, b):
        rows, credited = money(cfg)
        assert [r["reference"] for r in rows] == ["QM2BBB"] and credited == 150000
        s = Store.open(cfg)
        try:  # each POP issued a receipt invoice for the period it bought: one stands
            docs = s.all("SELECT number, status, void_reason FROM invoices ORDER BY number")
        finally:
            s.close()
        standing = [d for d in docs if d["status"] != "void"]
        assert len(docs) == 2 and len(standing) == 1, docs
        (void,) = [d for d in docs if d["status"] == "void"]
        assert void["void_reason"].startswith(f"duplicate of {standing[0]['number']}: payment QM2BBB")


@pytest.mark.parametrize(
    "lookalike",
    [
        "QМ2BBB",  # Cyrillic Em
        "QM2\u200bBBB",  # zero-width space
        "QM2\u00adBBB",  # soft hyphen
        "ＱＭ２ＢＢＢ",  # full-width letters
        "\ufeffQM2BBB",  # BOM
    ],
)
def test_lookalike_references_are_the_same_receipt_or_refused(
    cloud: Cloud, tmp_path: Path, lookalike: str
) -> None:
    a, _ = two_pops(cloud, tmp_path, "bob")
    record(a, "bob", "QM2BBB")
    try:
        again = record(a, "bob", lookalike)
    except ValidationError as exc:
        assert "ASCII" in str(exc)  # cannot be a provider reference
    else:
        assert not again.created and again.payment.reference == "QM2BBB"
    rows, credited = money(a)
    assert len(rows) == 1 and credited == 150000


def test_one_receipt_two_subscribers_two_pops_converge_and_show_the_conflict(
    cloud: Cloud, tmp_path: Path
) -> None:
    a, b = two_pops(cloud, tmp_path, "mx4a", "mx4b")
    record(a, "mx4a", "MX4RCPT01")
    record(b, "mx4b", "MX4RCPT01")  # the same receipt typed for another customer at B
    sync(a, b, rounds=3)
    ra, rb = money(a), money(b)
    assert ra == rb  # one answer on every POP ...
    (row,) = ra[0]
    assert row["username"] == "mx4a" and ra[1] == 150000  # ... the first recorded, once
    assert snap(a)["ledger"] == snap(b)["ledger"]
    for cfg in (a, b):  # ... and an engineer sees the conflict
        s = Store.open(cfg)
        (u,) = collect.unmatched(s)
        s.close()
        assert u.reference == "MX4RCPT01" and "conflict" in u.reason and "mx4b" in u.reason
    s = Store.open(a)
    with pytest.raises(ValidationError, match="credited to mx4a"):
        collect.allocate(s, a, "MX4RCPT01", "mx4b", "noc")
    collect.allocate(s, a, "MX4RCPT01", "mx4a", "noc")  # confirms the kept one
    assert collect.unmatched(s) == []
    s.close()


def test_one_receipt_at_two_pops_buys_one_period(cloud: Cloud, tmp_path: Path) -> None:
    """POP A records QX99ZZ; two seconds later POP B does too, before they sync."""
    a, b = two_pops(cloud, tmp_path, "bob")
    record(a, "bob", "QX99ZZ")
    s = Store.open(b, now=lambda: __import__("time").time() + 2)
    payments.record(s, b, "bob", "1500", "QX99ZZ", method="mpesa", actor="t")
    s.close()
    sync(a, b, rounds=3)
    assert snap(a) == snap(b)
    for cfg in (a, b):
        s = Store.open(cfg)
        charges = s.scalar("SELECT count(*) FROM ledger WHERE kind = 'charge'")
        balance = s.scalar("SELECT sum(amount_minor) FROM ledger")
        s.close()
        assert (charges, balance) == (1, 0)
