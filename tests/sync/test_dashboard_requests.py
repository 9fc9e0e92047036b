"""The dashboard's writes with real sync (issue 16): two POPs of one tenant and a third
identity enrolled as a dashboard, which seals events with the tenant keyring and pushes them
through the cloud API signed with its own Ed25519 key, as the browser does. A request is
carried out by the subscriber's home POP only, and every POP ends with the same payment,
once, also after the home POP is rebuilt from the cloud; a suspend (a plain subscriber
upsert) changes RADIUS at both POPs and queues the Disconnect at the home POP only; money
received at one POP is allocated at another."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jasiyo import config
from jasiyo.agent import cloudlink, collect, plans, pops, routers, tenantkeys
from jasiyo.agent import subscribers as subs
from jasiyo.agent.radius_backend import open_backend
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.payments.models import Confirmation
from jasiyo.radius.policy import AuthMethod, AuthRequest, authorize
from jasiyo.sync.client import RemoteEvent, _plain
from jasiyo.sync.hlc import HybridClock
from jasiyo.sync.ids import uuid7
from jasiyo.sync.keyring import Keyring
from jasiyo.sync.signing import AgentAuth, public_key_text
from jasiyo.tls import client_context
from tests.agent.billing_support import start_session
from tests.support.config import init_agent_store
from tests.sync.harness import Cloud, Tenant, snap, sqlite_cloud, sync


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    c = sqlite_cloud(tmp_path)
    yield c
    c.server.stop()
    c.storage.close()


class Dashboard:
    """What the browser does, in Python: its own identity, the tenant keys, sealed pushes."""

    def __init__(self, cloud: Cloud, isp: Tenant) -> None:
        self.id = uuid7()
        self.tenant = isp.id
        self.key = Ed25519PrivateKey.generate()
        with cloud.http() as h:
            r = h.post(
                "/v1/agents/enroll",
                json={
                    "token": cloud.enrolment(isp.id, isp.admin),
                    "agent_id": self.id,
                    "name": "front desk",
                    "public_key": public_key_text(self.key),
                    "kind": "dashboard",  # ignored by a cloud from before dashboards
                },
            )
        assert r.status_code == 201, r.text
        self.ring = Keyring.load(isp.recovery)
        self.clock = HybridClock(self.id, lambda: int(time.time() * 1000))
        self.http = httpx.Client(
            base_url=cloud.url, verify=client_context(), timeout=30, auth=AgentAuth(self.key, isp.id, self.id)
        )

    def push(self, entity: str, key: str, op: str, data: dict[str, Any]) -> None:
        ev = RemoteEvent(uuid7(), self.clock.now(), self.id, entity, key, op, data)
        body = {
            "events": [
                {"id": ev.id, "origin": ev.origin, "envelope": self.ring.seal(_plain(ev), ev.id, ev.origin)}
            ]
        }
        r = self.http.post(f"/v1/tenants/{self.tenant}/events", json=body)
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text

    def request(self, action: str, **fields: Any) -> str:
        key = uuid7()
        self.push(
            "request", key, "append", {"action": action, "by": "front desk", "at": time.time(), **fields}
        )
        return key

    def close(self) -> None:
        self.http.close()


def setup(cloud: Cloud, tmp: Path) -> tuple[Tenant, Config, Config]:
    isp = Tenant(cloud, tmp).setup(2)
    a, b = isp.agents
    s = Store.open(a)
    plans.add(s, plans.build("home", rate="10M/10M", price="1500"), "t")
    routers.add(
        s,
        "rtr-a",
        driver="mikrotik",
        host="127.0.0.1",
        radius_secret="radius-secret-a",
        nas_ip="127.0.0.11",
        actor="t",
    )
    subs.add(s, subs.NewSubscriber.build("alice", password="pw-alice-1", plan="home"), "t")
    pops.set_home(s, "alice", "rtr-a", "t")
    s.close()
    s = Store.open(b)
    routers.add(
        s,
        "rtr-b",
        driver="mikrotik",
        host="127.0.0.1",
        radius_secret="radius-secret-b",
        nas_ip="127.0.0.12",
        actor="t",
    )
    s.close()
    sync(a, b)
    s = Store.open(b)
    subs.add(s, subs.NewSubscriber.build("bob", password="pw-bob-1", plan="home"), "t")
    pops.set_home(s, "bob", "rtr-b", "t")
    s.close()
    sync(a, b)
    return isp, a, b


def rows(cfg: Config, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    s = Store.open(cfg)
    try:
        return s.all(sql, params)
    finally:
        s.close()


def results(cfg: Config, key: str) -> list[dict[str, Any]]:
    return rows(cfg, "SELECT status, message, pop FROM dashboard_results WHERE key = ?", (key,))


def emitted(cfg: Config, entity: str = "request_result") -> int:
    s = Store.open(cfg)
    try:
        return s.scalar("SELECT count(*) FROM events WHERE entity = ? AND origin = ?", (entity, s.agent_id))
    finally:
        s.close()


@pytest.mark.slow
def test_a_request_runs_at_the_home_pop_only_and_every_pop_has_the_payment_once(
    cloud: Cloud, tmp_path: Path
) -> None:
    isp, a, b = setup(cloud, tmp_path)
    dash = Dashboard(cloud, isp)
    try:
        for_alice = dash.request("payment", username="alice", amount_minor=150000)
        for_bob = dash.request("payment", username="bob", amount_minor=150000, reference="DESK-0001")
        sync(a, b, rounds=3)  # carried out while pulling: pushed by the next round
    finally:
        dash.close()
    receipt = f"CASH-{for_alice.replace('-', '').upper()}"
    for cfg in (a, b):
        assert [(p["reference"], p["username"]) for p in snap(cfg)["payments"]] == [
            (receipt, "alice"),
            ("DESK-0001", "bob"),
        ], cfg.agent.name
        assert results(cfg, for_alice)[0]["pop"] == a.agent.name
        assert results(cfg, for_bob)[0]["pop"] == b.agent.name
    assert emitted(a) == 1 and emitted(b) == 1  # each POP carried out its own subscriber's
    assert snap(a)["ledger"] == snap(b)["ledger"]

    # POP A is rebuilt from the cloud (same POP name, a new agent): the request and its
    # result come back with the log, and nothing is carried out again.
    rebuilt = config.parse(
        f'[agent]\ndata_dir = "{tmp_path / "a-rebuilt"}"\nname = "{a.agent.name}"\n[sync]\ninterval = 2\n',
        tmp_path,
    )
    init_agent_store(rebuilt)
    cloudlink.enroll_agent(rebuilt, cloud.url, cloud.enrolment(isp.id, isp.admin))
    tenantkeys.restore_from_cloud(rebuilt, isp.recovery)
    sync(rebuilt, b, rounds=3)
    assert emitted(rebuilt) == 0
    assert rows(rebuilt, "SELECT outcome FROM dashboard_runs WHERE key = ?", (for_alice,)) == [
        {"outcome": "done"}
    ]
    assert snap(rebuilt)["payments"] == snap(b)["payments"] and len(snap(b)["payments"]) == 2


@pytest.mark.slow
def test_a_suspend_from_the_dashboard_changes_radius_everywhere_and_disconnects_at_home(
    cloud: Cloud, tmp_path: Path
) -> None:
    isp, a, b = setup(cloud, tmp_path)
    s = Store.open(a)
    start_session(s, "alice", "sess-a", nas_ip="127.0.0.11")
    s.close()
    req = AuthRequest("alice", AuthMethod.PAP, pap_password="pw-alice-1")
    for cfg in (a, b):
        be = open_backend(cfg)
        before = authorize(req, be.subject("alice"))
        be.close()
        assert before.accept and ("Mikrotik-Rate-Limit", "10M/10M") in before.reply
    dash = Dashboard(cloud, isp)
    try:
        # Exactly what `subscribers.suspend(store, "alice", actor, None)` emits.
        dash.push(
            "subscriber",
            "alice",
            "upsert",
            {"status": "suspended", "status_reason": "manual", "manual_suspend": 1},
        )
        sync(a, b)
        for cfg in (a, b):
            s = Store.open(cfg)
            assert subs.get(s, "alice").status == "suspended"
            s.close()
            be = open_backend(cfg)
            d = authorize(req, be.subject("alice"))
            be.close()
            # walled garden (the default): accepted at the walled garden's rate, not the plan's
            assert d.accept and ("Mikrotik-Rate-Limit", "256k/256k") in d.reply, (cfg.agent.name, d)
            assert ("Mikrotik-Address-List", "jasiyo-suspended") in d.reply
        disconnects = "SELECT username, acct_session_id FROM enforce_jobs WHERE action = 'disconnect'"
        assert rows(a, disconnects) == [{"username": "alice", "acct_session_id": "sess-a"}]
        assert rows(b, disconnects) == []
        key = dash.request("resume", username="alice")
        sync(a, b, rounds=3)
    finally:
        dash.close()
    for cfg in (a, b):
        assert results(cfg, key) == [
            {"status": "done", "message": "subscriber alice resumed; status active", "pop": a.agent.name}
        ]
        s = Store.open(cfg)
        assert subs.get(s, "alice").status == "active"
        s.close()


@pytest.mark.slow
def test_money_received_at_one_pop_is_allocated_at_the_subscribers_home(cloud: Cloud, tmp_path: Path) -> None:
    isp, a, b = setup(cloud, tmp_path)
    s = Store.open(a)
    with s.transaction():  # a C2B payment at A's paybill naming an account nobody has
        collect._to_suspense(
            s,
            Confirmation("mpesa", "c2b", "QRX7UNMATCH", 150000, "KES", account="B0B-1", phone="2547***111"),
            "no subscriber with account 'B0B-1'",
            None,
        )
    s.close()
    sync(a, b)
    listed = "SELECT reference, amount_minor, status, allocated_to FROM payment_suspense"
    assert rows(b, listed) == [
        {"reference": "QRX7UNMATCH", "amount_minor": 150000, "status": "open", "allocated_to": None}
    ]
    dash = Dashboard(cloud, isp)
    try:
        key = dash.request("allocate", reference="QRX7UNMATCH", username="bob")
        sync(a, b, rounds=3)
    finally:
        dash.close()
    for cfg in (a, b):
        assert results(cfg, key)[0]["status"] == "done" and results(cfg, key)[0]["pop"] == b.agent.name
        assert rows(cfg, listed) == [
            {"reference": "QRX7UNMATCH", "amount_minor": 150000, "status": "allocated", "allocated_to": "bob"}
        ], cfg.agent.name
        assert [(p["reference"], p["username"], p["amount_minor"]) for p in snap(cfg)["payments"]] == [
            ("QRX7UNMATCH", "bob", 150000)
        ]
    assert emitted(a) == 0 and emitted(b) == 1
