"""Payments, ledger entries and invoices cross POPs exactly once."""

from __future__ import annotations

from pathlib import Path

from jasiyo.agent import cloudlink, payments, plans, tenantkeys
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import parse
from tests.support.config import init_agent_store
from tests.sync.harness import Cloud, Tenant, snap, sync


def test_payment_reaches_other_pop_once_and_survives_restore(cloud: Cloud, tmp_path: Path) -> None:
    isp = Tenant(cloud, tmp_path).setup(2)
    a, b = isp.agents
    s = Store.open(a)
    plans.add(s, plans.build("home", rate="10M/10M", price="1500"), "t")
    subs.add(s, subs.NewSubscriber.build("alice", password="alice-pw-1", plan="home"), "t")
    payments.record(s, a, "alice", "1500", "QKX1234ABC", method="mpesa", actor="t")
    s.close()
    sync(a, b)
    # The same M-Pesa receipt reaches B too (a webhook retried at the other POP).
    s = Store.open(b)
    again = payments.record(s, b, "alice", "1500", "QKX1234ABC", method="mpesa", actor="t")
    assert not again.created
    s.close()
    sync(a, b)
    sa, sb = snap(a), snap(b)
    assert sa == sb
    assert [p["reference"] for p in sb["payments"]] == ["QKX1234ABC"]
    assert [e["kind"] for e in sb["ledger"]].count("payment") == 1
    assert sb["subscribers"][0]["paid_until"] is not None
    # B records a second payment; both POPs and a rebuilt one agree on the money.
    s = Store.open(b)
    payments.record(s, b, "alice", "1500", "QKX5678DEF", method="mpesa", actor="t")
    balance_b = s.scalar("SELECT sum(amount_minor) FROM ledger")
    s.close()
    sync(a, b)
    s = Store.open(a)
    assert s.scalar("SELECT sum(amount_minor) FROM ledger") == balance_b
    s.close()
    assert snap(a) == snap(b)
    fresh = parse(f'[agent]\ndata_dir = "{tmp_path / "rebuilt"}"\n', tmp_path)
    init_agent_store(fresh)
    cloudlink.enroll_agent(fresh, cloud.url, cloud.enrolment(isp.id, isp.admin))
    tenantkeys.restore_from_cloud(fresh, isp.recovery)
    assert snap(fresh) == snap(a)
