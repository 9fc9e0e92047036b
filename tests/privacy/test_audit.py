"""The audit log: details sealed at rest, listed and filtered from the CLI."""

from __future__ import annotations

import json
import sqlite3

from jasiyo.agent import audit, plans
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import Config


def _add(store: Store) -> None:
    plans.add(store, plans.build("home", rate="10M/10M", price="1500"), "noc:ann")
    subs.add(store, subs.NewSubscriber.build(
        "alice", password="pw-123456", plan="home", phone="+254712345678",
        name="Alice Wanjiru"), "noc:ann")
    subs.suspend(store, "alice", "noc:ben", "abuse report from Kamau")


def test_details_are_sealed_at_rest_and_read_back(cfg: Config, store: Store) -> None:
    _add(store)
    store.close()
    raw = sqlite3.connect(cfg.db_path)
    rows = raw.execute("SELECT detail, detail_enc FROM audit").fetchall()
    raw.close()
    assert rows and all(d == "{}" and enc for d, enc in rows)
    blob = b"".join(enc for _, enc in rows)
    for secret in (b"Alice Wanjiru", b"712345678", b"Kamau"):
        assert secret not in blob
    s = Store.open(cfg)
    lines = audit.about(s, "alice")
    s.close()
    assert [x.action for x in lines] == ["subscriber.add", "subscriber.status"]
    assert lines[0].detail["name"] == "Alice Wanjiru"
    assert "Kamau" in json.dumps(lines[1].detail)


def test_lines_written_in_plain_text_are_sealed(store: Store) -> None:
    with store.transaction():
        store.execute("INSERT INTO audit (at, actor, action, target, detail) VALUES "
                      "(1, 'old', 'subscriber.add', 'subscriber:bob', '{\"phone\": \"+2547\"}')")
    assert audit.seal_legacy(store) == 1
    row = store.one("SELECT * FROM audit WHERE actor = 'old'")
    assert row["detail"] == "{}" and b"+2547" not in row["detail_enc"]
    assert audit.detail_of(store, row) == {"phone": "+2547"}
    assert audit.seal_legacy(store) == 0


def test_audit_list_filters(jasiyo, store: Store) -> None:
    _add(store)
    code, out, _ = jasiyo("--json", "audit", "list", "--user", "alice")
    assert code == 0
    rows = json.loads(out)
    assert [r["action"] for r in rows] == ["subscriber.status", "subscriber.add"]
    assert "Alice Wanjiru" in rows[1]["details"]
    code, out, _ = jasiyo("--json", "audit", "list", "--actor", "noc:ben", "--since", "1d")
    assert [r["action"] for r in json.loads(out)] == ["subscriber.status"]
    code, out, _ = jasiyo("--json", "audit", "list", "--since", "2999-01-01")
    assert json.loads(out) == []
    code, _, err = jasiyo("audit", "list", "--since", "last tuesday")
    assert code != 0 and "--since" in err and "Traceback" not in err
