"""Erasure on one POP: the person's data leaves the store file, the money stays and adds up."""

from __future__ import annotations

from pathlib import Path

from jasiyo.agent import audit, erase, export
from jasiyo.agent.store import Store
from jasiyo.config import Config
from tests.privacy.people import (
    FRAMED_IP,
    MAC,
    MESSAGE,
    NAME,
    OTHER,
    PASSWORD,
    PHONE,
    add_person,
    voucher_used_by,
)

SECRETS = (
    NAME.encode(),
    PHONE.encode(),
    PHONE[4:].encode(),
    PASSWORD.encode(),
    MAC.encode(),
    FRAMED_IP.encode(),
    MESSAGE.encode(),
)


def raw_bytes(db: Path) -> bytes:
    """The store file and its WAL as they lie on disk."""
    out = db.read_bytes()
    wal = db.with_name(db.name + "-wal")
    return out + (wal.read_bytes() if wal.exists() else b"")


def money(store: Store) -> tuple:
    return (
        store.scalar("SELECT sum(amount_minor) FROM ledger"),
        store.scalar("SELECT sum(amount_minor) FROM payments"),
        store.scalar("SELECT sum(total_minor) FROM invoices"),
        store.scalar("SELECT count(*) FROM ledger"),
    )


def test_erase_removes_personal_data_from_the_file_and_keeps_money(jasiyo, cfg: Config) -> None:
    add_person(cfg)
    add_person(cfg, "baraka", ref="QK7PAY002", session=False, **OTHER)  # someone else, untouched
    voucher_used_by(cfg, MAC)
    s = Store.open(cfg)
    before = money(s)
    s.close()
    assert NAME.encode() in raw_bytes(cfg.db_path)  # the scan does see plain text
    code, _, err = jasiyo("subscriber", "erase", "wanjiku")
    assert code != 0 and "--yes" in err
    code, out, err = jasiyo(
        "--json", "subscriber", "erase", "wanjiku", "--yes", "--reason", "customer asked, ticket 4411"
    )
    assert code == 0, err
    s = Store.open(cfg)
    try:
        (row,) = s.all("SELECT * FROM subscribers WHERE username LIKE 'erased-%'")
        pseudonym = row["username"]
        assert row["name"] is None and row["phone"] is None and row["status"] == "terminated"
        assert s.scalar("SELECT count(*) FROM subscribers WHERE username = 'wanjiku'") == 0
        assert money(s) == before  # nothing of the money moved
        doc = export.subscriber_document(s, cfg, pseudonym)
        assert [p["reference"] for p in doc["payments"]] == ["QK7PAY001"]
        assert doc["balance_minor"] == sum(e["amount_minor"] for e in doc["ledger"])
        assert doc["sessions"][0]["framed_ip"] is None and doc["sessions"][0]["output_octets"]
        (rec,) = s.all("SELECT * FROM erasures")
        assert rec["reason"] == "customer asked, ticket 4411" and rec["pseudonym"] == pseudonym
        (line,) = audit.list_(s, action="subscriber.erase")
        assert line.target == f"subscriber:{pseudonym}" and "4411" in line.detail["reason"]
        # every event about them opens to data without them
        for r in s.all("SELECT * FROM events"):
            text = str(s.event_data(r))
            assert NAME not in text and PHONE not in text and PASSWORD not in text
        assert audit.list_(s, user="baraka")  # the other subscriber is as before
        assert s.one("SELECT name FROM subscribers WHERE username = 'baraka'")["name"] == OTHER["name"]
    finally:
        s.close()
    blob = raw_bytes(cfg.db_path)
    for secret in (*SECRETS, b"wanjiku"):
        assert secret not in blob, secret
    assert OTHER["name"].encode() in blob


def test_erasing_twice_or_nobody_is_a_clear_error(jasiyo, cfg: Config) -> None:
    add_person(cfg, session=False)
    assert jasiyo("subscriber", "erase", "wanjiku", "--yes")[0] == 0
    code, _, err = jasiyo("subscriber", "erase", "wanjiku", "--yes")
    assert code != 0 and "wanjiku" in err and "Traceback" not in err


def test_apply_twice_is_a_no_op(cfg: Config) -> None:
    add_person(cfg, session=False)
    s = Store.open(cfg)
    done = erase.erase(s, "wanjiku", "noc")
    ev = s.one("SELECT * FROM events WHERE op = 'erase'")
    with s.transaction():
        assert erase.apply_erasure(s, ev["id"], done.pseudonym, s.event_data(ev)) == 0
    s.close()


def test_usage_summaries_move_to_the_pseudonym(jasiyo, cfg: Config) -> None:
    from jasiyo.agent import usage_sync

    add_person(cfg)  # a session with octets
    s = Store.open(cfg)
    try:
        with s.transaction():
            s.set_meta("sync.tenant_id", "tenant-under-test")  # publishing is on once enrolled
        assert usage_sync.publish(s) == 1
        (before,) = s.all("SELECT * FROM usage_summaries")
        assert before["username"] == "wanjiku" and before["key"].startswith("wanjiku|")
    finally:
        s.close()
    assert jasiyo("subscriber", "erase", "wanjiku", "--yes")[0] == 0
    s = Store.open(cfg)
    try:
        pseudonym = s.scalar("SELECT username FROM subscribers WHERE username LIKE 'erased-%'")
        (after,) = s.all("SELECT * FROM usage_summaries")
        assert after["username"] == pseudonym and after["key"] == before["key"].replace("wanjiku", pseudonym)
        total = ("input_octets", "output_octets")
        assert sum(after[k] for k in total) == sum(before[k] for k in total)
        (ev,) = s.all("SELECT * FROM events WHERE entity = 'usage'")
        assert ev["key"] == after["key"] and s.event_data(ev)["username"] == pseudonym
        owed = s.scalar("SELECT count(*) FROM cloud_redactions WHERE kind = 'event' AND id = ?", (ev["id"],))
        assert owed == 1  # the cloud's copy of the summary is replaced too
        assert s.scalar("SELECT count(*) FROM field_clocks WHERE key LIKE 'wanjiku|%'") == 0
    finally:
        s.close()
    assert b"wanjiku" not in raw_bytes(cfg.db_path)


def test_free_text_in_the_money_kept_loses_their_name(jasiyo, cfg: Config) -> None:
    add_person(cfg, session=False)
    reason = f"outage goodwill for {NAME}, call {PHONE[4:]}"
    code, _, err = jasiyo("billing", "credit", "wanjiku", "100", "--ref", "GW-1", "--reason", reason)
    assert code == 0, err
    assert jasiyo("subscriber", "erase", "wanjiku", "--yes")[0] == 0
    s = Store.open(cfg)
    try:
        (entry,) = s.all("SELECT description, amount_minor FROM ledger WHERE reference = 'GW-1'")
    finally:
        s.close()
    assert NAME not in entry["description"] and PHONE[4:] not in entry["description"]
    assert entry["description"].startswith("outage goodwill for [erased]") and entry["amount_minor"] == 10000
    assert NAME.encode() not in raw_bytes(cfg.db_path)
